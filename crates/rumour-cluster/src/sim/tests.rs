//! Tests of the simulator itself, with a toy machine.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::*;

/// Every 10 ms sends its counter to a random node; counts what it receives.
struct Pinger {
    rng: ChaCha8Rng,
    nodes: usize,
    next: Instant,
    sent: u64,
    received: u64,
    generation: u32,
    outbox: Vec<Transmit>,
}

impl Machine for Pinger {
    type Event = u64;

    fn handle_packet(&mut self, _: Instant, _: SocketAddr, _: &[u8]) {
        self.received += 1;
    }
    fn handle_stream(&mut self, _: Instant, _: SocketAddr, _: &[u8]) {
        self.received += 1;
    }
    fn handle_timeout(&mut self, now: Instant) {
        if now >= self.next {
            self.next = now + Duration::from_millis(10);
            let to = node_addr(NodeId(self.rng.gen_range(0..self.nodes)));
            self.sent += 1;
            self.outbox.push(Transmit {
                to,
                delivery: Delivery::Datagram,
                bytes: Bytes::from(self.sent.to_le_bytes().to_vec()),
            });
        }
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next)
    }
    fn poll_event(&mut self) -> Option<u64> {
        None
    }
}

fn sim(seed: u64, nodes: usize, link: LinkConfig) -> Sim<Pinger> {
    let mut sim = Sim::new(
        seed,
        std::time::Instant::now(),
        link,
        Box::new(move |seed: NodeSeed| Pinger {
            rng: seed.rng,
            nodes,
            next: seed.now,
            sent: 0,
            received: 0,
            generation: seed.generation,
            outbox: Vec::new(),
        }),
    );
    for _ in 0..nodes {
        sim.add_node();
    }
    sim
}

fn lossy() -> LinkConfig {
    LinkConfig {
        loss: 0.1,
        duplicate: 0.05,
        ..LinkConfig::default()
    }
}

#[test]
fn one_seed_replays_the_same_trace() {
    let run = |seed| {
        let mut s = sim(seed, 8, lossy());
        s.schedule(Duration::from_millis(200), Fault::Crash(NodeId(3)));
        s.schedule(Duration::from_millis(400), Fault::Restart(NodeId(3)));
        s.run_for(Duration::from_secs(1)).unwrap();
        (s.trace_hash(), s.stats().clone())
    };
    let (first, stats) = run(7);
    assert!(stats.delivered > 500, "the toy cluster talked: {stats:?}");
    assert_eq!(run(7).0, first, "seed 7 must replay exactly");
    assert_ne!(run(8).0, first, "another seed gives another run");
}

#[test]
fn crashed_node_receives_nothing_and_restarts_fresh() {
    let mut s = sim(1, 4, LinkConfig::default());
    s.apply(Fault::Crash(NodeId(0)));
    s.run_for(Duration::from_millis(500)).unwrap();
    assert!(s.node(NodeId(0)).is_none());
    assert!(s.stats().dropped_down > 0);
    s.apply(Fault::Restart(NodeId(0)));
    let node = s.node(NodeId(0)).unwrap();
    assert_eq!((node.generation, node.received), (1, 0));
}

#[test]
fn paused_node_handles_nothing_until_it_resumes() {
    let mut s = sim(2, 4, LinkConfig::default());
    s.apply(Fault::Pause(NodeId(1), Duration::from_millis(300)));
    s.run_for(Duration::from_millis(290)).unwrap();
    let paused = s.node(NodeId(1)).unwrap();
    assert_eq!((paused.sent, paused.received), (0, 0));
    s.run_for(Duration::from_millis(20)).unwrap();
    let resumed = s.node(NodeId(1)).unwrap();
    assert!(resumed.received > 0, "queued packets arrive on resume");
}

#[test]
fn partition_drops_packets_between_sides_until_healed() {
    let mut s = sim(3, 4, LinkConfig::default());
    s.apply(Fault::Partition(vec![
        vec![NodeId(0), NodeId(1)],
        vec![NodeId(2), NodeId(3)],
    ]));
    s.run_for(Duration::from_millis(300)).unwrap();
    let dropped = s.stats().dropped_partition;
    assert!(dropped > 0);
    s.apply(Fault::Heal);
    s.run_for(Duration::from_millis(300)).unwrap();
    assert_eq!(s.stats().dropped_partition, dropped);
}

#[test]
fn failing_invariant_reports_seed_and_replay_command() {
    let mut s = sim(99, 2, LinkConfig::default());
    s.set_replay("rumour sim --scenario toy --seed 99");
    s.add_check(
        "never more than 5 sent",
        Duration::from_millis(10),
        Box::new(|sim: &Sim<Pinger>| {
            let sent: u64 = sim.running().map(|(_, n)| n.sent).sum();
            if sent > 5 {
                Err(format!("{sent} sent"))
            } else {
                Ok(())
            }
        }),
    );
    let err = s.run_for(Duration::from_secs(1)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("seed 99"), "{text}");
    assert!(
        text.contains("rumour sim --scenario toy --seed 99"),
        "{text}"
    );
}

#[test]
fn slow_node_handles_every_message_late() {
    let mut s = sim(4, 2, LinkConfig::default());
    s.apply(Fault::Slow(NodeId(1), Duration::from_millis(500)));
    s.run_for(Duration::from_millis(400)).unwrap();
    assert_eq!(s.node(NodeId(1)).unwrap().received, 0);
    s.run_for(Duration::from_millis(200)).unwrap();
    assert!(s.node(NodeId(1)).unwrap().received > 0);
}
