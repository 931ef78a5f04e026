//! Decoding arbitrary bytes never panics, and bytes that do not decode change nothing.
#![allow(clippy::disallowed_methods, reason = "tests need a real start time")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_swim::message::{Alive, Message, Ping};
use rumour_swim::{Config, Incarnation, NodeName, Swim};

fn machine() -> (Swim, Instant) {
    let now = Instant::now();
    let rng = ChaCha8Rng::seed_from_u64(7);
    let addr = SocketAddr::from(([10, 0, 0, 1], 7946));
    let name = NodeName::new("a").unwrap();
    (
        Swim::new(Config::lan(), name, addr, Bytes::new(), rng, now).unwrap(),
        now,
    )
}

fn valid_ping() -> Vec<u8> {
    Message::Ping(Ping {
        seq: 3,
        target: NodeName::new("a").unwrap(),
        source: Alive {
            name: NodeName::new("b").unwrap(),
            addr: SocketAddr::from(([10, 0, 0, 2], 7946)),
            incarnation: Incarnation(1),
            meta: Bytes::from_static(b"meta"),
        },
    })
    .encode()
    .to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::decode(&bytes);
        let (mut swim, now) = machine();
        let before: Vec<_> = swim.members().collect();
        let from = SocketAddr::from(([10, 0, 0, 9], 1));
        let packet = swim.handle_packet(now, from, &bytes);
        let stream = swim.handle_stream(now, from, &bytes);
        if packet.is_err() && stream.is_err() {
            prop_assert_eq!(swim.members().collect::<Vec<_>>(), before);
        }
        swim.handle_timeout(now + Duration::from_secs(2));
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = valid_ping();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let (mut swim, now) = machine();
        let from = SocketAddr::from(([10, 0, 0, 9], 1));
        let _ = swim.handle_packet(now, from, &bytes);
        let _ = swim.handle_stream(now, from, &bytes);
        while swim.poll_transmit().is_some() {}
    }
}

#[test]
fn a_huge_declared_length_is_rejected_without_allocating_it() {
    // A state exchange claiming u32::MAX members in a few bytes.
    let bytes = [
        7u8, 0, 0, 1, b'b', 0, 10, 0, 0, 2, 0x8a, 0x3e, 0xff, 0xff, 0xff, 0xff, 0x0f,
    ];
    assert!(Message::decode(&bytes).is_err());
}

#[test]
fn a_decoded_message_is_handled_like_its_bytes() {
    let (mut by_bytes, now) = machine();
    let mut by_message = Swim::new(
        Config::lan(),
        NodeName::new("a").unwrap(),
        SocketAddr::from(([10, 0, 0, 1], 7946)),
        Bytes::new(),
        ChaCha8Rng::seed_from_u64(7),
        now,
    )
    .unwrap();
    let from = SocketAddr::from(([10, 0, 0, 2], 7946));
    by_bytes.handle_packet(now, from, &valid_ping()).unwrap();
    let message = Message::decode(&valid_ping()).unwrap();
    by_message
        .handle_message(now, from, message, rumour_wire::Delivery::Datagram)
        .unwrap();
    let drain = |swim: &mut Swim| std::iter::from_fn(|| swim.poll_transmit()).collect::<Vec<_>>();
    assert_eq!(drain(&mut by_bytes), drain(&mut by_message));
    assert_eq!(
        by_bytes.members().collect::<Vec<_>>(),
        by_message.members().collect::<Vec<_>>()
    );
    // The configured limits still apply: metadata over meta_max_size is refused.
    let oversized = Message::Alive(Alive {
        name: NodeName::new("c").unwrap(),
        addr: SocketAddr::from(([10, 0, 0, 3], 7946)),
        incarnation: Incarnation(1),
        meta: Bytes::from(vec![0; Config::lan().meta_max_size() + 1]),
    });
    assert!(
        by_message
            .handle_message(now, from, oversized, rumour_wire::Delivery::Datagram)
            .is_err()
    );
    assert!(by_message.member("c").is_none());
}
