//! Seeds for every random stream, derived from the run's one `--seed`.
//!
//! Each stream (shuffling, augmentation, torch's initialisation and dropout) gets its own seed per
//! epoch, a pure function of (seed, stream, epoch). A run resumed at an epoch boundary therefore
//! draws exactly the numbers the uninterrupted run would have drawn, with no RNG state to save.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random streams of a run.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Split = 1,
    Shuffle = 2,
    Augment = 3,
    Torch = 4,
    Init = 5,
    Synthetic = 6,
    /// Random starts and random searches of an evaluation's attacks.
    Attack = 7,
}

/// SplitMix64 finaliser: a bijective mixing of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub fn derive(seed: u64, stream: Stream, epoch: u64) -> u64 {
    mix(mix(mix(seed) ^ stream as u64) ^ epoch)
}

pub fn rng(seed: u64, stream: Stream, epoch: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive(seed, stream, epoch))
}

/// Seeds libtorch's global generator (initialisation, dropout) for one epoch of one stream.
pub fn seed_torch(seed: u64, stream: Stream, epoch: u64) {
    tch::manual_seed((derive(seed, stream, epoch) >> 1) as i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_epochs_get_distinct_seeds() {
        let a = derive(7, Stream::Shuffle, 0);
        assert_eq!(a, derive(7, Stream::Shuffle, 0));
        assert_ne!(a, derive(7, Stream::Shuffle, 1));
        assert_ne!(a, derive(7, Stream::Augment, 0));
        assert_ne!(a, derive(8, Stream::Shuffle, 0));
    }
}
