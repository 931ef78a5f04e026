//! Token generation: random tokens without collisions, and evenly spread tokens that keep
//! ownership balanced. Both draw only from the RNG they are given.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use rand::RngCore;

use crate::error::Error;
use crate::instance::Tokens;
use crate::lookup::TOKEN_SPACE;
use crate::ring::Ring;

/// How an instance picks its tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TokenStrategy {
    /// Uniformly random tokens, avoiding every token already in the ring (dskit's default).
    #[default]
    Random,
    /// Tokens that take an equal share of the ring from the instances that own the most of it,
    /// so ownership stays nearly equal as instances join (see the crate docs for figures).
    /// Balanced within the new instance's zone when it has one.
    Spread,
}

impl TokenStrategy {
    /// Generates `n` tokens for a new instance in `zone`, none of them already in `ring`.
    ///
    /// # Errors
    /// [`Error::NotEnoughFreeTokens`] if the ring has fewer than `n` free tokens.
    pub fn generate(
        self,
        n: usize,
        ring: &Ring,
        zone: &str,
        rng: &mut dyn RngCore,
    ) -> Result<Tokens, Error> {
        let taken = ring.all_tokens();
        match self {
            TokenStrategy::Random => random_tokens(n, &taken, rng),
            TokenStrategy::Spread => {
                let (owned, owners) = ring.owned_tokens((!zone.is_empty()).then_some(zone));
                spread_tokens(n, &owned, owners, &taken, rng)
            }
        }
    }
}

fn check_free(n: usize, taken: &[u32]) -> Result<(), Error> {
    let free = TOKEN_SPACE - taken.len() as u64;
    if n as u64 > free {
        return Err(Error::NotEnoughFreeTokens { wanted: n, free });
    }
    Ok(())
}

/// `n` distinct uniformly random tokens, none in `taken` (sorted).
///
/// # Errors
/// [`Error::NotEnoughFreeTokens`] if fewer than `n` tokens are free.
pub fn random_tokens(n: usize, taken: &[u32], rng: &mut dyn RngCore) -> Result<Tokens, Error> {
    check_free(n, taken)?;
    let mut chosen = BTreeSet::new();
    while chosen.len() < n {
        let token = rng.next_u32();
        if taken.binary_search(&token).is_err() {
            chosen.insert(token);
        }
    }
    Ok(Tokens::from_sorted(chosen.into_iter().collect()))
}

/// `n` tokens that take `1 / (owners + 1)` of the ring, each token cutting an equal piece from
/// the largest range of the instance that currently owns the most.
///
/// `owned` holds the existing tokens of the ring being balanced (sorted, each with a dense owner
/// number below `owners`); `taken` holds every token of the whole ring (sorted), which the new
/// tokens avoid. An empty ring gets `n` evenly spaced tokens from a random offset.
///
/// # Errors
/// [`Error::NotEnoughFreeTokens`] if fewer than `n` tokens are free.
pub fn spread_tokens(
    n: usize,
    owned: &[(u32, u32)],
    owners: usize,
    taken: &[u32],
    rng: &mut dyn RngCore,
) -> Result<Tokens, Error> {
    check_free(n, taken)?;
    if n == 0 {
        return Ok(Tokens::empty());
    }
    if owned.is_empty() || owners == 0 {
        let offset = u64::from(rng.next_u32());
        let tokens = (0..n as u64).map(|i| (offset + i * TOKEN_SPACE / n as u64) as u32);
        return Ok(settle(tokens.collect(), taken, rng));
    }
    // Ranges [previous token, token) belong to the token's owner.
    let mut own = vec![0u64; owners];
    let mut ranges: Vec<BinaryHeap<(u64, Reverse<u32>)>> = vec![BinaryHeap::new(); owners];
    for (i, &(token, owner)) in owned.iter().enumerate() {
        let previous = owned[if i == 0 { owned.len() - 1 } else { i - 1 }].0;
        let length = match token.wrapping_sub(previous) {
            0 => TOKEN_SPACE,
            d => u64::from(d),
        };
        own[owner as usize] += length;
        ranges[owner as usize].push((length, Reverse(previous)));
    }
    let mut richest: BinaryHeap<(u64, Reverse<u32>)> = own
        .iter()
        .enumerate()
        .map(|(o, &amount)| (amount, Reverse(o as u32)))
        .collect();
    let mut remaining = TOKEN_SPACE / (owners as u64 + 1);
    let mut chosen = Vec::with_capacity(n);
    for picks_left in (1..=n as u64).rev() {
        let piece = (remaining / picks_left).max(1);
        let cut = richest.pop().and_then(|(amount, Reverse(owner))| {
            let (length, Reverse(start)) = ranges[owner as usize].pop()?;
            let mut size = piece.min(length - 1);
            // Step over tokens of other zones.
            while size > 0
                && taken
                    .binary_search(&start.wrapping_add(size as u32))
                    .is_ok()
            {
                size += 1;
                if size >= length {
                    size = 0;
                }
            }
            let token = start.wrapping_add(size as u32);
            ranges[owner as usize].push((length - size, Reverse(token)));
            richest.push((amount - size, Reverse(owner)));
            (size > 0).then_some((token, size))
        });
        match cut {
            Some((token, size)) => {
                chosen.push(token);
                remaining = remaining.saturating_sub(size);
            }
            None => chosen.push(rng.next_u32()),
        }
    }
    Ok(settle(chosen, taken, rng))
}

/// Sorts the tokens and replaces any that collide with `taken` or with each other by random
/// free ones.
fn settle(mut tokens: Vec<u32>, taken: &[u32], rng: &mut dyn RngCore) -> Tokens {
    let want = tokens.len();
    tokens.retain(|t| taken.binary_search(t).is_err());
    let mut set: BTreeSet<u32> = tokens.into_iter().collect();
    while set.len() < want {
        let token = rng.next_u32();
        if taken.binary_search(&token).is_err() {
            set.insert(token);
        }
    }
    Tokens::from_sorted(set.into_iter().collect())
}

impl Ring {
    /// The ownership imbalance: the largest owned fraction divided by the smallest, over live
    /// instances (infinite if one owns nothing, 1 for an empty ring).
    #[must_use]
    pub fn ownership_imbalance(&self) -> f64 {
        imbalance(self.ownership().into_iter().map(|(_, f)| f))
    }

    /// Like [`Ring::ownership_imbalance`], but over [`Ring::ownership_within_zones`].
    #[must_use]
    pub fn ownership_imbalance_within_zones(&self) -> f64 {
        imbalance(self.ownership_within_zones().into_iter().map(|(_, f)| f))
    }
}

fn imbalance(fractions: impl Iterator<Item = f64>) -> f64 {
    let (min, max) = fractions.fold((f64::INFINITY, 0.0f64), |(lo, hi), f| {
        (lo.min(f), hi.max(f))
    });
    if max == 0.0 { 1.0 } else { max / min }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn random_tokens_avoid_taken_ones() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let taken: Vec<u32> = (0..1000).map(|i| i * 17).collect();
        let tokens = random_tokens(512, &taken, &mut rng).expect("enough free tokens");
        assert_eq!(tokens.len(), 512);
        assert!(tokens.iter().all(|t| taken.binary_search(t).is_err()));
    }

    #[test]
    fn spread_tokens_for_a_second_instance_halve_the_ring() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let first = spread_tokens(128, &[], 0, &[], &mut rng).expect("free tokens");
        let owned: Vec<(u32, u32)> = first.iter().map(|&t| (t, 0)).collect();
        let second = spread_tokens(128, &owned, 1, &first, &mut rng).expect("free tokens");
        assert_eq!(second.len(), 128);
        assert!(second.iter().all(|t| !first.contains(*t)));
        // The second instance owns the ranges ending at its tokens: about half the ring.
        let mut all: Vec<(u32, bool)> = first.iter().map(|&t| (t, false)).collect();
        all.extend(second.iter().map(|&t| (t, true)));
        all.sort_unstable();
        let mut mine = 0u64;
        for (i, &(t, is_mine)) in all.iter().enumerate() {
            let previous = all[if i == 0 { all.len() - 1 } else { i - 1 }].0;
            if is_mine {
                mine += u64::from(t.wrapping_sub(previous));
            }
        }
        let fraction = mine as f64 / TOKEN_SPACE as f64;
        assert!((fraction - 0.5).abs() < 0.001, "owns {fraction}");
    }

    #[test]
    fn asking_for_more_tokens_than_are_free_is_an_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let taken: Vec<u32> = Vec::new();
        let err = random_tokens(usize::MAX, &taken, &mut rng).expect_err("too many");
        assert!(matches!(err, Error::NotEnoughFreeTokens { .. }));
    }
}
