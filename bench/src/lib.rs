//! Speed comparisons of mobilenetc against tract (in process, `cargo bench`) and onnxruntime
//! (`bench/compare.sh`, through the `serve` binary). Not a workspace member: tract is heavy.
//!
//! "Our code" is the generated code of [`generated`] (compiled by `build.rs` with mobilenetc's
//! code generator) and, in `bench/compare.sh`, also the schedule executor.

pub mod generated;

use std::time::Instant;

/// Seconds of one call of `f`.
pub fn time(mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// Median of `xs` (sorted copy).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

pub fn best(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}

/// A deterministic NCHW test image in [-1, 1].
pub fn test_image(r: usize) -> Vec<f32> {
    (0..3 * r * r).map(|i| ((i as f32 * 0.618_034).fract() * 2.0 - 1.0) * 0.9).collect()
}

/// A large single-thread product of our packed matrix product (784 × 1024 × 1024: MobileNet's
/// biggest pointwise shapes, operands hot), timed to rate our kernels against.
pub struct Sgemm {
    a: Vec<f32>,
    packed: Vec<f32>,
    c: Vec<f32>,
}

impl Sgemm {
    const M: usize = 784;
    const K: usize = 1024;
    const N: usize = 1024;

    pub fn new() -> Sgemm {
        use mobilenetc_runtime::kernels::gemm;
        let a: Vec<f32> = (0..Self::M * Self::K).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..Self::K * Self::N).map(|i| (i % 5) as f32 * 0.1).collect();
        Sgemm { a, packed: gemm::pack(Self::K, Self::N, &b, false), c: vec![0.0; Self::M * Self::N] }
    }

    pub fn gflop(&self) -> f64 {
        2.0 * (Self::M * Self::K * Self::N) as f64 / 1e9
    }

    /// One product, in seconds.
    pub fn time(&mut self) -> f64 {
        use mobilenetc_runtime::kernels::{gemm, Act};
        time(|| gemm::matmul(Self::M, Self::K, Self::N, &self.a, Self::K, &self.packed, None, Act::None, &mut self.c, Self::N, 1))
    }
}

impl Default for Sgemm {
    fn default() -> Self {
        Self::new()
    }
}

/// The SGEMM rate on one thread, GFLOP/s (best of `reps` products).
pub fn sgemm_rate(reps: usize) -> f64 {
    let mut s = Sgemm::new();
    let t: Vec<f64> = (0..reps).map(|_| s.time()).collect();
    s.gflop() / best(&t)
}
