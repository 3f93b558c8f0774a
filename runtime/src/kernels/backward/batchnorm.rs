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
//! `g = dy · act'(z)` with `z = x·mul + add` the pre-activation (recomputed, not saved),
//! `x̂ = (x − mean)·invstd`,
//! `dx = scale·invstd·(g − mean(g) − x̂·mean(g·x̂))`, `dscale = Σ g·x̂`, `dbias = Σ g`.

use super::super::isa::{self, Isa};
use super::super::threads::{split_rows, SendPtr};
use super::super::Act;
use super::activation::passes;

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

/// Rows per block of the batch-statistics sums (each block's f64 sums are made the same way
/// whatever the thread count, then added in block order).
const STAT_ROWS: usize = 256;

/// Channels per vector block of the elementwise loops (one AVX-512 register; two AVX2 ones).
const L: usize = 16;

#[derive(Clone, Copy)]
struct SendPtrF64(*mut f64);
// SAFETY: used only to hand disjoint blocks of one buffer to the parts of a split.
unsafe impl Send for SendPtrF64 {}
unsafe impl Sync for SendPtrF64 {}

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
        let (s1, s2) = self.channel_sums(parts, |rows, o1, o2| dispatch_sums(&x[rows.start * c..rows.end * c], c, o1, o2));
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
        }
        affine(mean, invstd, scale, bias, &mut mul, &mut add);
        let yp = SendPtr(y.as_mut_ptr());
        let act = self.act;
        split_rows(self.pixels, parts, |r| {
            // SAFETY: each part writes its own rows of y.
            let ys = unsafe { std::slice::from_raw_parts_mut({ yp }.0.add(r.start * c), r.len() * c) };
            dispatch_apply(&x[r.start * c..r.end * c], &mul, &add, act, ys);
        });
    }

    /// Two per-channel sums over all pixels, bit-identical for any thread count: `block` adds
    /// the sums of a range of at most [`STAT_ROWS`] rows into two f64 accumulators; every fixed
    /// block of rows gets its own, written by whichever part owns the block, and the blocks are
    /// then added in order.
    fn channel_sums(&self, parts: usize, block: impl Fn(std::ops::Range<usize>, &mut [f64], &mut [f64]) + Sync) -> (Vec<f64>, Vec<f64>) {
        let c = self.c;
        let blocks = self.pixels.div_ceil(STAT_ROWS).max(1);
        let mut partial = vec![0.0f64; blocks * 2 * c];
        let pp = SendPtrF64(partial.as_mut_ptr());
        split_rows(blocks, parts.min(blocks), |bs| {
            for bi in bs {
                // SAFETY: each block's 2c accumulators belong to the one part that owns the block.
                let out = unsafe { std::slice::from_raw_parts_mut({ pp }.0.add(bi * 2 * c), 2 * c) };
                let (o1, o2) = out.split_at_mut(c);
                block(bi * STAT_ROWS..((bi + 1) * STAT_ROWS).min(self.pixels), o1, o2);
            }
        });
        let (mut s1, mut s2) = (vec![0.0f64; c], vec![0.0f64; c]);
        for blk in partial.chunks_exact(2 * c) {
            s1.iter_mut().zip(&blk[..c]).for_each(|(s, v)| *s += v);
            s2.iter_mut().zip(&blk[c..]).for_each(|(s, v)| *s += v);
        }
        (s1, s2)
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
    /// `y` on entry and that of `x` on return. The activation's mask comes from the
    /// pre-activation `x·mul + add` recomputed exactly as the forward did (from the same `mean`,
    /// `invstd`, `scale` and `bias`), so the output `y` is not read: two tensor passes fewer.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(&self, x: &[f32], scale: &[f32], bias: &[f32], mean: &[f32], invstd: &[f32], dy_dx: &mut [f32], dscale: &mut [f32], dbias: &mut [f32], threads: usize) {
        let c = self.c;
        assert!(x.len() == self.len() && dy_dx.len() == self.len(), "batchnorm backward: lengths");
        assert!(scale.len() == c && bias.len() == c && mean.len() == c && invstd.len() == c && dscale.len() == c && dbias.len() == c, "batchnorm backward: parameter lengths");
        let parts = self.parts(threads);
        let act = self.act;
        let (mut mul, mut add) = (vec![0.0f32; c], vec![0.0f32; c]);
        affine(mean, invstd, scale, bias, &mut mul, &mut add);
        let g: &[f32] = dy_dx;
        let (sg, sgx) = self.channel_sums(parts, |rows, o1, o2| {
            let s = rows.start * c..rows.end * c;
            dispatch_grad_sums(&x[s.clone()], &g[s], &mul, &add, mean, invstd, act, c, o1, o2)
        });
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
            dispatch_dx(&x[s], d, &mul, &add, &k, &a, &b, act, c);
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

multiversion!(dispatch_sums, sums, (x: &[f32], c: usize, s1: &mut [f64], s2: &mut [f64]) -> ());
multiversion!(dispatch_apply, apply, (x: &[f32], mul: &[f32], add: &[f32], act: Act, y: &mut [f32]) -> ());
multiversion!(dispatch_grad_sums, grad_sums, (x: &[f32], g: &[f32], mul: &[f32], add: &[f32], mean: &[f32], invstd: &[f32], act: Act, c: usize, sg: &mut [f64], sgx: &mut [f64]) -> ());
multiversion!(dispatch_dx, dx_pass, (x: &[f32], d: &mut [f32], mul: &[f32], add: &[f32], k: &[f32], a: &[f32], b: &[f32], act: Act, c: usize) -> ());

/// The forward's per-channel affine map `x·mul + add` (before the activation), from the
/// f32 statistics so that the backward can recompute it bit for bit.
fn affine(mean: &[f32], invstd: &[f32], scale: &[f32], bias: &[f32], mul: &mut [f32], add: &mut [f32]) {
    for i in 0..mean.len() {
        let k = invstd[i] as f64 * scale[i] as f64;
        mul[i] = k as f32;
        add[i] = (bias[i] as f64 - mean[i] as f64 * k) as f32;
    }
}

// The loops below go over each row in blocks of `L` channels written as fixed-length array
// operations (one vector instruction each once inlined into the ISA wrappers), then the
// `c % L` tail channels one by one. (A plain loop over `c` was vectorized 64 channels at a
// time, so MobileNet's 32- and 64-channel rows ran mostly in its scalar remainder loop.)

#[inline(always)]
fn lanes(v: &[f32], i: usize) -> &[f32; L] {
    v[i..i + L].try_into().expect("L lanes")
}

#[inline(always)]
fn lanes_mut(v: &mut [f32], i: usize) -> &mut [f32; L] {
    (&mut v[i..i + L]).try_into().expect("L lanes")
}

/// Adds the per-channel Σx and Σx² of the rows of `x` to `s1`, `s2` (f64). Rows are summed in
/// f32 groups of 16 first (short, so the f32 rounding stays far below the f64 total's).
#[inline(always)]
fn sums(x: &[f32], c: usize, s1: &mut [f64], s2: &mut [f64]) {
    let (mut b1, mut b2) = (vec![0.0f32; c], vec![0.0f32; c]);
    for group in x.chunks(16 * c) {
        b1.fill(0.0);
        b2.fill(0.0);
        for row in group.chunks_exact(c) {
            let full = c / L * L;
            for i in (0..full).step_by(L) {
                // By value: the accumulators as two vectors (through the slices, LLVM kept
                // them scalar).
                let (mut p, mut q, v) = (*lanes(&b1, i), *lanes(&b2, i), *lanes(row, i));
                for j in 0..L {
                    p[j] += v[j];
                    q[j] += v[j] * v[j];
                }
                (*lanes_mut(&mut b1, i), *lanes_mut(&mut b2, i)) = (p, q);
            }
            for i in full..c {
                b1[i] += row[i];
                b2[i] += row[i] * row[i];
            }
        }
        for i in 0..c {
            s1[i] += b1[i] as f64;
            s2[i] += b2[i] as f64;
        }
    }
}

#[inline(always)]
fn apply(x: &[f32], mul: &[f32], add: &[f32], act: Act, y: &mut [f32]) {
    let c = mul.len();
    let (lo, hi) = act_bounds(act);
    for (yr, xr) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        let full = c / L * L;
        for i in (0..full).step_by(L) {
            let (yv, xv, mv, av) = (lanes_mut(yr, i), lanes(xr, i), lanes(mul, i), lanes(add, i));
            for j in 0..L {
                yv[j] = (xv[j] * mv[j] + av[j]).max(lo).min(hi);
            }
        }
        for i in full..c {
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

/// Adds the per-channel Σg and Σg·x̂ (g masked by the activation of `x·mul + add`) of the rows
/// to `sg`, `sgx`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn grad_sums(x: &[f32], g: &[f32], mul: &[f32], add: &[f32], mean: &[f32], invstd: &[f32], act: Act, c: usize, sg: &mut [f64], sgx: &mut [f64]) {
    let (mut b1, mut b2) = (vec![0.0f32; c], vec![0.0f32; c]);
    let (lo, hi) = act_bounds(act);
    let rows = x.len() / c.max(1);
    let mut r0 = 0;
    while r0 < rows {
        let r1 = (r0 + 16).min(rows);
        b1.fill(0.0);
        b2.fill(0.0);
        for r in r0..r1 {
            let (xr, gr) = (&x[r * c..][..c], &g[r * c..][..c]);
            let full = c / L * L;
            for i in (0..full).step_by(L) {
                let (mut p, mut q) = (*lanes(&b1, i), *lanes(&b2, i));
                let (xv, gv, mv, sv) = (lanes(xr, i), lanes(gr, i), lanes(mean, i), lanes(invstd, i));
                let (fm, fa) = (lanes(mul, i), lanes(add, i));
                for j in 0..L {
                    let gi = if passes(xv[j] * fm[j] + fa[j], lo, hi) { gv[j] } else { 0.0 };
                    p[j] += gi;
                    q[j] += gi * ((xv[j] - mv[j]) * sv[j]);
                }
                (*lanes_mut(&mut b1, i), *lanes_mut(&mut b2, i)) = (p, q);
            }
            for i in full..c {
                let gi = if passes(xr[i] * mul[i] + add[i], lo, hi) { gr[i] } else { 0.0 };
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
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dx_pass(x: &[f32], d: &mut [f32], mul: &[f32], add: &[f32], k: &[f32], a: &[f32], b: &[f32], act: Act, c: usize) {
    let (lo, hi) = act_bounds(act);
    for (dr, xr) in d.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        let full = c / L * L;
        for i in (0..full).step_by(L) {
            let dv = lanes_mut(dr, i);
            let (xv, kv, av, bv) = (lanes(xr, i), lanes(k, i), lanes(a, i), lanes(b, i));
            let (fm, fa) = (lanes(mul, i), lanes(add, i));
            for j in 0..L {
                let gi = if passes(xv[j] * fm[j] + fa[j], lo, hi) { dv[j] } else { 0.0 };
                dv[j] = kv[j] * gi + av[j] * xv[j] + bv[j];
            }
        }
        for i in full..c {
            let gi = if passes(xr[i] * mul[i] + add[i], lo, hi) { dr[i] } else { 0.0 };
            dr[i] = k[i] * gi + a[i] * xr[i] + b[i];
        }
    }
}
