//! Helpers shared by the socket tests: bounded waits, never sleeps as assertions.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::SocketAddr;
use std::time::Duration;

use rumour_transport::{Incoming, NetConfig, NetTransport, Stats, Transport};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Upper bound on any wait: generous, because the machine is shared.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub async fn bind(config: NetConfig) -> NetTransport {
    NetTransport::bind(config).await.expect("bind on loopback")
}

pub async fn bind_local() -> NetTransport {
    bind(NetConfig::new(addr("127.0.0.1:0"))).await
}

/// Binds on `[::1]:0`, or prints why not and returns `None` (no IPv6 on this machine).
pub async fn bind_v6(mut config: NetConfig) -> Option<NetTransport> {
    config.bind = addr("[::1]:0");
    match NetTransport::bind(config).await {
        Ok(t) => Some(t),
        Err(e) => {
            println!("note: skipping the IPv6 part, ::1 cannot be bound here: {e}");
            None
        }
    }
}

/// The next message, or a panic after [`WAIT`].
pub async fn recv(t: &impl Transport) -> Incoming {
    tokio::time::timeout(WAIT, t.recv())
        .await
        .expect("nothing received in time")
        .expect("transport error")
}

/// Polls `stats` until `done` holds, or panics after [`WAIT`] showing the last stats.
pub async fn until(t: &impl Transport, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = t.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The connection preamble a peer advertising `advertise` (IPv4) writes first.
pub fn preamble_v4(advertise: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(v4) = advertise else {
        panic!("IPv4 only")
    };
    let mut out = b"RUC\x01\x04".to_vec();
    out.extend_from_slice(&v4.ip().octets());
    out.extend_from_slice(&v4.port().to_be_bytes());
    out
}

/// The envelope in front of a message: kind (0 datagram, 1 reliable) and length.
pub fn envelope(kind: u8, len: u32) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&len.to_be_bytes());
    out
}

/// Waits until the server closes `stream` (read returns end of stream or an error).
pub async fn closed_by_server(stream: &mut TcpStream) {
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("server closed the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "server sent data: {read:?}");
}
