//! Deriving independent, reproducible RNG seeds from one proxy (or mesh) seed.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// SplitMix64's finalizer: spreads one input bit over the whole output, so seeds derived from
/// neighbouring ids (connection 0, 1, 2 ...) give unrelated RNG streams.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for the sub-stream `id` of `seed`.
pub(crate) fn derive(seed: u64, id: u64) -> u64 {
    splitmix64(seed ^ splitmix64(id))
}

/// The RNG one direction of one connection uses. Connection ids are given in accept order, so
/// a run that opens its connections in the same order draws the same faults.
pub(crate) fn rng_for(seed: u64, conn_id: u64, dir: crate::Direction) -> StdRng {
    let lane = conn_id * 2 + matches!(dir, crate::Direction::Down) as u64;
    StdRng::seed_from_u64(derive(seed, lane))
}

/// A fresh seed when the caller gives none; it is logged and exposed so a failing run can be
/// replayed with it.
pub(crate) fn random_seed() -> u64 {
    rand::random()
}
