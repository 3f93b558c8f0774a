//! BatchNormalization in training mode over NHWC (`[pixels, c]`, pixels = n·h·w), with the
//! activation that follows it fused (ReLU / Clip / none).
//!
//! Forward: batch statistics per channel (sums in f64), `y = act((x − mean)·invstd·scale +
//! bias)`, with `invstd = 1/√(var + ε)` and `var` the biased (population) batch variance, as
//! PyTorch and ONNX normalize. `mean` and `invstd` are saved for the backward pass.
//!
//! Running statistics (in [`BatchNormTrain::update_running`]) take ONNX's `momentum`
//! attribute as written: `running = momentum·running + (1 − momentum)·batch` (ONNX default
//! 0.9, which is PyTorch's `momentum = 0.1` read the other way round; PyTorch's exporter writes
//! `1 − momentum`). Like PyTorch, the running variance takes the *unbiased* batch variance
//! (`var · m/(m − 1)` for `m` pixels per channel).
//!
//! Backward (given `dy` of the activation's output, overwritten by `dx`):
//! `g = dy · act'(y)`, `x̂ = (x − mean)·invstd`,
//! `dx = scale·invstd·(g − mean(g) − x̂·mean(g·x̂))`, `dscale = Σ g·x̂`, `dbias = Σ g`.

use super::super::isa::{self, Isa};
use super::super::threads::{split_rows, SendPtr};
use super::super::Act;
use super::activation::passes;
use super::map_parts;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormTrain {
    /// n·h·w: the values per channel.
    pub pixels: usize,
    pub c: usize,
    pub eps: f32,
    /// The activation applied to the normalized output.
    pub act: Act,
}

/// Pixel rows per thread below which the kernel stays on one thread.
const MIN_ROWS_PER_THREAD: usize = 256;

impl BatchNormTrain {
    pub const fn len(&self) -> usize {
        self.pixels * self.c
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn parts(&self, threads: usize) -> usize {
        threads.clamp(1, (self.pixels / MIN_ROWS_PER_THREAD).max(1))
    }

    /// Normalizes `x` with its batch statistics into `y`; writes the batch `mean`, `invstd`
    /// and biased `var` (each `c` long).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(&self, x: &[f32], scale: &[f32], bias: &[f32], y: &mut [f32], mean: &mut [f32], invstd: &mut [f32], var: &mut [f32], threads: usize) {
        let c = self.c;
        assert!(x.len() == self.len() && y.len() == self.len(), "batchnorm train: x/y length");
        assert!(scale.len() == c && bias.len() == c && mean.len() == c && invstd.len() == c && var.len() == c, "batchnorm train: parameter lengths");
        let parts = self.parts(threads);
        let sums = map_parts(self.pixels, parts, |r| dispatch_sums(&x[r.start * c..r.end * c], c));
        let (mut s1, mut s2) = (vec![0.0f64; c], vec![0.0f64; c]);
        for (a, b) in sums {
            s1.iter_mut().zip(&a).for_each(|(s, v)| *s += v);
            s2.iter_mut().zip(&b).for_each(|(s, v)| *s += v);
        }
        let m = self.pixels.max(1) as f64;
        let mut mul = vec![0.0f32; c];
        let mut add = vec![0.0f32; c];
        for i in 0..c {
            let mu = s1[i] / m;
            let v = (s2[i] / m - mu * mu).max(0.0);
            let is = 1.0 / (v + self.eps as f64).sqrt();
            mean[i] = mu as f32;
            var[i] = v as f32;
            invstd[i] = is as f32;
            mul[i] = (is * scale[i] as f64) as f32;
            add[i] = (bias[i] as f64 - mu * is * scale[i] as f64) as f32;
        }
        let yp = SendPtr(y.as_mut_ptr());
        let act = self.act;
        split_rows(self.pixels, parts, |r| {
            // SAFETY: each part writes its own rows of y.
            let ys = unsafe { std::slice::from_raw_parts_mut({ yp }.0.add(r.start * c), r.len() * c) };
            dispatch_apply(&x[r.start * c..r.end * c], &mul, &add, act, ys);
        });
    }

    /// Moves the running statistics towards the batch's (ONNX momentum; see the module).
    pub fn update_running(&self, running_mean: &mut [f32], running_var: &mut [f32], mean: &[f32], var: &[f32], momentum: f32) {
        let m = self.pixels as f64;
        let unbias = if self.pixels > 1 { m / (m - 1.0) } else { 1.0 };
        let mo = momentum as f64;
        for i in 0..self.c {
            running_mean[i] = (mo * running_mean[i] as f64 + (1.0 - mo) * mean[i] as f64) as f32;
            running_var[i] = (mo * running_var[i] as f64 + (1.0 - mo) * var[i] as f64 * unbias) as f32;
        }
    }

    /// Backward through the activation and the normalization: `dy_dx` holds the gradient of
    /// `y` on entry and that of `x` on return; `y` is the forward output (for the activation
    /// mask).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(&self, x: &[f32], y: &[f32], scale: &[f32], mean: &[f32], invstd: &[f32], dy_dx: &mut [f32], dscale: &mut [f32], dbias: &mut [f32], threads: usize) {
        let c = self.c;
        assert!(x.len() == self.len() && y.len() == self.len() && dy_dx.len() == self.len(), "batchnorm backward: lengths");
        assert!(scale.len() == c && mean.len() == c && invstd.len() == c && dscale.len() == c && dbias.len() == c, "batchnorm backward: parameter lengths");
        let parts = self.parts(threads);
        let act = self.act;
        let g: &[f32] = dy_dx;
        let sums = map_parts(self.pixels, parts, |r| {
            let s = r.start * c..r.end * c;
            dispatch_grad_sums(&x[s.clone()], &y[s.clone()], &g[s], mean, invstd, act, c)
        });
        let (mut sg, mut sgx) = (vec![0.0f64; c], vec![0.0f64; c]);
        for (a, b) in sums {
            sg.iter_mut().zip(&a).for_each(|(s, v)| *s += v);
            sgx.iter_mut().zip(&b).for_each(|(s, v)| *s += v);
        }
        let m = self.pixels.max(1) as f64;
        // dx = k·g − k·mean(g) − x̂·k·mean(g·x̂) with k = scale·invstd, written as
        // dx = k·g + a·x + b per channel (x̂ expanded) so the second pass is one FMA chain.
        let (mut k, mut a, mut b) = (vec![0.0f32; c], vec![0.0f32; c], vec![0.0f32; c]);
        for i in 0..c {
            dscale[i] = sgx[i] as f32;
            dbias[i] = sg[i] as f32;
            let ki = scale[i] as f64 * invstd[i] as f64;
            let is = invstd[i] as f64;
            let coef = -ki * (sgx[i] / m) * is; // multiplies (x − mean)
            k[i] = ki as f32;
            a[i] = coef as f32;
            b[i] = (-ki * sg[i] / m - coef * mean[i] as f64) as f32;
        }
        let dp = SendPtr(dy_dx.as_mut_ptr());
        split_rows(self.pixels, parts, |r| {
            let s = r.start * c..r.end * c;
            // SAFETY: each part rewrites its own rows of dy_dx.
            let d = unsafe { std::slice::from_raw_parts_mut({ dp }.0.add(s.start), s.len()) };
            dispatch_dx(&x[s.clone()], &y[s], d, &k, &a, &b, act, c);
        });
    }
}

macro_rules! multiversion {
    ($name:ident, $generic:ident, ($($arg:ident : $ty:ty),*) -> $ret:ty) => {
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn v512($($arg: $ty),*) -> $ret { $generic($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v256($($arg: $ty),*) -> $ret { $generic($($arg),*) }
                match isa::current() {
                    // SAFETY: the ISA was checked as supported when chosen.
                    Isa::Avx512 => return unsafe { v512($($arg),*) },
                    Isa::Avx2Fma => return unsafe { v256($($arg),*) },
                    Isa::Portable => {}
                }
            }
            $generic($($arg),*)
        }
    };
}

multiversion!(dispatch_sums, sums, (x: &[f32], c: usize) -> (Vec<f64>, Vec<f64>));
multiversion!(dispatch_apply, apply, (x: &[f32], mul: &[f32], add: &[f32], act: Act, y: &mut [f32]) -> ());
multiversion!(dispatch_grad_sums, grad_sums, (x: &[f32], y: &[f32], g: &[f32], mean: &[f32], invstd: &[f32], act: Act, c: usize) -> (Vec<f64>, Vec<f64>));
multiversion!(dispatch_dx, dx_pass, (x: &[f32], y: &[f32], d: &mut [f32], k: &[f32], a: &[f32], b: &[f32], act: Act, c: usize) -> ());

/// Per-channel Σx and Σx² in f64. Rows are summed in f32 blocks of 16 first (short, so the
/// f32 rounding stays far below the f64 total's), then added in f64.
#[inline(always)]
fn sums(x: &[f32], c: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut s1, mut s2) = (vec![0.0f64; c], vec![0.0f64; c]);
    let (mut b1, mut b2) = (vec![0.0f32; c], vec![0.0f32; c]);
    for block in x.chunks(16 * c) {
        b1.fill(0.0);
        b2.fill(0.0);
        for row in block.chunks_exact(c) {
            for ((p, q), &v) in b1.iter_mut().zip(b2.iter_mut()).zip(row) {
                *p += v;
                *q += v * v;
            }
        }
        for i in 0..c {
            s1[i] += b1[i] as f64;
            s2[i] += b2[i] as f64;
        }
    }
    (s1, s2)
}

#[inline(always)]
fn apply(x: &[f32], mul: &[f32], add: &[f32], act: Act, y: &mut [f32]) {
    let c = mul.len();
    let (lo, hi) = act_bounds(act);
    for (yr, xr) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for i in 0..c {
            yr[i] = (xr[i] * mul[i] + add[i]).max(lo).min(hi);
        }
    }
}

/// The clamp bounds of an activation (±inf for none: max/min then pass values through).
pub(crate) fn act_bounds(act: Act) -> (f32, f32) {
    match act {
        Act::None => (f32::NEG_INFINITY, f32::INFINITY),
        Act::Relu => (0.0, f32::INFINITY),
        Act::Clip { min, max } => (min, max),
    }
}

#[inline(always)]
fn grad_sums(x: &[f32], y: &[f32], g: &[f32], mean: &[f32], invstd: &[f32], act: Act, c: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut sg, mut sgx) = (vec![0.0f64; c], vec![0.0f64; c]);
    let (mut b1, mut b2) = (vec![0.0f32; c], vec![0.0f32; c]);
    let (lo, hi) = act_bounds(act);
    let rows = x.len() / c.max(1);
    let mut r0 = 0;
    while r0 < rows {
        let r1 = (r0 + 16).min(rows);
        b1.fill(0.0);
        b2.fill(0.0);
        for r in r0..r1 {
            let (xr, yr, gr) = (&x[r * c..][..c], &y[r * c..][..c], &g[r * c..][..c]);
            for i in 0..c {
                let gi = if passes(yr[i], lo, hi) { gr[i] } else { 0.0 };
                b1[i] += gi;
                b2[i] += gi * ((xr[i] - mean[i]) * invstd[i]);
            }
        }
        for i in 0..c {
            sg[i] += b1[i] as f64;
            sgx[i] += b2[i] as f64;
        }
        r0 = r1;
    }
    (sg, sgx)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dx_pass(x: &[f32], y: &[f32], d: &mut [f32], k: &[f32], a: &[f32], b: &[f32], act: Act, c: usize) {
    let (lo, hi) = act_bounds(act);
    for ((dr, xr), yr) in d.chunks_exact_mut(c).zip(x.chunks_exact(c)).zip(y.chunks_exact(c)) {
        for i in 0..c {
            let gi = if passes(yr[i], lo, hi) { dr[i] } else { 0.0 };
            dr[i] = k[i] * gi + a[i] * xr[i] + b[i];
        }
    }
}
