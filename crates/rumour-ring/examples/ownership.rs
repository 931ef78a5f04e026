//! Prints the ownership imbalance (max/min owned fraction) of random and spread tokens as
//! instances join one at a time, 128 tokens each: the figures quoted in the crate docs.
//!
//! `cargo run --release -p rumour-ring --example ownership`

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rumour_ring::{Instance, Ring, State, Timestamp, TokenStrategy};

fn main() -> Result<(), rumour_ring::Error> {
    println!("instances | random max/min | spread max/min");
    for n in [10, 100, 1000] {
        let mut row = Vec::new();
        for strategy in [TokenStrategy::Random, TokenStrategy::Spread] {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let mut ring = Ring::new();
            for i in 0..n {
                let tokens = strategy.generate(128, &ring, "", &mut rng)?;
                let instance = Instance::new("a:1", "", State::Active, tokens, Timestamp(1));
                ring.set_instance(&format!("ing-{i:04}"), instance)?;
            }
            row.push(ring.ownership_imbalance());
        }
        println!("{n:>9} | {:>14.3} | {:>14.3}", row[0], row[1]);
    }
    Ok(())
}
