//! A tiny virtual-time network of `Swim` machines for tests: a fixed latency, seeded node
//! RNGs, optional drop rules, crashes, restarts and pauses. Deterministic: one seed fixes a run.

#![allow(clippy::disallowed_methods, reason = "tests need a real start time")]
#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_swim::message::Message;
use rumour_swim::{Config, Event, Incarnation, NodeName, State, Swim};
use rumour_wire::Delivery;

/// Decides whether a message from node `from` to node `to` is delivered.
pub type Rule = Box<dyn FnMut(Link<'_>) -> bool>;

/// One message on its way, as drop rules see it.
pub struct Link<'a> {
    pub now: Instant,
    pub from: usize,
    pub to: usize,
    pub reliable: bool,
    pub message: &'a Message,
}

struct InFlight {
    from: usize,
    to: usize,
    reliable: bool,
    bytes: Bytes,
}

pub struct Cluster {
    pub seed: u64,
    pub start: Instant,
    pub now: Instant,
    pub latency: Duration,
    pub config: Config,
    nodes: Vec<Option<Swim>>,
    paused_until: Vec<Option<Instant>>,
    /// Each node's next gossip tick, driven here as the embedding node does.
    next_gossip: Vec<Instant>,
    restarts: Vec<u64>,
    in_flight: BTreeMap<(Instant, u64), InFlight>,
    next_id: u64,
    pub rule: Rule,
    /// Every event each node emitted, with the time.
    pub events: Vec<Vec<(Instant, Event)>>,
    /// Bytes (encoded messages) the nodes sent to addresses that are no node's.
    pub stray_bytes: u64,
    steps: u64,
}

pub fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8 + 1], 7946))
}

pub fn name(i: usize) -> NodeName {
    NodeName::new(format!("node-{i}")).unwrap()
}

impl Cluster {
    /// `n` machines that know nobody yet.
    pub fn new(n: usize, config: Config, seed: u64) -> Cluster {
        println!("harness seed = {seed} (the run is deterministic: rerun the test to replay it)");
        let start = Instant::now();
        let mut cluster = Cluster {
            seed,
            start,
            now: start,
            latency: Duration::from_millis(1),
            config,
            nodes: Vec::new(),
            paused_until: vec![None; n],
            next_gossip: Vec::new(),
            restarts: vec![0; n],
            in_flight: BTreeMap::new(),
            next_id: 0,
            rule: Box::new(|_| true),
            events: vec![Vec::new(); n],
            stray_bytes: 0,
            steps: 0,
        };
        let interval = cluster.config.gossip_interval();
        for i in 0..n {
            let swim = cluster.make(i, Bytes::new());
            cluster.nodes.push(Some(swim));
            // A fixed phase per node: nodes do not gossip in lockstep.
            let phase = interval.mul_f64((i % 10) as f64 / 10.0);
            cluster.next_gossip.push(start + phase);
        }
        cluster
    }

    /// `n` machines, all joined through node 0, run until everyone sees everyone alive.
    pub fn converged(n: usize, config: Config, seed: u64) -> Cluster {
        let mut c = Cluster::new(n, config, seed);
        for i in 1..n {
            c.join(i, 0);
        }
        let took = c.run_until(Duration::from_secs(60), |c| c.all_alive());
        assert!(took.is_some(), "the cluster did not converge in 60 s");
        c
    }

    fn make(&mut self, i: usize, meta: Bytes) -> Swim {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(i as u64 * 1000 + self.restarts[i]);
        Swim::new(self.config.clone(), name(i), addr(i), meta, rng, self.now).unwrap()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, i: usize) -> &Swim {
        self.nodes[i].as_ref().expect("node is running")
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Swim {
        self.nodes[i].as_mut().expect("node is running")
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn join(&mut self, i: usize, seed: usize) {
        let now = self.now;
        self.node_mut(i).join(now, &[addr(seed)]).unwrap();
        self.flush(i);
    }

    pub fn leave(&mut self, i: usize) {
        let now = self.now;
        self.node_mut(i).leave(now).unwrap();
        self.flush(i);
    }

    /// Stops node `i` without a word; messages to it are lost.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Starts a fresh machine under node `i`'s name and address (incarnation starts again)
    /// and joins it through `seed`.
    pub fn restart(&mut self, i: usize, seed: usize) {
        self.restarts[i] += 1;
        let swim = self.make(i, Bytes::new());
        self.nodes[i] = Some(swim);
        self.join(i, seed);
    }

    /// Node `i` does nothing until `until`; then its driver runs the timers first and reads
    /// the messages that waited (the worst order for a stalled process).
    pub fn pause(&mut self, i: usize, until: Instant) {
        self.paused_until[i] = Some(until);
    }

    /// What node `i` believes about node `j`.
    pub fn view(&self, i: usize, j: usize) -> Option<State> {
        self.nodes[i]
            .as_ref()
            .and_then(|s| s.member(name(j).as_str()))
            .map(|m| m.state)
    }

    pub fn incarnation(&self, i: usize, j: usize) -> Option<Incarnation> {
        self.nodes[i]
            .as_ref()
            .and_then(|s| s.member(name(j).as_str()))
            .map(|m| m.incarnation)
    }

    /// Every running node sees every running node (itself included) alive.
    pub fn all_alive(&self) -> bool {
        let up: Vec<usize> = (0..self.len()).filter(|&i| self.is_up(i)).collect();
        up.iter()
            .all(|&i| up.iter().all(|&j| self.view(i, j) == Some(State::Alive)))
    }

    /// Every running node other than `j` sees `j` in `state`.
    pub fn all_see(&self, j: usize, state: State) -> bool {
        (0..self.len())
            .filter(|&i| i != j && self.is_up(i))
            .all(|i| self.view(i, j) == Some(state))
    }

    /// Events of node `i` matching `f`.
    pub fn events_of<'a>(
        &'a self,
        i: usize,
        f: impl Fn(&Event) -> bool + 'a,
    ) -> impl Iterator<Item = &'a (Instant, Event)> + 'a {
        self.events[i].iter().filter(move |(_, e)| f(e))
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.step(end) {}
        self.now = end;
    }

    /// Runs until `done` holds (checked after every step) or `limit` passes; returns the
    /// virtual time it took.
    pub fn run_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&Cluster) -> bool,
    ) -> Option<Duration> {
        let begin = self.now;
        let end = self.now + limit;
        if done(self) {
            return Some(Duration::ZERO);
        }
        while self.step(end) {
            if done(self) {
                return Some(self.now - begin);
            }
        }
        self.now = end;
        None
    }

    /// Processes the next thing to happen before `end`; false when nothing is left.
    fn step(&mut self, end: Instant) -> bool {
        self.steps += 1;
        assert!(self.steps < 50_000_000, "livelock: too many steps");
        let next_delivery = self.in_flight.keys().next().map(|&(at, _)| at);
        let next_timer = (0..self.len())
            .filter_map(|i| self.wake_time(i).map(|at| (at, i)))
            .min();
        let next = match (next_delivery, next_timer) {
            (Some(d), Some((t, _))) => d.min(t),
            (Some(d), None) => d,
            (None, Some((t, _))) => t,
            (None, None) => return false,
        };
        if next > end {
            return false;
        }
        self.now = self.now.max(next);
        if next_delivery == Some(next) {
            let key = *self.in_flight.keys().next().expect("checked");
            let delivery = self.in_flight.remove(&key).expect("checked");
            self.deliver(delivery);
        } else if let Some((_, i)) = next_timer {
            self.paused_until[i] = None;
            let now = self.now;
            if self.node(i).poll_timeout().is_some_and(|t| t <= now) {
                self.node_mut(i).handle_timeout(now);
            }
            if self.next_gossip[i] <= now {
                self.gossip_tick(i);
            }
            self.flush(i);
        }
        true
    }

    /// The embedder's gossip tick, as the node runs it: queued updates to `gossip_nodes`
    /// random members, one datagram each.
    fn gossip_tick(&mut self, i: usize) {
        let (now, interval) = (self.now, self.config.gossip_interval());
        self.next_gossip[i] = now + interval;
        let (budget, fanout) = (
            self.config.datagram_budget(),
            self.config.gossip_nodes().get(),
        );
        let swim = self.node_mut(i);
        let mut datagrams = Vec::new();
        for to in swim.gossip_targets(now, fanout) {
            let messages = swim.fill_broadcasts(budget);
            if messages.is_empty() {
                break;
            }
            datagrams.push((to, messages));
        }
        for (to, messages) in datagrams {
            self.route(i, to, false, messages);
        }
    }

    /// When node `i` next needs a call: its timeout, or the end of its pause.
    fn wake_time(&self, i: usize) -> Option<Instant> {
        let swim = self.nodes[i].as_ref()?;
        match self.paused_until[i] {
            Some(until) => Some(until),
            None => Some(
                swim.poll_timeout()
                    .map_or(self.next_gossip[i], |t| t.min(self.next_gossip[i])),
            ),
        }
    }

    fn deliver(&mut self, d: InFlight) {
        if self.nodes[d.to].is_none() {
            return;
        }
        if let Some(until) = self.paused_until[d.to] {
            // Held in the socket buffer until the pause ends, after the timers ran.
            let id = self.next_id;
            self.next_id += 1;
            self.in_flight
                .insert((until + Duration::from_nanos(1), id), d);
            return;
        }
        let now = self.now;
        let from = if d.reliable {
            SocketAddr::new(addr(d.from).ip(), 40_000)
        } else {
            addr(d.from)
        };
        let swim = self.nodes[d.to].as_mut().expect("checked");
        let result = if d.reliable {
            swim.handle_stream(now, from, &d.bytes)
        } else {
            swim.handle_packet(now, from, &d.bytes)
        };
        result.expect("machines only send valid messages");
        self.flush(d.to);
    }

    /// Moves node `i`'s transmits onto the network and records its events.
    pub fn flush(&mut self, i: usize) {
        let budget = self.config.datagram_budget();
        let now = self.now;
        let Some(swim) = self.nodes[i].as_mut() else {
            return;
        };
        let mut transmits = Vec::new();
        while let Some(t) = swim.poll_transmit() {
            transmits.push(t);
        }
        while let Some(e) = swim.poll_event() {
            self.events[i].push((now, e));
        }
        for t in transmits {
            let reliable = t.delivery == Delivery::Stream;
            if !reliable {
                let used: usize = t
                    .messages
                    .iter()
                    .map(|m| self.config.packed_len(m.len()))
                    .sum();
                assert!(used <= budget, "datagram over budget: {used}");
            }
            self.route(i, t.to, reliable, t.messages);
        }
    }

    /// Puts messages from node `i` to address `to` on the network, through the drop rule.
    fn route(&mut self, i: usize, to: SocketAddr, reliable: bool, messages: Vec<Bytes>) {
        let now = self.now;
        let Some(to) = (0..self.len()).find(|&j| addr(j) == to) else {
            self.stray_bytes += messages.iter().map(|m| m.len() as u64).sum::<u64>();
            return;
        };
        for bytes in messages {
            let message = Message::decode(&bytes).expect("valid message");
            let link = Link {
                now,
                from: i,
                to,
                reliable,
                message: &message,
            };
            if !(self.rule)(link) {
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let delivery = InFlight {
                from: i,
                to,
                reliable,
                bytes,
            };
            self.in_flight.insert((now + self.latency, id), delivery);
        }
    }

    /// Hands node `to` one datagram holding `message` from `from` (an outsider's packet, its
    /// source spoofed or not), now; what the node sends in return goes on the network.
    pub fn inject(&mut self, to: usize, from: SocketAddr, message: &Message) {
        let now = self.now;
        let bytes = message.encode();
        let result = self.node_mut(to).handle_packet(now, from, &bytes);
        result.expect("the injected message decodes");
        self.flush(to);
    }

    /// Cuts every link between the groups (and keeps links inside each group).
    pub fn partition(&mut self, side: Vec<usize>) {
        self.rule = Box::new(move |l| side.contains(&l.from) == side.contains(&l.to));
    }

    pub fn heal(&mut self) {
        self.rule = Box::new(|_| true);
    }
}

/// A config for fast tests: LAN values, with the optional timers given.
pub fn lan() -> Config {
    Config::lan()
}
