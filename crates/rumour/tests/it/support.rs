//! Running the `rumour` binary and talking raw HTTP/1.1 to it over a tokio `TcpStream`, so the
//! tests need no HTTP client.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `rumour` processes, killed and reaped when dropped (even when the test fails).
#[derive(Default)]
pub struct Processes(Vec<Child>);

impl Processes {
    /// Starts `rumour ARGS...` and returns the first line of its stdout that contains
    /// `marker` (within 20 s).
    pub fn start(&mut self, args: &[&str], marker: &str) -> String {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rumour"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the rumour binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        self.0.push(child);
        let (tx, rx) = mpsc::channel();
        let wanted = marker.to_string();
        // Reads every line, so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if line.contains(&wanted) {
                    let _ = tx.send(line);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("`rumour {}` printed no {marker:?}", args.join(" ")))
    }

    /// The most recently started process.
    pub fn last_mut(&mut self) -> &mut Child {
        self.0.last_mut().expect("a process was started")
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `child` until it exits or `timeout` passes.
pub async fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The `http://ADDR/` address in a line the binary printed.
pub fn http_addr(line: &str) -> Option<SocketAddr> {
    line.split("http://")
        .nth(1)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

/// A response: status code, headers (lower-cased names) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// `GET path` with an optional `Accept` header; the connection closes after the response.
pub async fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> std::io::Result<Response> {
    let request = async {
        let mut stream = TcpStream::connect(addr).await?;
        let accept = accept
            .map(|a| format!("Accept: {a}\r\n"))
            .unwrap_or_default();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"))??;
    parse(&String::from_utf8_lossy(&raw))
}

/// `POST path` with a form body (`application/x-www-form-urlencoded`); the connection closes
/// after the response.
pub async fn post_form(addr: SocketAddr, path: &str, form: &str) -> std::io::Result<Response> {
    let request = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{form}",
            form.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"))??;
    parse(&String::from_utf8_lossy(&raw))
}

/// Polls `GET path` on `http` (as JSON when `json`) until `done` holds for the response,
/// failing after 30 s with the last response.
pub async fn poll(http: SocketAddr, path: &str, json: bool, done: impl Fn(&Response) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let accept = json.then_some("application/json");
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(response) = get(http, path, accept).await {
            if done(&response) {
                return;
            }
            last = Some(response);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("GET {path} never gave the expected answer; last: {last:?}");
}

fn parse(raw: &str) -> std::io::Result<Response> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, raw.to_string());
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(bad)?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
