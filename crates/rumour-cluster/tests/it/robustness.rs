//! No input can panic a node: arbitrary bytes, and well-framed messages with arbitrary bodies.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_cluster::transport::frame::{FrameCodec, FrameConfig};
use rumour_cluster::{Node, NodeConfig, Profile};

fn node() -> (Node, Instant) {
    let now = Instant::now();
    let addr: SocketAddr = "127.0.0.1:7946".parse().unwrap();
    let config = NodeConfig::new("target", addr, Profile::Lan).with_ring_instance();
    (
        Node::new(config, ChaCha8Rng::seed_from_u64(1), now).unwrap(),
        now,
    )
}

fn from() -> SocketAddr {
    "127.0.0.2:7946".parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_a_node(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let (mut node, now) = node();
        node.handle_packet(now, from(), &bytes);
        node.handle_stream(now, from(), &bytes);
        node.handle_timeout(now + Duration::from_secs(1));
        prop_assert_eq!(node.num_alive(), 1);
    }

    #[test]
    fn framed_garbage_on_every_channel_never_panics(
        channel in 0u8..4,
        body in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let (mut node, now) = node();
        let codec = FrameCodec::new(FrameConfig::default());
        let mut message = vec![channel];
        message.extend_from_slice(&body);
        node.handle_packet(now, from(), &codec.encode_packet(&[&message[..]]));
        let mut part = vec![channel];
        part.push(body.len().min(127) as u8);
        part.extend_from_slice(&body[..body.len().min(127)]);
        node.handle_stream(now, from(), &codec.encode_stream(&part).unwrap());
        while node.poll_transmit().is_some() {}
        prop_assert_eq!(node.num_alive(), 1);
    }
}

#[test]
fn an_unknown_channel_is_refused_and_counted() {
    let (mut node, now) = node();
    let codec = FrameCodec::new(FrameConfig::default());
    node.handle_packet(now, from(), &codec.encode_packet(&[&[7u8, 1, 2, 3][..]]));
    assert_eq!(node.stats().messages_refused, 1);
}
