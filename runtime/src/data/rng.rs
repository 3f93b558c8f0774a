//! The deterministic random numbers behind shuffling and augmentation.
//!
//! SplitMix64 (Steele, Lea and Flood, 2014; the generator Java's `SplittableRandom` and the
//! seeding of xoshiro use): 64 bits of state, passes BigCrush, and is trivially keyed, which
//! lets every (seed, epoch, image position) get its own independent stream. That makes a batch
//! computable on its own, in any order or thread, and keeps results fixed across versions of
//! external crates (rand's `StdRng` does not promise a stable stream).

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// A generator keyed by a seed and a path of integers (for example stream, epoch, index):
    /// different keys give unrelated streams.
    pub fn keyed(seed: u64, key: &[u64]) -> Self {
        let mut s = mix(seed.wrapping_add(GOLDEN));
        for &k in key {
            s = mix(s ^ mix(k.wrapping_add(GOLDEN)));
        }
        SplitMix64 { state: s }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift; the bias is below n / 2^64.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// A uniform f64 in [0, 1) with 53 random bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}
