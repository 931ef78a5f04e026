//! `rumour agent --keyring-file PATH`: the keys a node seals and opens frames with, read from a
//! file at start and again on every SIGHUP, and the warning for an exposed plaintext agent.
//!
//! # Format
//!
//! One key per line, **the first line is the primary** (it seals; every key opens). A key is 32
//! bytes written as 44 characters of standard base64 (the form `consul keygen` and memberlist
//! use) or as 64 hex digits. Blank lines and lines starting with `#` are ignored. Keep the file
//! readable by the agent's user only: the agent warns when group or others can read it.
//!
//! ```text
//! # primary
//! 9t4Ej1TzcHDvwcDlfaYvCJb+lFCwe4EjvGXLbVhEBzU=
//! # still accepted while the rotation runs
//! 3f1c7e0b9a2d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6
//! ```
//!
//! Nothing here logs, prints or returns key material: errors name the line, never its content,
//! and a reload is logged with the fingerprints only.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use rumour::Cluster;
use rumour::transport::TransportError;
use rumour::transport::frame::{Key, Keyring};

use crate::error::Error;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringFileError {
    /// The file could not be read.
    #[error("cannot read it")]
    Read(#[source] std::io::Error),
    /// A line is not a key (its content is never quoted).
    #[error("line {line} is not a key")]
    Line {
        /// The line number, from 1.
        line: usize,
        /// Why.
        #[source]
        source: TransportError,
    },
}

/// Reads a key file (see the module documentation).
///
/// # Errors
/// The file cannot be read, or a line is not a key (the error names the line, not its content).
pub fn read(path: &Path) -> Result<Keyring, Error> {
    let keyring = std::fs::read_to_string(path)
        .map_err(KeyringFileError::Read)
        .and_then(|text| parse(&text));
    keyring.map_err(|source| Error::Keyring {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses the text of a key file.
///
/// # Errors
/// A line that is not a key; the error names the line number only.
pub fn parse(text: &str) -> Result<Keyring, KeyringFileError> {
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = Key::parse(line).map_err(|source| KeyringFileError::Line {
            line: i + 1,
            source,
        })?;
        keys.push(key);
    }
    Ok(Keyring::from_keys(keys))
}

/// Warns (through `tracing`) if group or others may read the key file.
pub fn check_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "the keyring file is readable by group or others; chmod 600 it"
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Logs a keyring's fingerprints (never its keys).
pub fn log_keyring(what: &str, path: &Path, keyring: &Keyring) {
    let fingerprints: Vec<String> = keyring
        .fingerprints()
        .iter()
        .map(ToString::to_string)
        .collect();
    tracing::info!(
        file = %path.display(),
        keys = keyring.len(),
        fingerprints = ?fingerprints,
        "{what}"
    );
}

/// Re-reads the key file and installs it as the node's whole keyring. A file that cannot be
/// read, holds a bad line, or holds no key leaves the current keys in place (turning encryption
/// off takes a restart without `--keyring-file`). Returns whether the keys were replaced.
pub async fn reload(cluster: &Cluster, path: &Path) -> bool {
    let keyring = match read(path) {
        Ok(keyring) if keyring.is_empty() => {
            tracing::warn!(file = %path.display(), "keyring file holds no key; keeping the current keys");
            return false;
        }
        Ok(keyring) => keyring,
        Err(error) => {
            let error = crate::error::report(&error);
            tracing::warn!(%error, "keyring not reloaded; keeping the current keys");
            return false;
        }
    };
    check_permissions(path);
    log_keyring("keyring reloaded", path, &keyring);
    cluster.set_keyring(keyring).await.is_ok()
}

/// Re-reads `path` into the node's keyring on every SIGHUP, until the node stops. The handler
/// is registered before this returns, so a SIGHUP sent afterwards never kills the process.
///
/// # Errors
/// The signal handler could not be registered.
#[cfg(unix)]
pub fn spawn_reloader(
    cluster: Cluster,
    path: PathBuf,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            if !cluster.is_running() {
                return;
            }
            reload(&cluster, &path).await;
        }
    }))
}

/// Whether `ip` is reachable only from this host or a private network: loopback, RFC 1918,
/// link-local, CGNAT (100.64/10), IPv6 unique-local (fc00::/7) and link-local (fe80::/10).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The warning for an agent that gossips in plaintext on an address others may reach: any
/// address that is not loopback or private, the unspecified address (every interface)
/// included. `None` when encrypted or private.
pub fn exposure_warning(bind: SocketAddr, encrypted: bool) -> Option<String> {
    if encrypted || (!bind.ip().is_unspecified() && is_private(bind.ip())) {
        return None;
    }
    Some(format!(
        "gossip on {bind} is not encrypted and the address is not loopback or private: anyone \
         who can reach it can join, forge members and deaths, and read the cluster's state. \
         Give a --keyring-file, or bind a private address behind a firewall"
    ))
}

#[cfg(test)]
mod reload_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const HEX: &str = "0101010101010101010101010101010101010101010101010101010101010101";

    #[test]
    fn the_first_key_is_primary_and_comments_and_blanks_are_skipped() {
        let ring = parse(&format!("# primary\n\n  {B64}  \n# old\n{HEX}\n")).unwrap();
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.primary(), Some(&Key::parse(B64).unwrap()));
        assert!(ring.contains(&Key::from_bytes([1; 32])));
        assert!(parse("# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn a_bad_line_is_named_by_number_and_never_quoted() {
        let secretish = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I";
        let error = parse(&format!("{B64}\n{secretish}x\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(!error.contains(secretish), "{error}");
    }

    #[test]
    fn only_public_plaintext_binds_are_warned_about() {
        let warn = |addr: &str, encrypted: bool| {
            exposure_warning(addr.parse().unwrap(), encrypted).is_some()
        };
        for private in [
            "127.0.0.1:7946",
            "10.1.2.3:7946",
            "172.16.0.1:7946",
            "192.168.1.10:7946",
            "169.254.0.1:7946",
            "100.64.0.1:7946",
            "[::1]:7946",
            "[fd00::1]:7946",
            "[fe80::1]:7946",
        ] {
            assert!(!warn(private, false), "{private}");
        }
        for public in [
            "0.0.0.0:7946",
            "8.8.8.8:7946",
            "172.32.0.1:7946",
            "[::]:7946",
            "[2001:db8::1]:7946",
            "[::ffff:8.8.8.8]:7946",
        ] {
            assert!(warn(public, false), "{public}");
            assert!(!warn(public, true), "{public} encrypted");
        }
    }
}
