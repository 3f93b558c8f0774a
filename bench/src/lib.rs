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

/// The SGEMM rate of our packed matrix product on one thread, GFLOP/s (best of `reps`), on a
/// large square-ish product (784 × 1024 × 1024: MobileNet's biggest pointwise shapes, hot).
pub fn sgemm_rate(reps: usize) -> f64 {
    use mobilenetc_runtime::kernels::{gemm, Act};
    let (m, k, n) = (784, 1024, 1024);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
    let packed = gemm::pack(k, n, &b, false);
    let mut c = vec![0.0; m * n];
    let flops = 2.0 * (m * k * n) as f64;
    let t = (0..reps).map(|_| time(|| gemm::matmul(m, k, n, &a, k, &packed, None, Act::None, &mut c, n, 1))).collect::<Vec<_>>();
    flops / best(&t) / 1e9
}
