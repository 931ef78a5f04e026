//! `interop-peer`: one rumour node in memberlist wire mode for `cargo xtask interop`, driven
//! over stdin and reporting on stdout exactly like the Go peer
//! (`benches/peers/memberlist-interop/peer`), so the orchestrator drives both kinds alike.
//!
//! Commands (stdin): `members`, `send <name> <text>`, `meta <text>`, `leave`, `quit`.
//! Reports (stdout): `ready <addr>`, `members <name>:<state>:<meta> ...`, `user <text>`,
//! `left`.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use rumour_cluster::{Cluster, JoinSettings, MemberlistOptions, Profile, Wire};

/// The flags (the Go peer's).
#[derive(Parser, Debug)]
struct Args {
    /// Member name.
    #[arg(long)]
    name: String,
    /// UDP and TCP address.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Comma-separated seeds.
    #[arg(long, default_value = "")]
    join: String,
    /// AES key in standard base64.
    #[arg(long)]
    key: Option<String>,
    /// LZW compression.
    #[arg(long)]
    compression: bool,
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().trim_end_matches('=');
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut options = MemberlistOptions::new().with_compression(args.compression);
    if let Some(key) = &args.key {
        options = options.with_key(&decode_base64(key).ok_or("key is not base64")?)?;
    }
    let seeds: Vec<SocketAddr> = args
        .join
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let cluster = Cluster::builder(args.name.clone())
        .bind(args.bind)
        .profile(Profile::Local)
        .wire(Wire::Memberlist(options))
        // A ring instance heartbeats, so the KV store has changes for memberlist's channels.
        .ring_instance(true)
        .join(seeds)
        .join_settings(JoinSettings {
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(2),
            max_retries: 60,
            ..JoinSettings::default()
        })
        .build()
        .await?;
    say(&format!("ready {}", cluster.addr()));
    let mut users = cluster.user_messages();
    tokio::spawn(async move {
        while let Some(message) = users.recv().await {
            say(&format!("user {}", String::from_utf8_lossy(&message.bytes)));
        }
    });
    // stdin is read on a thread of its own (tokio's `io-std` is not enabled here).
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let mut fields = line.trim().splitn(3, ' ');
        match fields.next().unwrap_or("") {
            "members" => {
                let members = cluster.members().await.unwrap_or_default();
                let parts: Vec<String> = members
                    .iter()
                    .map(|m| {
                        let state = format!("{:?}", m.state).to_lowercase();
                        format!("{}:{state}:{}", m.name, String::from_utf8_lossy(&m.meta))
                    })
                    .collect();
                say(&format!("members {}", parts.join(" ")));
            }
            "send" => {
                if let (Some(to), Some(text)) = (fields.next(), fields.next())
                    && let Err(error) = cluster.send_reliable(to, text.to_string()).await
                {
                    eprintln!("send: {error}");
                }
            }
            "meta" => {
                let meta = fields.next().unwrap_or("").to_string();
                if let Err(error) = cluster.set_meta(meta).await {
                    eprintln!("meta: {error}");
                }
            }
            "leave" => {
                if let Err(error) = cluster.leave(Duration::from_secs(5)).await {
                    eprintln!("leave: {error}");
                }
                say("left");
            }
            "quit" => break,
            _ => {}
        }
    }
    cluster.shutdown().await;
    Ok(())
}
