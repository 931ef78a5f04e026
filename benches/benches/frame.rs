//! Criterion benchmarks of the frame codec: a compound datagram of 10 x 100-byte messages
//! (with and without a cluster label) and a 64 KiB stream frame, each encoded, decoded, and
//! both; and a full 1400-byte datagram plain and sealed (XChaCha20-Poly1305), which prints the
//! bytes sealing adds. Run with `cargo bench -p rumour-benches --bench frame`.
#![allow(
    missing_docs,
    reason = "criterion_group! generates undocumented public items"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rumour_transport::Label;
use rumour_transport::frame::{FrameCodec, FrameConfig, Key, Keyring};

fn codecs() -> [(&'static str, FrameCodec); 4] {
    let label = Label::new("prod-eu-west-1").expect("valid label");
    let keys = || Keyring::new(Key::from_bytes([7; 32]));
    [
        ("no_label", FrameCodec::new(FrameConfig::default())),
        (
            "label",
            FrameCodec::new(FrameConfig::default().with_label(label.clone())),
        ),
        (
            "sealed",
            FrameCodec::new(FrameConfig::default().with_keyring(keys())),
        ),
        (
            "sealed_label",
            FrameCodec::new(
                FrameConfig::default()
                    .with_label(label)
                    .with_keyring(keys()),
            ),
        ),
    ]
}

/// A datagram filled to the 1400-byte budget with 100-byte messages, plain and sealed: the cost
/// of sealing and of opening one datagram, and the bytes it adds.
fn datagram_1400(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame/datagram_1400B");
    for (name, codec) in codecs() {
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        let filled = |msgs: &[Vec<u8>]| {
            let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
            codec.packet_len(&refs)
        };
        while filled(&msgs) + FrameCodec::packed_len(100) <= codec.packet_budget() {
            msgs.push(vec![msgs.len() as u8; 100]);
        }
        let rest = codec.packet_budget() - filled(&msgs) - 2;
        msgs.push(vec![0xee; rest]);
        let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let packet = codec.encode_packet(&refs);
        let payload: usize = refs.iter().map(|m| m.len()).sum();
        eprintln!(
            "frame/datagram_1400B/{name}: {} messages, {payload} payload bytes, {} frame bytes, \
             header_len {} ({} bytes beside the messages)",
            refs.len(),
            packet.len(),
            codec.header_len(),
            packet.len() - payload
        );
        group.throughput(Throughput::Bytes(packet.len() as u64));
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| codec.encode_packet(black_box(&refs)))
        });
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| {
                let packet = codec
                    .decode_packet(black_box(&packet))
                    .expect("valid frame");
                packet.iter().map(<[u8]>::len).sum::<usize>()
            })
        });
    }
    group.finish();
}

fn compound_datagram(c: &mut Criterion) {
    let msgs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100]).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
    let mut group = c.benchmark_group("frame/compound_10x100B");
    for (name, codec) in codecs() {
        let packet = codec.encode_packet(&refs);
        group.throughput(Throughput::Bytes(packet.len() as u64));
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| codec.encode_packet(black_box(&refs)))
        });
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| {
                let msgs = codec
                    .decode_packet(black_box(&packet))
                    .expect("valid frame");
                msgs.iter().map(<[u8]>::len).sum::<usize>()
            })
        });
        group.bench_function(format!("encode_decode/{name}"), |b| {
            b.iter(|| {
                let packet = codec.encode_packet(black_box(&refs));
                let msgs = codec.decode_packet(&packet).expect("valid frame");
                msgs.len()
            })
        });
    }
    group.finish();
}

fn stream_64k(c: &mut Criterion) {
    let msg: Vec<u8> = (0..64 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let mut group = c.benchmark_group("frame/stream_64KiB");
    group.throughput(Throughput::Bytes(msg.len() as u64));
    for (name, codec) in codecs() {
        let frame = codec.encode_stream(&msg).expect("under the limit");
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                codec
                    .encode_stream(black_box(&msg))
                    .expect("under the limit")
            })
        });
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| {
                codec
                    .decode_stream(black_box(&frame))
                    .expect("valid frame")
                    .len()
            })
        });
        group.bench_function(format!("encode_decode/{name}"), |b| {
            b.iter(|| {
                let frame = codec
                    .encode_stream(black_box(&msg))
                    .expect("under the limit");
                codec.decode_stream(&frame).expect("valid frame").len()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = compound_datagram, datagram_1400, stream_64k
}
criterion_main!(benches);
