//! Criterion benchmarks of the SWIM machine: handling a ping and producing the ack, filling a
//! datagram from a broadcast queue of 1,000 updates, merging a 1,000-member full state.
#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented public items"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_swim::message::{Alive, Exchange, MemberState, Message, Ping, StateExchange};
use rumour_swim::{Config, Incarnation, NodeName, State, Swim};
use rumour_wire::{Broadcast, BroadcastQueue, varint};

fn name(i: usize) -> NodeName {
    NodeName::new(format!("member-{i:05}.example.internal")).unwrap()
}

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 7946))
}

fn members(n: usize) -> Vec<MemberState> {
    (1..=n)
        .map(|i| MemberState {
            name: name(i),
            addr: addr(i),
            incarnation: Incarnation(1),
            meta: b"zone=eu-west-1a".to_vec().into(),
            state: State::Alive,
        })
        .collect()
}

fn state(n: usize) -> Vec<u8> {
    Message::State(StateExchange {
        exchange: Exchange::Reply,
        join: true,
        source: name(1),
        source_addr: addr(1),
        members: members(n),
    })
    .encode()
    .to_vec()
}

/// A machine that knows `n` members, with its broadcast queue drained.
fn machine(now: Instant, n: usize) -> Swim {
    let rng = ChaCha8Rng::seed_from_u64(1);
    let mut swim = Swim::new(Config::lan(), name(0), addr(0), Vec::new(), rng, now).unwrap();
    swim.handle_stream(now, addr(1), &state(n)).unwrap();
    while swim.poll_transmit().is_some() {}
    while swim.poll_event().is_some() {}
    while !swim.fill_broadcasts(1384).is_empty() {}
    swim
}

fn ping_to_ack(c: &mut Criterion) {
    let now = Instant::now();
    let mut swim = machine(now, 100);
    let ping = Message::Ping(Ping {
        seq: 1,
        target: name(0),
        source: Alive {
            name: name(7),
            addr: addr(7),
            incarnation: Incarnation(1),
            meta: b"zone=eu-west-1a".to_vec().into(),
        },
    })
    .encode();
    c.bench_function("swim/handle ping and produce ack (100 members)", |b| {
        b.iter(|| {
            swim.handle_packet(now, addr(7), &ping).unwrap();
            swim.poll_transmit().unwrap()
        });
    });
}

#[derive(Clone)]
struct Update {
    key: usize,
    bytes: Vec<u8>,
}

impl Broadcast for Update {
    type Key = usize;
    fn key(&self) -> &usize {
        &self.key
    }
    fn payload(&self) -> &[u8] {
        &self.bytes
    }
}

fn queue_of(n: usize) -> BroadcastQueue<Update> {
    let mut queue = BroadcastQueue::new(4, 4096);
    for key in 0..n {
        // Alive-sized updates, 50 to 90 bytes.
        let bytes = vec![0u8; 50 + key % 41];
        queue.enqueue(Update { key, bytes });
    }
    queue
}

fn broadcast_queue(c: &mut Criterion) {
    c.bench_function(
        "broadcast queue/fill one 1384-byte datagram from 1,000 updates",
        |b| {
            b.iter_batched(
                || queue_of(1_000),
                |mut queue| {
                    let batch = queue.fill(1_000, 1384, |len| varint::packed_len(len, 1));
                    (queue, batch) // dropped outside the measurement
                },
                BatchSize::SmallInput,
            );
        },
    );
    c.bench_function("broadcast queue/enqueue 1,000 updates", |b| {
        b.iter(|| queue_of(1_000));
    });
}

fn full_state_merge(c: &mut Criterion) {
    let now = Instant::now();
    let bytes = state(1_000);
    c.bench_function("swim/merge a 1,000-member full state (join)", |b| {
        b.iter_batched(
            || {
                let rng = ChaCha8Rng::seed_from_u64(2);
                Swim::new(Config::lan(), name(0), addr(0), Vec::new(), rng, now).unwrap()
            },
            |mut swim| {
                swim.handle_stream(now, addr(1), &bytes).unwrap();
                swim
            },
            BatchSize::LargeInput,
        );
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = ping_to_ack, broadcast_queue, full_state_merge
}
criterion_main!(benches);
