//! The lifecycler: registers one instance in a ring, heartbeats it, changes its state, and
//! unregisters it; optionally forgets instances that stopped heartbeating.
//!
//! It is pure. Every method takes the current ring (as the KV store's compare-and-swap hands it
//! over, tombstones stripped) and the current time, and returns the **desired ring**: the value
//! to return from the CAS function, which the store merges with `local_cas = Some(now)`. The
//! store then gossips only what changed: a heartbeat becomes a heartbeat-only change of a few
//! dozen bytes, an unregistration a `Left` tombstone. Returning `None` means "nothing to write".
//!
//! Because a CAS may call its function more than once, every method can be called again with a
//! newer current ring and gives the same kind of answer.
//!
//! ```
//! use std::time::Duration;
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use rumour_ring::{Lifecycler, LifecyclerConfig, Mergeable, Ring, State, Timestamp};
//!
//! let config = LifecyclerConfig::new("ingester-1", "10.0.0.1:9095", "zone-a");
//! let mut lifecycler = Lifecycler::new(config, ChaCha8Rng::seed_from_u64(1)).unwrap();
//! let mut stored = Ring::new(); // what the KV store holds
//!
//! // Register: the CAS merges the desired ring with local_cas = Some(now).
//! let now = Timestamp(1_700_000_000_000);
//! let desired = lifecycler.register(&stored, now).unwrap();
//! stored.merge(&desired, Some(now));
//! assert_eq!(stored.instance("ingester-1").unwrap().state(), State::Active);
//!
//! // Heartbeat when due: the change to gossip carries no tokens.
//! let later = now.saturating_add_millis(5_000);
//! assert!(lifecycler.is_heartbeat_due(later));
//! let desired = lifecycler.heartbeat(&stored, later).unwrap().unwrap();
//! let change = stored.merge(&desired, Some(later)).unwrap();
//! assert!(change.encode().len() <= 64);
//! ```

use std::time::Duration;

use rand_chacha::ChaCha8Rng;

use crate::error::Error;
use crate::instance::{Instance, State, Tokens, validate_instance_id};
use crate::mergeable::Timestamp;
use crate::ring::Ring;
use crate::token::TokenStrategy;

/// Settings of a [`Lifecycler`]; defaults follow dskit's ingester lifecycler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecyclerConfig {
    /// The instance id (no whitespace).
    pub id: String,
    /// The address clients use to reach the instance.
    pub addr: String,
    /// Availability zone; empty for none.
    pub zone: String,
    /// Tokens to own (default 128).
    pub num_tokens: usize,
    /// Time between heartbeats (default 5 s).
    pub heartbeat_period: Duration,
    /// Heartbeat age after which an instance counts as unhealthy (default 1 min).
    pub heartbeat_timeout: Duration,
    /// How tokens are picked (default random).
    pub token_strategy: TokenStrategy,
    /// The state the instance registers in (default `Active`; `Joining` or `Pending` for an
    /// instance that moves to `Active` itself with [`Lifecycler::set_state`]).
    pub register_state: State,
    /// Forget (turn into tombstones) other instances whose last heartbeat is older than this,
    /// at each heartbeat (dskit's `AutoForgetDelegate`; default off).
    pub auto_forget_after: Option<Duration>,
}

impl LifecyclerConfig {
    /// Defaults for instance `id` at `addr` in `zone`.
    #[must_use]
    pub fn new(
        id: impl Into<String>,
        addr: impl Into<String>,
        zone: impl Into<String>,
    ) -> LifecyclerConfig {
        LifecyclerConfig {
            id: id.into(),
            addr: addr.into(),
            zone: zone.into(),
            num_tokens: 128,
            heartbeat_period: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(60),
            token_strategy: TokenStrategy::Random,
            register_state: State::Active,
            auto_forget_after: None,
        }
    }
}

/// Registers and heartbeats one instance of a ring. See the module documentation.
#[derive(Clone, Debug)]
pub struct Lifecycler {
    config: LifecyclerConfig,
    rng: ChaCha8Rng,
    state: Option<State>,
    left: bool,
    tokens: Tokens,
    registered_at: Option<Timestamp>,
    next_heartbeat: Option<Timestamp>,
}

impl Lifecycler {
    /// A lifecycler drawing tokens from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidInstanceId`] if the configured id is not a valid instance id.
    pub fn new(config: LifecyclerConfig, rng: ChaCha8Rng) -> Result<Lifecycler, Error> {
        validate_instance_id(&config.id)?;
        Ok(Lifecycler {
            config,
            rng,
            state: None,
            left: false,
            tokens: Tokens::empty(),
            registered_at: None,
            next_heartbeat: None,
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &LifecyclerConfig {
        &self.config
    }

    /// The state last written, `None` before registration and after unregistration.
    #[must_use]
    pub fn state(&self) -> Option<State> {
        if self.left { None } else { self.state }
    }

    /// The tokens this instance claims.
    #[must_use]
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// When the next heartbeat is due (`None` when there is nothing to heartbeat).
    #[must_use]
    pub fn next_heartbeat_at(&self) -> Option<Timestamp> {
        if self.left { None } else { self.next_heartbeat }
    }

    /// Whether a heartbeat is due at `now`.
    #[must_use]
    pub fn is_heartbeat_due(&self, now: Timestamp) -> bool {
        self.next_heartbeat_at().is_some_and(|at| at <= now)
    }

    /// The desired ring registering this instance, or taking over its existing entry (keeping
    /// its registration time and tokens, topped up or trimmed to `num_tokens`; a `Leaving`
    /// instance becomes `Active` again, a `Joining` one `Pending`, as in dskit).
    ///
    /// # Errors
    /// [`Error::NotEnoughFreeTokens`] if tokens cannot be generated.
    pub fn register(&mut self, current: &Ring, now: Timestamp) -> Result<Ring, Error> {
        let existing = current
            .instance(&self.config.id)
            .filter(|i| i.state() != State::Left)
            .map(|i| i.instance().clone());
        let mut state = self.config.register_state;
        let mut tokens = self.tokens.clone();
        if let Some(existing) = &existing {
            self.registered_at = Some(existing.registered_at);
            state = match existing.state {
                State::Leaving => State::Active,
                State::Joining => State::Pending,
                other => other,
            };
            tokens = existing.tokens.clone();
        }
        self.tokens = self.fit_tokens(tokens, current)?;
        self.state = Some(state);
        self.left = false;
        let registered_at = *self.registered_at.get_or_insert(now);
        let mut desired = current.clone();
        let fresh = Instance::new(
            self.config.addr.clone(),
            self.config.zone.clone(),
            state,
            self.tokens.clone(),
            now,
        );
        // A take-over keeps what others set on the entry: read-only flag and versions.
        let instance = match existing {
            Some(existing) => Instance {
                registered_at,
                read_only: existing.read_only,
                read_only_updated_at: existing.read_only_updated_at,
                versions: existing.versions,
                ..fresh
            },
            None => Instance {
                registered_at,
                ..fresh
            },
        };
        desired.set_instance(&self.config.id, instance)?;
        self.write_heartbeat(&mut desired, current, now)?;
        Ok(desired)
    }

    /// The claimed tokens, topped up or trimmed to `num_tokens`.
    fn fit_tokens(&mut self, tokens: Tokens, ring: &Ring) -> Result<Tokens, Error> {
        let wanted = self.config.num_tokens;
        if tokens.len() == wanted {
            return Ok(tokens);
        }
        if tokens.len() > wanted {
            return Ok(Tokens::from_sorted(tokens[..wanted].to_vec()));
        }
        let mut with_ours = ring.clone();
        if !tokens.is_empty() {
            // Make sure our own tokens count as taken.
            let placeholder = Instance::new("", "", State::Active, tokens.clone(), Timestamp(0));
            with_ours.set_instance(&self.config.id, placeholder)?;
        }
        let extra = self.config.token_strategy.generate(
            wanted - tokens.len(),
            &with_ours,
            &self.config.zone,
            &mut self.rng,
        )?;
        Ok(tokens.iter().chain(extra.iter()).copied().collect())
    }

    /// Sets this instance's heartbeat to `now` (or just past the stored one) in `desired`.
    fn write_heartbeat(
        &mut self,
        desired: &mut Ring,
        current: &Ring,
        now: Timestamp,
    ) -> Result<(), Error> {
        let stored = current
            .heartbeat_of(&self.config.id)
            .unwrap_or(Timestamp(0));
        let beat = now.max(stored.saturating_add_millis(1));
        desired.set_heartbeat(&self.config.id, beat)?;
        self.next_heartbeat = Some(now.saturating_add_millis(millis(self.config.heartbeat_period)));
        Ok(())
    }

    /// The desired ring with this instance's heartbeat at `now`, re-registering the instance if
    /// the ring lost it (a reset store, or another node forgot it), and forgetting instances
    /// unhealthy for longer than `auto_forget_after`. `None` before registration and after
    /// unregistration.
    ///
    /// # Errors
    /// [`Error::NotEnoughFreeTokens`] if a re-registration cannot generate tokens.
    pub fn heartbeat(&mut self, current: &Ring, now: Timestamp) -> Result<Option<Ring>, Error> {
        let Some(state) = self.state() else {
            return Ok(None);
        };
        let present = current
            .instance(&self.config.id)
            .is_some_and(|i| i.state() != State::Left);
        let mut desired = if present {
            current.clone()
        } else {
            // Re-add with the tokens and state we had, registered now.
            self.registered_at = Some(now);
            let mut ring = current.clone();
            let instance = Instance::new(
                self.config.addr.clone(),
                self.config.zone.clone(),
                state,
                self.tokens.clone(),
                now,
            );
            ring.set_instance(&self.config.id, instance)?;
            ring
        };
        self.write_heartbeat(&mut desired, current, now)?;
        if let Some(forgotten) = self.forget_unhealthy(&desired, now) {
            desired = forgotten;
        }
        Ok(Some(desired))
    }

    /// The desired ring with this instance in `state` (e.g. `Leaving` before shutting down, or
    /// `Active` after joining), or `None` if the instance is not registered.
    ///
    /// # Errors
    /// Only if the configured id were invalid, which [`Lifecycler::new`] rules out.
    pub fn set_state(
        &mut self,
        current: &Ring,
        state: State,
        now: Timestamp,
    ) -> Result<Option<Ring>, Error> {
        if self.state().is_none() || state == State::Left {
            return Ok(None);
        }
        self.state = Some(state);
        let mut desired = current.clone();
        let base = current
            .instance(&self.config.id)
            .filter(|i| i.state() != State::Left)
            .map(|i| i.instance().clone());
        let instance = match base {
            Some(existing) => Instance {
                state,
                updated_at: now,
                ..existing
            },
            None => Instance {
                registered_at: *self.registered_at.get_or_insert(now),
                ..Instance::new(
                    self.config.addr.clone(),
                    self.config.zone.clone(),
                    state,
                    self.tokens.clone(),
                    now,
                )
            },
        };
        desired.set_instance(&self.config.id, instance)?;
        self.write_heartbeat(&mut desired, current, now)?;
        Ok(Some(desired))
    }

    /// The desired ring without this instance: the CAS turns it into a `Left` tombstone. After
    /// this the lifecycler writes nothing more until [`Lifecycler::register`] is called again.
    #[must_use]
    pub fn unregister(&mut self, current: &Ring) -> Ring {
        self.left = true;
        self.next_heartbeat = None;
        self.registered_at = None;
        let mut desired = current.clone();
        desired.remove(&self.config.id);
        desired
    }

    /// The desired ring without the other instances whose last heartbeat is older than
    /// `auto_forget_after` at `now`, or `None` if there are none (or auto-forget is off).
    #[must_use]
    pub fn forget_unhealthy(&self, current: &Ring, now: Timestamp) -> Option<Ring> {
        let period = self.config.auto_forget_after?;
        let stale: Vec<String> = current
            .instances()
            .filter(|i| i.id() != self.config.id && i.state() != State::Left)
            .filter(|i| !i.is_heartbeat_healthy(now, period))
            .map(|i| i.id().to_owned())
            .collect();
        if stale.is_empty() {
            return None;
        }
        let mut desired = current.clone();
        for id in &stale {
            desired.remove(id);
        }
        Some(desired)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
