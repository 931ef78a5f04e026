//! `cargo xtask interop [plain|encrypted|wrong-key]`: rumour nodes in memberlist wire mode and
//! real hashicorp/memberlist (Go, Debian's 0.2.2) nodes in one cluster on loopback.
//!
//! Builds the Go peer (`benches/peers/memberlist-interop/peer`, GOPATH mode, offline) and the
//! Rust peer (`rumour-benches --bin interop-peer`); both take the same flags and speak the same
//! line protocol on stdin/stdout. Then, per mode:
//!
//! - rumour joins a 5-node Go cluster; every node lists every node alive; user messages and
//!   metadata cross both ways; a Go leave is seen as left by rumour; a crashed (killed) rumour
//!   node is declared dead by every Go node;
//! - Go joins 3 rumour nodes; every node lists every node alive; a rumour leave is seen as left
//!   by Go; a crashed Go node is declared dead by every rumour node;
//! - `encrypted`: the same with AES-128 and compression on both sides; `wrong-key`: a node with
//!   another key stays out, both ways.
//!
//! Prints a matrix of checks with the time each took. CI does not run it (it needs Go).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GOCODE: &str = "/usr/share/gocode";
const MEMBERLIST_SOURCE: &str =
    "/usr/share/gocode/src/github.com/hashicorp/memberlist/memberlist.go";
/// AES-128, the same on both sides.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODw==";
/// Another AES-128 key.
const WRONG_KEY: &str = "DwcODQwLCgkIBwYFBAMCAQ==";
/// How long a join may take (it has been seen to need 35 s on a loaded machine).
const JOIN_WAIT: Duration = Duration::from_secs(60);
/// How long any other check may take.
const WAIT: Duration = Duration::from_secs(40);
/// How long a node with the wrong key is given to get in.
const KEPT_OUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Go,
    Rumour,
}

struct Binaries {
    go: PathBuf,
    rumour: PathBuf,
}

/// One running peer process.
struct Peer {
    name: String,
    addr: String,
    child: Child,
    stdin: ChildStdin,
    lines: Arc<Mutex<Vec<String>>>,
}

/// A member as a peer lists it: state and metadata.
type Members = BTreeMap<String, (String, String)>;

impl Peer {
    fn start(
        bins: &Binaries,
        kind: Kind,
        name: &str,
        join: &[&Peer],
        key: Option<&str>,
        compression: bool,
    ) -> Result<Peer, String> {
        let port = free_port()?;
        let bind = format!("127.0.0.1:{port}");
        let seeds: Vec<&str> = join.iter().map(|p| p.addr.as_str()).collect();
        let mut command = match kind {
            Kind::Go => {
                let mut c = Command::new(&bins.go);
                c.args(["-name", name, "-bind", &bind, "-join", &seeds.join(",")]);
                if let Some(key) = key {
                    c.args(["-key", key]);
                }
                if compression {
                    c.arg("-compression");
                }
                c
            }
            Kind::Rumour => {
                let mut c = Command::new(&bins.rumour);
                c.args(["--name", name, "--bind", &bind, "--join", &seeds.join(",")]);
                if let Some(key) = key {
                    c.args(["--key", key]);
                }
                if compression {
                    c.arg("--compression");
                }
                c
            }
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        let mut peer = Peer {
            name: name.to_string(),
            addr: String::new(),
            child,
            stdin,
            lines,
        };
        let ready = wait_for(Duration::from_secs(20), || {
            peer.lines()
                .iter()
                .find_map(|l| l.strip_prefix("ready ").map(str::to_string))
        });
        peer.addr = ready.ok_or_else(|| format!("{name} did not start"))?;
        Ok(peer)
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    fn command(&mut self, line: &str) {
        let _ = writeln!(self.stdin, "{line}");
        let _ = self.stdin.flush();
    }

    /// The member list as the peer reports it now.
    fn members(&mut self) -> Members {
        let before = self.lines().len();
        self.command("members");
        let line = wait_for(Duration::from_secs(5), || {
            self.lines()[before..]
                .iter()
                .find(|l| l.starts_with("members"))
                .cloned()
        });
        let mut members = Members::new();
        for entry in line.unwrap_or_default().split_whitespace().skip(1) {
            let mut parts = entry.splitn(3, ':');
            if let (Some(name), Some(state)) = (parts.next(), parts.next()) {
                let meta = parts.next().unwrap_or("").to_string();
                members.insert(name.to_string(), (state.to_string(), meta));
            }
        }
        members
    }

    fn state_of(&mut self, name: &str) -> Option<(String, String)> {
        self.members().remove(name)
    }

    fn received(&self, text: &str) -> bool {
        self.lines().iter().any(|l| l == &format!("user {text}"))
    }

    /// Whether the peer reported a line starting with `prefix` that contains `part`.
    fn reported(&self, prefix: &str, part: &str) -> bool {
        self.lines()
            .iter()
            .any(|l| l.starts_with(prefix) && l.contains(part))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> Result<u16, String> {
    // A port free for both TCP and UDP.
    for _ in 0..32 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = tcp.local_addr().map_err(|e| e.to_string())?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port".to_string())
}

/// Polls `f` every 100 ms until it gives a value or `timeout` passes.
fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The results: one row per check.
#[derive(Default)]
struct Matrix {
    rows: Vec<(String, String, Option<Duration>)>,
}

impl Matrix {
    /// Runs one check: `f` is polled until true or `timeout`.
    fn check(
        &mut self,
        mode: &str,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> bool,
    ) -> bool {
        let start = Instant::now();
        let took = wait_for(timeout, || f().then(|| start.elapsed()));
        let mark = match took {
            Some(t) => format!("ok   {:>6.2} s", t.as_secs_f64()),
            None => format!("FAIL (>{} s)", timeout.as_secs()),
        };
        eprintln!("    {mode:<10} {what:<58} {mark}");
        self.rows.push((mode.to_string(), what.to_string(), took));
        took.is_some()
    }

    /// A check that must stay false for `hold` (a node kept out).
    fn holds(&mut self, mode: &str, what: &str, hold: Duration, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        let broken = wait_for(hold, || (!f()).then_some(()));
        let took = broken.is_none().then(|| start.elapsed());
        let mark = match took {
            Some(t) => format!("ok   {:>6.2} s (held)", t.as_secs_f64()),
            None => "FAIL".to_string(),
        };
        eprintln!("    {mode:<10} {what:<58} {mark}");
        self.rows.push((mode.to_string(), what.to_string(), took));
    }

    fn print(&self) {
        println!("| mode | check | result |");
        println!("| --- | --- | --- |");
        for (mode, what, took) in &self.rows {
            let result = match took {
                Some(t) => format!("ok, {:.2} s", t.as_secs_f64()),
                None => "FAIL".to_string(),
            };
            println!("| {mode} | {what} | {result} |");
        }
        let passed = self.rows.iter().filter(|r| r.2.is_some()).count();
        println!("\n{passed} of {} checks passed", self.rows.len());
    }

    fn all_passed(&self) -> bool {
        self.rows.iter().all(|r| r.2.is_some())
    }
}

/// Whether every peer lists every name in `names` alive.
fn all_alive(peers: &mut [&mut Peer], names: &[String]) -> bool {
    peers.iter_mut().all(|p| {
        let members = p.members();
        names
            .iter()
            .all(|n| members.get(n).is_some_and(|(s, _)| s == "alive"))
    })
}

fn names(peers: &[&Peer]) -> Vec<String> {
    peers.iter().map(|p| p.name.clone()).collect()
}

/// rumour joins a 5-node Go cluster, then user messages, metadata, a Go leave, a rumour crash.
fn rumour_joins_go(
    bins: &Binaries,
    m: &mut Matrix,
    mode: &str,
    key: Option<&str>,
    compression: bool,
) -> Result<(), String> {
    let mut g1 = Peer::start(bins, Kind::Go, "g1", &[], key, compression)?;
    let mut gos = Vec::new();
    for i in 2..=5 {
        gos.push(Peer::start(
            bins,
            Kind::Go,
            &format!("g{i}"),
            &[&g1],
            key,
            compression,
        )?);
    }
    let mut go_names = names(&[&g1]);
    go_names.extend(gos.iter().map(|p| p.name.clone()));
    {
        let mut all: Vec<&mut Peer> = std::iter::once(&mut g1).chain(gos.iter_mut()).collect();
        if wait_for(JOIN_WAIT, || all_alive(&mut all, &go_names).then_some(())).is_none() {
            return Err("the Go cluster did not form".to_string());
        }
    }
    let mut r1 = Peer::start(bins, Kind::Rumour, "r1", &[&g1], key, compression)?;
    let mut every = go_names.clone();
    every.push("r1".to_string());
    m.check(
        mode,
        "rumour joins 5 Go: all 6 list all 6 alive",
        JOIN_WAIT,
        || {
            let mut all: Vec<&mut Peer> = std::iter::once(&mut g1)
                .chain(gos.iter_mut())
                .chain(std::iter::once(&mut r1))
                .collect();
            all_alive(&mut all, &every)
        },
    );
    // The rumour peer is a ring instance: its KV store reaches Go as dskit's memberlist KV
    // carries it, the whole store in the join's push/pull user state (`LocalState`) and each
    // heartbeat as a `KeyValuePair` user message (`NotifyMsg`).
    m.check(
        mode,
        "rumour KV store in Go's push/pull user state",
        WAIT,
        || g1.reported("kvstate ", "ring:ring"),
    );
    m.check(
        mode,
        "rumour KV change at Go as a KeyValuePair",
        WAIT,
        || {
            std::iter::once(&g1)
                .chain(gos.iter())
                .any(|g| g.reported("kv ring ring", ""))
        },
    );
    // rumour sends only to members that answered its own ping (confirmed), which g2 may not
    // have done yet when all six list each other: the send is refused until then, so it is
    // repeated each second until one arrives, as an application waits for `MemberConfirmed`.
    let mut sent: Option<Instant> = None;
    m.check(mode, "user message rumour -> Go", WAIT, || {
        if sent.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            r1.command("send g2 hello-from-rumour");
            sent = Some(Instant::now());
        }
        gos[0].received("hello-from-rumour")
    });
    gos[1].command("send r1 hello-from-go");
    m.check(mode, "user message Go -> rumour", WAIT, || {
        r1.received("hello-from-go")
    });
    r1.command("meta zone-r1");
    m.check(mode, "rumour metadata seen by every Go node", WAIT, || {
        std::iter::once(&mut g1)
            .chain(gos.iter_mut())
            .all(|g| g.state_of("r1").is_some_and(|(_, meta)| meta == "zone-r1"))
    });
    gos[2].command("meta zone-g4");
    m.check(mode, "Go metadata seen by rumour", WAIT, || {
        r1.state_of("g4").is_some_and(|(_, meta)| meta == "zone-g4")
    });
    gos[3].command("leave");
    m.check(mode, "Go leave seen as left by rumour", WAIT, || {
        r1.state_of("g5").is_some_and(|(s, _)| s == "left")
    });
    r1.kill();
    m.check(
        mode,
        "rumour crash declared dead by every Go node",
        WAIT,
        || {
            std::iter::once(&mut g1)
                .chain(gos.iter_mut().take(3))
                .all(|g| g.state_of("r1").is_some_and(|(s, _)| s == "dead"))
        },
    );
    Ok(())
}

/// Go joins 3 rumour nodes, then a rumour leave and a Go crash.
fn go_joins_rumour(
    bins: &Binaries,
    m: &mut Matrix,
    mode: &str,
    key: Option<&str>,
    compression: bool,
) -> Result<(), String> {
    let mut r1 = Peer::start(bins, Kind::Rumour, "r1", &[], key, compression)?;
    let mut r2 = Peer::start(bins, Kind::Rumour, "r2", &[&r1], key, compression)?;
    let mut r3 = Peer::start(bins, Kind::Rumour, "r3", &[&r1], key, compression)?;
    let rumour_names = names(&[&r1, &r2, &r3]);
    if wait_for(JOIN_WAIT, || {
        all_alive(&mut [&mut r1, &mut r2, &mut r3], &rumour_names).then_some(())
    })
    .is_none()
    {
        return Err("the rumour cluster did not form".to_string());
    }
    let mut g1 = Peer::start(bins, Kind::Go, "g1", &[&r1], key, compression)?;
    let mut every = rumour_names.clone();
    every.push("g1".to_string());
    m.check(
        mode,
        "Go joins 3 rumour: all 4 list all 4 alive",
        JOIN_WAIT,
        || all_alive(&mut [&mut r1, &mut r2, &mut r3, &mut g1], &every),
    );
    m.check(
        mode,
        "rumour KV store in Go's push/pull user state",
        WAIT,
        || g1.reported("kvstate ", "ring:ring"),
    );
    r3.command("leave");
    m.check(mode, "rumour leave seen as left by Go", WAIT, || {
        g1.state_of("r3").is_some_and(|(s, _)| s == "left")
    });
    g1.kill();
    m.check(
        mode,
        "Go crash declared dead by every rumour node",
        WAIT,
        || {
            [&mut r1, &mut r2]
                .iter_mut()
                .all(|r| r.state_of("g1").is_some_and(|(s, _)| s == "dead"))
        },
    );
    Ok(())
}

/// A node with another key stays out, both ways.
fn wrong_key(bins: &Binaries, m: &mut Matrix) -> Result<(), String> {
    let mode = "wrong-key";
    let mut g1 = Peer::start(bins, Kind::Go, "g1", &[], Some(KEY), true)?;
    let mut g2 = Peer::start(bins, Kind::Go, "g2", &[&g1], Some(KEY), true)?;
    let mut r1 = Peer::start(bins, Kind::Rumour, "r1", &[&g1], Some(WRONG_KEY), true)?;
    m.holds(
        mode,
        "rumour with another key kept out of Go",
        KEPT_OUT,
        || {
            g1.state_of("r1").is_none()
                && g2.state_of("r1").is_none()
                && r1.state_of("g1").is_none_or(|(s, _)| s != "alive")
        },
    );
    let mut r2 = Peer::start(bins, Kind::Rumour, "r2", &[], Some(KEY), true)?;
    let mut g3 = Peer::start(bins, Kind::Go, "g3", &[&r2], Some(WRONG_KEY), true)?;
    m.holds(
        mode,
        "Go with another key kept out of rumour",
        KEPT_OUT,
        || r2.state_of("g3").is_none() && g3.state_of("r2").is_none_or(|(s, _)| s != "alive"),
    );
    Ok(())
}

/// What `cargo xtask interop` needs and does not find, each with how to install it.
fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    let go = Command::new("go").arg("version").output();
    if !go.is_ok_and(|out| out.status.success()) {
        missing.push(
            "Go (`go version` fails): install it with `sudo apt-get install golang-go`".to_string(),
        );
    }
    if !Path::new(MEMBERLIST_SOURCE).is_file() {
        missing.push(format!(
            "hashicorp/memberlist ({MEMBERLIST_SOURCE} does not exist): install it with \
             `sudo apt-get install golang-github-hashicorp-memberlist-dev`"
        ));
    }
    missing
}

fn build(root: &Path) -> Result<Binaries, String> {
    let out_dir = crate::peers::target_dir(root).join("interop");
    let gopath = out_dir.join("gopath");
    std::fs::create_dir_all(&gopath)
        .map_err(|e| format!("cannot create {}: {e}", gopath.display()))?;
    let go = out_dir.join("memberlist-peer");
    eprintln!("==> GO111MODULE=off go build benches/peers/memberlist-interop/peer");
    let status = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&go)
        .arg(".")
        .current_dir(root.join("benches/peers/memberlist-interop/peer"))
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOPATH", format!("{}:{GOCODE}", gopath.display()))
        .status()
        .map_err(|e| format!("go build: {e}"))?;
    if !status.success() {
        return Err(format!("go build failed ({status})"));
    }
    eprintln!("==> cargo build -p rumour-benches --bin interop-peer");
    let status = Command::new("cargo")
        .args(["build", "-p", "rumour-benches", "--bin", "interop-peer"])
        .current_dir(root)
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build failed ({status})"));
    }
    let rumour = crate::peers::target_dir(root).join("debug/interop-peer");
    Ok(Binaries { go, rumour })
}

/// `cargo xtask interop [plain|encrypted|wrong-key]...` (default: all three).
pub fn run(root: &Path, args: &[String]) -> ExitCode {
    let modes: Vec<&str> = if args.is_empty() {
        vec!["plain", "encrypted", "wrong-key"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    if let Some(bad) = modes
        .iter()
        .find(|m| !["plain", "encrypted", "wrong-key"].contains(m))
    {
        eprintln!("unknown mode {bad}: expected plain, encrypted or wrong-key");
        return ExitCode::FAILURE;
    }
    let missing = missing_tools();
    if !missing.is_empty() {
        eprintln!("cargo xtask interop needs:");
        for m in missing {
            eprintln!("  - {m}");
        }
        return ExitCode::FAILURE;
    }
    let bins = match build(root) {
        Ok(bins) => bins,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let mut matrix = Matrix::default();
    for mode in modes {
        eprintln!("==> {mode}");
        let result = match mode {
            "plain" => rumour_joins_go(&bins, &mut matrix, mode, None, false)
                .and_then(|()| go_joins_rumour(&bins, &mut matrix, mode, None, false)),
            "encrypted" => rumour_joins_go(&bins, &mut matrix, mode, Some(KEY), true)
                .and_then(|()| go_joins_rumour(&bins, &mut matrix, mode, Some(KEY), true)),
            _ => wrong_key(&bins, &mut matrix),
        };
        if let Err(error) = result {
            eprintln!("{mode}: {error}");
            matrix.rows.push((mode.to_string(), error, None));
        }
    }
    matrix.print();
    if matrix.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
