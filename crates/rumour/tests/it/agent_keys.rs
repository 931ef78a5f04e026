//! `rumour agent` with keys, as real processes on 127.0.0.1: two agents sharing a key file find
//! each other, SIGHUP re-reads the file, the logs name keys by fingerprint only; and an agent
//! bound to every interface without keys warns at start. A guard kills every child.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rumour::transport::frame::Key;

/// Kills and reaps its children when dropped.
struct Agents(Vec<Child>);

impl Drop for Agents {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An agent's output lines, stdout and stderr together, as they come.
struct Output(mpsc::Receiver<String>, Vec<String>);

impl Output {
    /// Returns the first line seen so far containing `needle`, or waits (up to 20 s) for one.
    fn wait_for(&mut self, needle: &str) -> String {
        if let Some(line) = self.1.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.0.recv_timeout(left) {
                Ok(line) => {
                    self.1.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?}; got {:#?}", self.1);
    }

    fn seen(&self) -> String {
        self.1.join("\n")
    }
}

fn start(agents: &mut Agents, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rumour"))
        .arg("agent")
        .args(["--profile", "local", "--http-addr", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the rumour binary starts");
    let (tx, rx) = mpsc::channel();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
    }
    agents.0.push(child);
    Output(rx, Vec::new())
}

fn write_keys(path: &Path, keys: &[&Key]) {
    let text: String = keys
        .iter()
        .map(|k| format!("{}\n", k.to_base64()))
        .collect();
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn gossip_addr(banner: &str) -> String {
    let addr = banner.split("gossip on ").nth(1).expect("banner");
    addr.split(',').next().unwrap().trim().to_string()
}

#[test]
fn agents_sharing_a_key_file_meet_and_sighup_reloads_it_without_logging_keys() {
    let dir = std::env::temp_dir().join(format!("rumour-agent-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys");
    let (a, b) = (Key::from_bytes([0x11; 32]), Key::from_bytes([0x22; 32]));
    write_keys(&path, &[&a]);
    let file = path.to_str().unwrap();
    let mut agents = Agents(Vec::new());
    let common = ["--bind-addr", "127.0.0.1:0", "--keyring-file", file];
    let mut first = start(&mut agents, &[&["--name", "k-1"][..], &common].concat());
    let banner = first.wait_for("gossip on");
    first.wait_for("keyring loaded");
    let seed = gossip_addr(&banner);
    let mut second = start(
        &mut agents,
        &[&["--name", "k-2", "--join", &seed][..], &common].concat(),
    );
    second.wait_for("gossip on");
    first.wait_for("k-2");

    // Rotation step through the file: b primary, a still accepted.
    write_keys(&path, &[&b, &a]);
    let pid = agents.0[0].id().to_string();
    let hup = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(hup.success());
    let reloaded = first.wait_for("keyring reloaded");
    assert!(
        reloaded.contains(&b.fingerprint().to_string()),
        "{reloaded}"
    );
    assert!(reloaded.contains("keys=2"), "{reloaded}");

    let logs = format!("{}\n{}", first.seen(), second.seen());
    assert!(!logs.contains("not encrypted"), "{logs}");
    for key in [&a, &b] {
        assert!(
            !logs.contains(&key.to_base64()),
            "a key in the logs: {logs}"
        );
    }
    for bytes in ["11111111", "22222222", "17, 17, 17", "34, 34, 34"] {
        assert!(!logs.contains(bytes), "key bytes in the logs: {logs}");
    }
    drop(agents);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_agent_on_every_interface_without_keys_warns_at_start() {
    let mut agents = Agents(Vec::new());
    let mut output = start(&mut agents, &["--name", "open", "--bind-addr", "0.0.0.0:0"]);
    let warning = output.wait_for("not encrypted");
    assert!(warning.contains("WARN"), "{warning}");
    let mut quiet = start(
        &mut agents,
        &["--name", "closed", "--bind-addr", "127.0.0.1:0"],
    );
    quiet.wait_for("gossip on");
    assert!(!quiet.seen().contains("not encrypted"), "{}", quiet.seen());
}
