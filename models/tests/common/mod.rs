//! Helpers shared by the model crate's tests: deterministic data and bit-exact comparison.
#![allow(dead_code)] // each test file uses part of it

/// A 64-bit LCG (Knuth's MMIX constants): deterministic test data with no dependency.
pub struct Lcg(u64);

impl Lcg {
    /// Starts from the raw state `s` (the first value comes from the state after one step).
    pub fn new(s: u64) -> Lcg {
        Lcg(s)
    }

    /// The next 24 random bits.
    pub fn next_bits(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 40
    }

    /// The next value in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_bits() as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// `len` values in [-1, 1) from `seed`.
pub fn input(len: usize, seed: u64) -> Vec<f32> {
    let mut r = Lcg::new(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
    (0..len).map(|_| r.uniform()).collect()
}

/// `len` images in [-1, 1) then `batch` labels below `classes`, from one stream started at `s`.
pub fn labelled(s: u64, len: usize, batch: usize, classes: u64) -> (Vec<f32>, Vec<u32>) {
    let mut r = Lcg::new(s);
    let images = (0..len).map(|_| r.uniform()).collect();
    let labels = (0..batch).map(|_| (r.next_bits() % classes) as u32).collect();
    (images, labels)
}

/// Asserts that the generated code computed exactly the executor's bits.
pub fn assert_bits(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.to_bits(), y.to_bits(), "{what}[{i}]: generated {x} vs executor {y}");
    }
}
