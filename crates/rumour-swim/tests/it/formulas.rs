//! The public formulas against the tables in the memberlist reference notes (§3.4, §3.8,
//! §3.10, §3.3).

use std::time::Duration;

use rumour_swim::{
    expected_confirmations, scale_timeout, suspicion_max, suspicion_min, suspicion_timeout,
};
use rumour_wire::{pullpush_scale, retransmit_limit};

#[test]
fn retransmit_limit_matches_the_reference_table() {
    // (n, limit with mult 4 (LAN/WAN), limit with mult 2 (local))
    let table = [
        (1, 4, 2),
        (9, 4, 2),
        (10, 8, 4),
        (99, 8, 4),
        (100, 12, 6),
        (999, 12, 6),
        (1_000, 16, 8),
        (9_999, 16, 8),
        (10_000, 20, 10),
        (99_999, 20, 10),
    ];
    for (n, lan, local) in table {
        assert_eq!(retransmit_limit(4, n), lan, "n = {n}");
        assert_eq!(retransmit_limit(2, n), local, "n = {n}");
    }
}

#[test]
fn suspicion_bounds_match_the_reference_table_for_every_profile() {
    let s = Duration::from_secs;
    // (suspicion_mult, probe_interval, n, k, min, max): LAN, WAN, local rows of §3.4.
    let table = [
        (4, s(1), 3, 0, s(4), s(24)),
        (4, s(1), 10, 2, s(4), s(24)),
        (4, s(1), 100, 2, s(8), s(48)),
        (4, s(1), 1_000, 2, s(12), s(72)),
        (4, s(1), 10_000, 2, s(16), s(96)),
        (6, s(5), 10, 4, s(30), s(180)),
        (6, s(5), 1_000, 4, s(90), s(540)),
        (3, s(1), 10, 1, s(3), s(18)),
    ];
    for (mult, interval, n, k, min, max) in table {
        let got_min = suspicion_min(mult, n, interval);
        let got_max = suspicion_max(6, got_min);
        assert_eq!(expected_confirmations(mult, n), k, "mult {mult} n {n}");
        assert!(
            got_min.abs_diff(min) < Duration::from_millis(1),
            "{got_min:?} vs {min:?}"
        );
        assert!(
            got_max.abs_diff(max) < Duration::from_millis(1),
            "{got_max:?} vs {max:?}"
        );
        assert_eq!(
            suspicion_timeout(0, k, got_min, got_max),
            if k == 0 { got_min } else { got_max }
        );
        assert_eq!(suspicion_timeout(k, k, got_min, got_max), got_min);
    }
}

#[test]
fn the_timeout_falls_logarithmically_with_confirmations() {
    let (min, max) = (Duration::from_secs(8), Duration::from_secs(48));
    let mut previous = suspicion_timeout(0, 2, min, max);
    for c in 1..=2 {
        let t = suspicion_timeout(c, 2, min, max);
        assert!(t < previous, "c = {c}");
        previous = t;
    }
    // ln(2)/ln(3) of the way from 48 s to 8 s: 22.76 s (reference: LAN n = 100).
    let after_one = suspicion_timeout(1, 2, min, max).as_secs_f64();
    assert!((after_one - 22.762).abs() < 0.01, "{after_one}");
}

#[test]
fn awareness_scales_the_probe_interval_by_score_plus_one() {
    for score in 0..8 {
        assert_eq!(
            scale_timeout(Duration::from_secs(1), score),
            Duration::from_secs(u64::from(score) + 1)
        );
    }
    assert_eq!(
        scale_timeout(Duration::from_millis(500), 7),
        Duration::from_secs(4)
    );
}

#[test]
fn pullpush_interval_scales_above_32_members() {
    let s = Duration::from_secs;
    for (n, lan, wan) in [
        (32, 30, 60),
        (64, 60, 120),
        (256, 120, 240),
        (10_000, 300, 600),
    ] {
        assert_eq!(pullpush_scale(s(30), n), s(lan), "n = {n}");
        assert_eq!(pullpush_scale(s(60), n), s(wan), "n = {n}");
    }
}
