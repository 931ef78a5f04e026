//! The hash ring as the store's main value: small heartbeat changes, cheap in-sync pull-push.

use std::time::Duration;

use crate::support::{EPOCH_MILLIS, Net, addr};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_gossip::{Config, MessageKind};
use rumour_ring::{Instance, Ring, State, Timestamp, random_tokens};

const INSTANCES: usize = 1000;
const TOKENS: usize = 128;

fn big_ring(now: Timestamp) -> Ring {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut ring = Ring::new();
    let mut taken = Vec::with_capacity(INSTANCES * TOKENS);
    for i in 0..INSTANCES {
        let tokens = random_tokens(TOKENS, &taken, &mut rng).unwrap();
        taken.extend_from_slice(tokens.as_slice());
        let id = format!("ingester-{i:03}");
        let addr = format!("10.1.{}.{}:9095", i / 256, i % 256);
        ring.set_instance(&id, Instance::new(addr, "", State::Active, tokens, now))
            .unwrap();
        ring.set_heartbeat(&id, now).unwrap();
    }
    ring
}

/// Two machines holding the same 1,000-instance x 128-token ring under key "ring".
fn two_in_sync() -> Net {
    let mut net = Net::new(2, |c| Config {
        pullpush_interval: None,
        ..c
    })
    .without_gossip();
    net.nodes[0].register::<Ring>();
    net.nodes[1].register::<Ring>();
    let now = net.now;
    let ring = big_ring(Timestamp(EPOCH_MILLIS));
    net.nodes[0]
        .cas(now, "ring", |_: Option<&Ring>| Some(ring.clone()))
        .unwrap();
    let join = net.nodes[0].start_pullpush(now, addr(1), true).unwrap();
    net.send(0, 1, true, join);
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.nodes[1].get::<Ring>("ring").unwrap().len(), INSTANCES);
    net
}

fn pullpush_bytes(net: &mut Net) -> (usize, Vec<MessageKind>) {
    let begin = net.log.len();
    let now = net.now;
    let opening = net.nodes[0].start_pullpush(now, addr(1), false).unwrap();
    net.send(0, 1, true, opening);
    net.run_for(Duration::from_secs(1));
    let exchange = net.since(begin);
    (
        exchange.iter().map(|d| d.bytes.len()).sum(),
        exchange.iter().map(|d| d.message().kind()).collect(),
    )
}

#[test]
fn a_ring_heartbeat_change_crosses_the_network_as_a_small_message() {
    let mut net = two_in_sync();
    let now = net.now + Duration::from_secs(5);
    let beat = Timestamp(EPOCH_MILLIS + 5_000);
    net.nodes[0]
        .cas(now, "ring", |cur: Option<&Ring>| {
            let mut ring = cur.unwrap().clone();
            ring.set_heartbeat("ingester-042", beat).unwrap();
            Some(ring)
        })
        .unwrap();
    let messages = net.nodes[0].fill_broadcasts(2, 1384);
    assert_eq!(messages.len(), 1);
    let len = messages[0].len();
    println!("heartbeat change of a {INSTANCES} x {TOKENS} ring: {len} bytes");
    assert!(len < 64, "{len} bytes");
    net.nodes[1]
        .handle_packet(now, addr(0), &messages[0])
        .unwrap();
    let ring = net.nodes[1].get::<Ring>("ring").unwrap();
    assert_eq!(ring.heartbeat_of("ingester-042"), Some(beat));
    assert_eq!(ring, net.nodes[0].get::<Ring>("ring").unwrap());
}

#[test]
fn an_in_sync_pullpush_of_a_large_ring_costs_a_few_dozen_bytes() {
    let mut net = two_in_sync();
    let whole = net.nodes[0]
        .entry("ring")
        .map(|e| e.value.encode().len())
        .unwrap();
    let (in_sync, kinds) = pullpush_bytes(&mut net);
    assert_eq!(kinds, [MessageKind::Summary, MessageKind::Done]);
    assert!(in_sync < 100, "{in_sync} bytes");

    // One heartbeat apart: digests of every instance, then that one instance's entry.
    let now = net.now;
    net.nodes[1]
        .cas(now, "ring", |cur: Option<&Ring>| {
            let mut ring = cur.unwrap().clone();
            ring.set_heartbeat("ingester-007", Timestamp(EPOCH_MILLIS + 9_000))
                .unwrap();
            Some(ring)
        })
        .unwrap();
    let (one_apart, _) = pullpush_bytes(&mut net);
    assert_eq!(
        net.nodes[0]
            .get::<Ring>("ring")
            .unwrap()
            .heartbeat_of("ingester-007"),
        Some(Timestamp(EPOCH_MILLIS + 9_000))
    );
    println!(
        "{INSTANCES} x {TOKENS} ring ({whole} bytes encoded): in-sync pull-push {in_sync} bytes, \
         one heartbeat apart {one_apart} bytes"
    );
    assert!(one_apart < whole / 5, "{one_apart} bytes vs {whole}");
}
