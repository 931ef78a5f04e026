//! `--keyring-file` and SIGHUP, in-process: the key file is re-read on SIGHUP and becomes the
//! node's whole keyring; a bad or empty file keeps the current keys; the logs name keys by
//! fingerprint and never hold key material. (It signals its own process: the handler is registered before the first SIGHUP.)

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumour::transport::frame::Key;
use rumour::{Cluster, Profile};

use super as keyring_file;
use tokio::time::{Instant, sleep};

/// Collects everything logged, to check what the logs hold.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn write_file(path: &std::path::Path, keys: &[&Key]) {
    let text: String = keys
        .iter()
        .map(|k| format!("{}\n", k.to_base64()))
        .collect();
    std::fs::write(path, format!("# test keys\n{text}")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_key_file_and_the_logs_never_hold_a_key() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let dir = std::env::temp_dir().join(format!("rumour-keyring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys");
    let (a, b) = (Key::from_bytes([0x5a; 32]), Key::from_bytes([0xc3; 32]));
    write_file(&path, &[&a]);

    let keyring = keyring_file::read(&path).unwrap();
    keyring_file::log_keyring("keyring loaded", &path, &keyring);
    let cluster = Cluster::builder("reload")
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .profile(Profile::Local)
        .keyring(keyring)
        .build()
        .await
        .unwrap();
    keyring_file::spawn_reloader(cluster.clone(), path.clone()).unwrap();
    assert_eq!(
        cluster.keys().await.unwrap().fingerprints,
        [a.fingerprint()]
    );

    // Rotation through the file: the new key first (primary), the old one still accepted.
    write_file(&path, &[&b, &a]);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while cluster.keys().await.unwrap().fingerprints != [b.fingerprint(), a.fingerprint()] {
        assert!(Instant::now() < deadline, "SIGHUP did not reload the keys");
        sleep(Duration::from_millis(20)).await;
    }

    // A bad line or an empty file keeps the current keys.
    std::fs::write(&path, "not a key\n").unwrap();
    assert!(!keyring_file::reload(&cluster, &path).await);
    std::fs::write(&path, "# empty\n").unwrap();
    assert!(!keyring_file::reload(&cluster, &path).await);
    assert_eq!(
        cluster.keys().await.unwrap().fingerprints,
        [b.fingerprint(), a.fingerprint()]
    );
    // Removing the old key through the file.
    write_file(&path, &[&b]);
    assert!(keyring_file::reload(&cluster, &path).await);
    assert_eq!(
        cluster.keys().await.unwrap().fingerprints,
        [b.fingerprint()]
    );

    let stats = format!("{:?}", cluster.stats().await.unwrap());
    let debug = format!("{cluster:?} {stats}");
    cluster.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);

    let text = logs.text();
    assert!(text.contains("keyring reloaded"), "{text}");
    assert!(text.contains(&b.fingerprint().to_string()), "{text}");
    assert!(text.contains("line 1"), "the bad line is named: {text}");
    for key in [&a, &b] {
        let b64 = key.to_base64();
        assert!(!text.contains(&b64), "a key in the logs: {text}");
        assert!(!debug.contains(&b64));
    }
    for byte in ["5a5a5a5a", "c3c3c3c3", "90, 90, 90", "195, 195, 195"] {
        assert!(!text.contains(byte), "key bytes in the logs: {text}");
        assert!(!debug.contains(byte), "key bytes in Debug output");
    }
}
