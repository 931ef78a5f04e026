//! Configuration profiles: memberlist's LAN, WAN and local presets for every layer at once.

use std::time::Duration;

/// A preset for SWIM, gossip and the transport together (memberlist's `DefaultLANConfig`,
/// `DefaultWANConfig` and `DefaultLocalConfig`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// A data-centre network: 1 s probes, 200 ms gossip to 3 members, 30 s pull-push.
    #[default]
    Lan,
    /// Across regions: 5 s probes, 500 ms gossip to 4 members, 60 s pull-push.
    Wan,
    /// One host or a fast local network: 1 s probes, 200 ms probe timeout, 100 ms gossip.
    Local,
}

impl Profile {
    /// The profile's name (`lan`, `wan`, `local`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Profile::Lan => "lan",
            Profile::Wan => "wan",
            Profile::Local => "local",
        }
    }

    /// memberlist's SWIM settings for this profile.
    #[must_use]
    pub fn swim(self) -> rumour_swim::Config {
        match self {
            Profile::Lan => rumour_swim::Config::lan(),
            Profile::Wan => rumour_swim::Config::wan(),
            Profile::Local => rumour_swim::Config::local(),
        }
    }

    /// dskit's gossip settings for this profile, for a node advertising `addr`.
    #[must_use]
    pub fn gossip(self, addr: std::net::SocketAddr) -> rumour_gossip::Config {
        match self {
            Profile::Lan => rumour_gossip::Config::lan(addr),
            Profile::Wan => rumour_gossip::Config::wan(addr),
            Profile::Local => rumour_gossip::Config::local(addr),
        }
    }

    /// How often the KV store reconciles with one random member by digests: a sixth of SWIM's
    /// pull-push interval (5 s at LAN). dskit exchanges the whole store every 30 s; rumour's
    /// in-sync exchange costs a few dozen bytes, so it can afford to repair a change that
    /// gossip missed (about 2 % of changes miss one member at 64 nodes with the retransmit
    /// limit of 8) within seconds instead of a minute.
    #[must_use]
    pub fn kv_pullpush_interval(self) -> Duration {
        self.swim()
            .pullpush_interval()
            .map_or(Duration::from_secs(5), |d| d / 6)
    }

    /// The gossip period: one dissemination round.
    #[must_use]
    pub fn gossip_interval(self) -> Duration {
        self.swim().gossip_interval()
    }

    /// An upper bound on the time from a crash until every survivor of an `n`-member cluster
    /// has declared the victim failed: two probe periods and a probe timeout until someone
    /// suspects it, the suspicion timeout without confirmations, and two seconds for the news
    /// to spread.
    #[must_use]
    pub fn detection_bound(self, n: usize) -> Duration {
        let swim = self.swim();
        let min = rumour_swim::suspicion_min(swim.suspicion_mult().get(), n, swim.probe_interval());
        let max = rumour_swim::suspicion_max(swim.suspicion_max_timeout_mult().get(), min);
        swim.probe_interval() * 2 + swim.probe_timeout() + max + Duration::from_secs(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_detection_bound_follows_the_suspicion_formula() {
        // n = 100: min = 4 * log10(100) * 1 s = 8 s, max = 6 * 8 s = 48 s.
        assert_eq!(
            Profile::Lan.detection_bound(100),
            Duration::from_millis(2_000 + 500 + 48_000 + 2_000)
        );
    }
}
