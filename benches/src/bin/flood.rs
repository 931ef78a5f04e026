//! A member flood against one node on real sockets: `--members N` forged `Alive`s (one datagram
//! each, addresses where nothing listens) sent to a node on 127.0.0.1, then the node's member
//! table and the process's resident memory, before, at the peak and once forged entries expired.
//! Prints one JSON line.
//!
//! `cargo run --release -p rumour-benches --bin flood -- --members 100000`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use rumour_cluster::envelope::{self, Channel};
use rumour_cluster::swim::message::{Alive, Message};
use rumour_cluster::swim::{Incarnation, NodeName};
use rumour_cluster::transport::frame::{FrameCodec, FrameConfig};
use rumour_cluster::transport::{NetConfig, NetTransport, Transport};
use rumour_cluster::{Cluster, Profile};

#[derive(Parser)]
struct Args {
    /// Forged members to announce.
    #[arg(long, default_value_t = 100_000)]
    members: u32,
    /// Datagrams sent between pauses of one millisecond (keeps the socket buffers from
    /// overflowing on loopback).
    #[arg(long, default_value_t = 200)]
    burst: u32,
}

/// The process's resident set size in bytes (Linux), 0 elsewhere.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let node = Cluster::builder("target")
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .profile(Profile::Local)
        .build()
        .await?;
    let attacker =
        NetTransport::bind(NetConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss();
    let frame = FrameCodec::new(FrameConfig::default());
    let started = Instant::now();
    let mut sent_bytes = 0u64;
    for i in 0..args.members {
        let alive = Message::Alive(Alive {
            name: NodeName::new(format!("forged-{i:06}"))?,
            addr: SocketAddr::from(([10, 99, (i >> 8) as u8, i as u8], 7946)),
            incarnation: Incarnation(1),
            meta: Bytes::new(),
        });
        let packet = frame.encode_packet(&[&envelope::tag(Channel::Swim, &alive.encode())]);
        sent_bytes += packet.len() as u64;
        attacker.send_datagram(node.addr(), packet.into()).await?;
        if i % args.burst == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let flood_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let peak_members = node.members().await?.len();
    let peak = rss();
    let stats = node.stats().await?;
    // Forged entries expire `unconfirmed_timeout` after they were learned.
    let expiry = Profile::Local.swim().unconfirmed_timeout() + Duration::from_secs(5);
    tokio::time::sleep(expiry).await;
    let after_members = node.members().await?.len();
    let after = rss();
    println!(
        "{}",
        serde_json::json!({
            "bench": "flood",
            "forged_members": args.members,
            "sent_bytes": sent_bytes,
            "flood_seconds": flood_seconds,
            "datagrams_received": stats.transport.datagrams_in,
            "members_at_peak": peak_members,
            "members_evicted": stats.swim.members_evicted,
            "rss_before_bytes": before,
            "rss_peak_bytes": peak,
            "rss_after_expiry_bytes": after,
            "members_after_expiry": after_members,
        })
    );
    node.shutdown().await;
    attacker.shutdown().await;
    Ok(())
}
