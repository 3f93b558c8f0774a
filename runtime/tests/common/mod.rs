//! Helpers shared by the kernel tests: seeded data, layout conversions, comparison.
#![allow(dead_code)]

use mobilenetc_runtime::kernels::isa::{with_isa, Isa};
use mobilenetc_runtime::kernels::Act;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Uniform values in [-1, 1).
pub fn rand_vec(rng: &mut StdRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

pub fn rand_act(rng: &mut StdRng) -> Act {
    match rng.random_range(0..4) {
        0 => Act::None,
        1 => Act::Relu,
        2 => Act::RELU6,
        _ => Act::Clip { min: -0.25, max: 0.5 },
    }
}

/// The activation in f64, for references.
pub fn act64(act: Act, x: f64) -> f64 {
    match act {
        Act::None => x,
        Act::Relu => x.max(0.0),
        Act::Clip { min, max } => x.max(min as f64).min(max as f64),
    }
}

/// The ISA variants this CPU runs (each kernel test runs on all of them).
pub fn isas() -> Vec<Isa> {
    Isa::ALL.into_iter().filter(|i| i.supported()).collect()
}

/// Runs `f` once per supported ISA, forced.
pub fn for_each_isa(mut f: impl FnMut(Isa)) {
    for isa in isas() {
        with_isa(isa, || f(isa)).expect("supported ISA");
    }
}

/// Tolerance for a value that sums `k` products: max |ours − ref| ≤ 1e-5·√k·max(1, |ref|).
pub fn assert_close(what: &str, ours: &[f32], reference: &[f64], k: usize) {
    assert_eq!(ours.len(), reference.len(), "{what}: length");
    let scale = 1e-5 * (k.max(1) as f64).sqrt();
    for (i, (&o, &r)) in ours.iter().zip(reference).enumerate() {
        let err = (o as f64 - r).abs();
        let tol = scale * r.abs().max(1.0);
        // NaN (an element never written) fails too.
        if err.is_nan() || err > tol {
            panic!("{what}: element {i}: ours {o} vs reference {r} (|err| {err:e} > tol {tol:e})");
        }
    }
}

/// `[n, c, h, w]` → `[n, h, w, c]` (independent of the runtime's transpose).
pub fn to_nhwc(x: &[f32], n: usize, c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    out[((b * h + y) * w + xx) * c + ch] = x[((b * c + ch) * h + y) * w + xx];
                }
            }
        }
    }
    out
}

/// `[n, h, w, c]` → `[n, c, h, w]`.
pub fn to_nchw<T: Copy + Default>(x: &[T], n: usize, c: usize, h: usize, w: usize) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    out[((b * c + ch) * h + y) * w + xx] = x[((b * h + y) * w + xx) * c + ch];
                }
            }
        }
    }
    out
}
