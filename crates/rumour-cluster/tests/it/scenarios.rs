//! Acceptance tests: the protocol's properties as deterministic simulations on fixed seeds.
//!
//! Every assertion message carries the seed and the command that replays the run.

use std::time::Duration;

use rumour_cluster::scenario::{self, Report, Scenario, ScenarioConfig};
use rumour_cluster::sim::{LinkConfig, NodeId, NodeSeed, Sim, node_addr};
use rumour_cluster::{Node, NodeConfig, Profile};

fn run(scenario: Scenario, nodes: usize, seed: u64) -> Report {
    let config = ScenarioConfig {
        scenario,
        nodes,
        seed,
        loss: None,
        profile: Profile::Lan,
        join_limit: None,
        shared_ip: false,
    };
    let report = scenario::run(&config, &mut |_| {})
        .unwrap_or_else(|e| panic!("{} failed: {e}", config.replay()));
    eprintln!("{report:?}");
    report
}

#[test]
fn members_sharing_one_host_join_about_as_fast_as_members_with_an_ip_each() {
    // Verification pings are limited per IP address; a cluster on one host used to confirm
    // four members a second and took 8.5 s to join 64 nodes (sockets: 8.2 s).
    let own = run(Scenario::Join, 64, 1);
    let shared = scenario::run(
        &ScenarioConfig {
            scenario: Scenario::Join,
            nodes: 64,
            seed: 1,
            loss: None,
            profile: Profile::Lan,
            join_limit: None,
            shared_ip: true,
        },
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("the shared-host join failed: {e}"));
    let (own_s, shared_s) = (
        own.join_seconds.expect("joined"),
        shared
            .join_seconds
            .unwrap_or_else(|| panic!("no join; replay: {}", shared.replay)),
    );
    assert!(
        shared_s <= 2.5 * own_s.max(1.0),
        "one host {shared_s:.2} s, an IP each {own_s:.2} s; replay: {}",
        shared.replay
    );
    assert!(shared.replay.contains("--shared-ip"), "{}", shared.replay);
}

#[test]
fn one_write_reaches_all_of_1000_nodes_within_two_seconds() {
    let report = run(Scenario::Update, 1000, 1);
    let spread = report
        .dissemination
        .unwrap_or_else(|| panic!("some node never got the write; replay: {}", report.replay));
    assert!(
        spread.p100_seconds <= 2.0,
        "100 % took {:.3} s (p50 {:.3} s, p99 {:.3} s); replay: {}",
        spread.p100_seconds,
        spread.p50_seconds,
        spread.p99_seconds,
        report.replay
    );
}

#[test]
fn every_survivor_detects_a_crash_within_the_suspicion_bound() {
    let report = run(Scenario::Crash, 100, 1);
    let full = report.full_detection_seconds.unwrap_or_else(|| {
        panic!(
            "not every survivor detected the crash; replay: {}",
            report.replay
        )
    });
    let bound = report
        .detection_bound_seconds
        .expect("crash reports its bound");
    assert!(
        full <= bound,
        "full detection {full:.2} s over the bound {bound:.2} s; replay: {}",
        report.replay
    );
    assert_eq!(report.false_positives, Some(0), "replay: {}", report.replay);
}

#[test]
fn ten_percent_loss_for_ten_minutes_declares_no_live_node_failed() {
    let report = run(Scenario::Loss, 256, 1);
    assert!(report.converged, "replay: {}", report.replay);
    assert_eq!(
        report.false_positives,
        Some(0),
        "{:?} declarations; replay: {}",
        report.false_positive_declarations,
        report.replay
    );
}

#[test]
fn a_slow_node_gets_no_healthy_member_declared_failed() {
    let report = run(Scenario::Slow, 64, 1);
    assert!(report.converged, "replay: {}", report.replay);
    assert_eq!(report.false_positives, Some(0), "replay: {}", report.replay);
}

/// A partition heals within 10 s of the network coming back, on ten seeds. Each half holds
/// the other dead when it heals, and a refutation is gossiped to the members its sender holds
/// alive, its own half, so a few observers never hear it; they held a live member dead until
/// a pull-push or the reconnect list (only reaped members, after the probe order wrapped)
/// reached them: seeds 1, 7 and 9 took 18, 59 and 15 s. The reconnect tick now also tries
/// members the table holds dead, and a revival brings it within a probe interval.
#[test]
fn a_healed_partition_converges_within_ten_seconds_without_losing_ring_instances() {
    for seed in 1..=10 {
        let report = run(Scenario::Partition, 64, seed);
        assert!(
            report.converged,
            "no single view after healing; replay: {}",
            report.replay
        );
        assert!(
            report.heal_seconds.is_some_and(|s| s <= 10.0),
            "healed after {:?} s; replay: {}",
            report.heal_seconds,
            report.replay
        );
        assert_eq!(report.lost_instances, Some(0), "replay: {}", report.replay);
        assert_eq!(report.zombies, Some(0), "replay: {}", report.replay);
    }
}

#[test]
fn a_rolling_restart_converges_with_no_lost_instance_and_no_zombie() {
    let report = run(Scenario::Churn, 64, 1);
    assert!(report.converged, "replay: {}", report.replay);
    assert_eq!(report.lost_instances, Some(0), "replay: {}", report.replay);
    assert_eq!(report.zombies, Some(0), "replay: {}", report.replay);
}

#[test]
fn ring_replicas_become_equal_when_every_node_registers() {
    let report = run(Scenario::Ring, 32, 1);
    assert!(
        report.ring_converged_seconds.is_some(),
        "replay: {}",
        report.replay
    );
    assert_eq!(report.lost_instances, Some(0), "replay: {}", report.replay);
}

/// Builds the nodes of [`traced_sim`]: ring instances joining node 0.
fn traced_factory() -> rumour_cluster::sim::Factory<Node> {
    Box::new(|seed: NodeSeed| {
        let config = NodeConfig::new(format!("node-{}", seed.id.0), seed.addr, Profile::Lan)
            .with_ring_instance();
        let mut node = Node::new(config, seed.rng, seed.now).expect("valid config");
        let seed_addr = node_addr(NodeId(usize::from(seed.id == NodeId(0))));
        if seed.id != NodeId(0) || seed.generation > 0 {
            node.join(seed.now, &[seed_addr]);
        }
        node
    })
}

/// A 16-node cluster with ring instances, 5 % loss, a crash at 10 s and a restart at 20 s.
fn traced_sim(seed: u64) -> Sim<Node> {
    let mut sim = Sim::new(
        seed,
        std::time::Instant::now(),
        LinkConfig {
            loss: 0.05,
            duplicate: 0.01,
            ..LinkConfig::default()
        },
        traced_factory(),
    );
    for _ in 0..16 {
        sim.add_node();
    }
    sim.schedule(
        Duration::from_secs(10),
        rumour_cluster::sim::Fault::Crash(NodeId(5)),
    );
    sim.schedule(
        Duration::from_secs(20),
        rumour_cluster::sim::Fault::Restart(NodeId(5)),
    );
    sim
}

/// [`traced_sim`] run for 40 s: its trace hash and the packets delivered.
fn traced_run(seed: u64) -> (u64, u64) {
    let mut sim = traced_sim(seed);
    sim.run_for(Duration::from_secs(40))
        .expect("no invariant is checked");
    (sim.trace_hash(), sim.stats().delivered)
}

#[test]
fn a_forked_simulation_goes_on_exactly_as_the_original_would() {
    let mut original = traced_sim(11);
    // Between the crash and the restart: the fork inherits a dead node and a pending fault.
    original
        .run_for(Duration::from_secs(15))
        .expect("no invariant is checked");
    let mut fork = original
        .fork(traced_factory(), |name| panic!("no check {name} was added"))
        .expect("the network holds no rule");
    // The original runs on first: anything the two still shared would change the fork's run.
    original
        .run_for(Duration::from_secs(25))
        .expect("no invariant is checked");
    fork.run_for(Duration::from_secs(25))
        .expect("no invariant is checked");
    assert_eq!(fork.elapsed(), original.elapsed());
    assert_eq!(fork.stats(), original.stats());
    assert_eq!(fork.trace_hash(), original.trace_hash());
    assert_eq!(
        fork.trace_hash(),
        traced_run(11).0,
        "and as a run never forked"
    );
}

#[test]
fn one_seed_replays_the_same_trace_with_real_nodes() {
    let (first, delivered) = traced_run(11);
    assert!(delivered > 1000, "the cluster talked ({delivered} packets)");
    assert_eq!(
        traced_run(11).0,
        first,
        "seed 11 did not replay; replay: cargo test -p rumour-cluster --test scenarios one_seed_replays"
    );
    assert_ne!(traced_run(12).0, first);
}

/// Gossip alone must reach every node: a node that misses a write waits for the next digest
/// pull-push (5 s at LAN), which a p100 under 2 s rules out. Ten seeds, because a wasted
/// transmit (the same change packed twice in one datagram) left one node out in half the runs.
#[test]
fn a_write_reaches_every_one_of_64_nodes_by_gossip_on_ten_seeds() {
    // Gossip takes a write to every node within 2 s, but now and then misses one node, which
    // then gets it from the next KV pull-push (every 5 s). That is the epidemic's own odds: 64
    // nodes each sending the change 8 times to random members leave a given node out with
    // probability (62/63)^512, so about one run in 50 has a straggler; measured 5 of seeds 1 to
    // 260 (seeds 3 and 9 here). A wasted transmit makes it far more frequent (half the runs).
    let mut stragglers = Vec::new();
    for seed in 1..=10 {
        let report = run(Scenario::Update, 64, seed);
        let p100 = report.dissemination.map(|d| d.p100_seconds);
        assert!(
            p100.is_some_and(|s| s < 6.0),
            "p100 {p100:?} s; replay: {}",
            report.replay
        );
        if p100.is_some_and(|s| s >= 2.0) {
            stragglers.push(report.replay);
        }
    }
    assert!(stragglers.len() <= 2, "p100 over 2 s: {stragglers:?}");
}

#[test]
fn an_attacker_takes_nobody_out_reflects_nothing_and_leaves_no_forged_state_on_five_seeds() {
    let limits = Profile::Lan.swim();
    let kv_limits = Profile::Lan.gossip(std::net::SocketAddr::from(([127, 0, 0, 1], 1)));
    for seed in 1..=5 {
        let report = run(Scenario::Attack, 16, seed);
        let attack = report
            .attack
            .expect("the attack scenario reports its figures");
        let replay = &report.replay;
        assert!(
            attack.packets >= 10_000,
            "the attacker sent {}; {replay}",
            attack.packets
        );
        assert_eq!(
            attack.honest_declared_failed, 0,
            "{attack:?}; replay: {replay}"
        );
        assert!(
            attack.reflected_bytes <= attack.bytes,
            "the bystander got {} bytes for the attacker's {}; replay: {replay}",
            attack.reflected_bytes,
            attack.bytes
        );
        assert!(
            attack.max_members <= limits.max_members().get() as u64,
            "{attack:?}; replay: {replay}"
        );
        assert!(
            attack.max_keys <= kv_limits.max_keys as u64,
            "{attack:?}; replay: {replay}"
        );
        assert_eq!(
            attack.forged_members_left, 0,
            "{attack:?}; replay: {replay}"
        );
        assert_eq!(
            attack.impersonated_messages, 0,
            "a forged sender name got through: {attack:?}; replay: {replay}"
        );
        assert!(
            attack.recovery_seconds.is_some_and(|s| s < 30.0),
            "the stores did not converge after the attack: {attack:?}; replay: {replay}"
        );
    }
}

/// Once the first survivor declares a crashed member dead, the news leaves at once on every
/// hop of an idle cluster: the last survivor marks it within 0.3 s of the first.
#[test]
fn every_survivor_marks_a_crash_within_0_3_s_of_the_first_on_five_seeds() {
    for seed in 1..=5 {
        let report = run(Scenario::Crash, 64, seed);
        let first = report.first_detection_seconds;
        let full = report.full_detection_seconds;
        let spread = first.zip(full).map(|(first, full)| full - first);
        assert!(
            spread.is_some_and(|s| s <= 0.3),
            "first {first:?} s, all {full:?} s; replay: {}",
            report.replay
        );
    }
}

/// A report with its wall-clock figures (which differ between any two runs) zeroed.
fn virtual_figures(mut report: Report) -> Report {
    report.wall_seconds = 0.0;
    report.node_seconds_per_wall_second = 0.0;
    report
}

#[test]
fn scenarios_sharing_a_converged_cluster_report_what_they_report_alone() {
    // The joins `join` and `steady` share; the groups that start 5 s after a join (without
    // and with the ring), one of them (`loss`) setting its loss on its copy afterwards; a
    // scenario with a start of its own between them.
    let plan = [
        Scenario::Join,
        Scenario::Steady,
        Scenario::Update,
        Scenario::Crash,
        Scenario::Loss,
        Scenario::Ring,
        Scenario::Partition,
        Scenario::Churn,
        Scenario::Attack,
    ];
    let mut runner = scenario::Runner::sharing(&plan);
    let seed = 3;
    for scenario in plan {
        let config = ScenarioConfig {
            scenario,
            nodes: 12,
            seed,
            loss: None,
            profile: Profile::Lan,
            join_limit: None,
            shared_ip: false,
        };
        let shared = runner
            .run(&config, &mut |_| {})
            .unwrap_or_else(|e| panic!("{} failed: {e}", config.replay()));
        let alone = run(scenario, 12, seed);
        assert_eq!(
            virtual_figures(shared),
            virtual_figures(alone),
            "{}",
            config.replay()
        );
    }
}
