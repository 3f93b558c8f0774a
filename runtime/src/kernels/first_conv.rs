//! Direct convolution for few input channels (a network's first conv: 224×224×3 → 32, 3×3,
//! stride 2), vectorized over output channels.
//!
//! With 3 input channels, im2col copies 27 floats per output pixel in 3-float pieces and the
//! matrix product that follows has k = 27: both are overhead-bound (~12 GFLOP/s). Here, per
//! output row, the `kh` input rows it reads are copied once into a zero-padded strip (so the hot
//! loop has no bounds tests), and then a register tile of `P` output pixels × `V` panels of 16
//! output channels sums over the taps: in NHWC, the `kw·c_in` values of one kernel row are
//! contiguous in the strip, and the packed weights (the general path's panels, tap order
//! (ky, kx, ci)) are read one 16-wide row per tap.
//!
//! The same kernel reads an NCHW input directly (a model's image input, which otherwise goes
//! through a transpose of its own first): the strip then holds the `kh` rows of each channel
//! plane (`[c_in, kh, wp]`, filled by whole-row copies), and the tile reads its taps through a
//! table of strip offsets instead of consecutive floats.
//!
//! The accumulation order (bias, then taps in (ky, kx, ci) order) is the same on every ISA, for
//! any thread count and for both input layouts, so the NCHW path is bit-identical to a
//! transpose followed by the NHWC path.

use std::ops::Range;

use super::conv::Conv2d;
use super::gemm::NR;
use super::isa::{self, Isa};
use super::threads::{split_rows_balanced, SendPtr, MIN_SPLIT_MULT_ADDS};
use super::{ensure, Act, KernelError};

/// Floats of the per-thread padded strip (on the stack).
const STRIP_FLOATS: usize = 12 * 1024;
/// Largest patch (kh·kw·c_in) this path takes: beyond it im2col + the packed product wins.
const MAX_PATCH: usize = 64;

/// Whether `cv` runs on this path: one group, no dilation, a small patch, and a strip that fits.
pub(crate) const fn applies(cv: &Conv2d) -> bool {
    let wp = cv.w + cv.pad_left + cv.pad_right;
    cv.groups == 1
        && cv.dh == 1
        && cv.dw == 1
        && cv.kh * cv.kw * cv.c_in <= MAX_PATCH
        && cv.kh * wp * cv.c_in <= STRIP_FLOATS
        && !(cv.kh == 1 && cv.kw == 1)
}

impl Conv2d {
    /// Whether [`Conv2d::run_nchw_threads`] takes this conv (a first conv: one group, no
    /// dilation, a patch of at most 64 taps·channels).
    pub const fn reads_nchw(&self) -> bool {
        applies(self)
    }

    /// Length of the NCHW input [`Conv2d::run_nchw_threads`] reads (the same as NHWC).
    pub const fn nchw_input_len(&self) -> usize {
        self.input_len()
    }

    /// Checks the parameters and that the direct kernel takes them.
    pub fn check_nchw(&self) -> Result<(), KernelError> {
        self.check()?;
        ensure!(applies(self), "conv: only a small-patch conv (one group, no dilation, kh·kw·c_in ≤ {MAX_PATCH}) reads NCHW input ({self:?})");
        Ok(())
    }

    /// Runs the conv on an NCHW input (`[n, c_in, h, w]`), writing the usual NHWC output, with
    /// the output rows split over `threads` threads. Bit-identical to transposing the input to
    /// NHWC and calling [`Conv2d::run_threads`]. Weights as [`Conv2d::pack_weights`] packs them.
    pub fn run_nchw_threads(&self, input: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32], threads: usize) {
        assert!(self.check_nchw().is_ok(), "conv (NCHW input): {:?}", self.check_nchw());
        assert_eq!(input.len(), self.input_len(), "conv: input length");
        assert_eq!(packed.len(), self.packed_weights_len(), "conv: packed weight length");
        assert_eq!(bias.len(), self.c_out, "conv: bias length");
        assert_eq!(out.len(), self.output_len(), "conv: output length");
        let op = SendPtr(out.as_mut_ptr());
        let threads = if self.mult_adds() < MIN_SPLIT_MULT_ADDS { 1 } else { threads };
        // Chunks of a few rows, balanced across threads (the weights are small: no reuse lost).
        split_rows_balanced(self.n * self.oh, 8 * threads, threads, |r| {
            // SAFETY: lengths and `applies` checked above; chunks write disjoint output rows.
            unsafe { run_rows_layout::<true>(self, input, packed, bias, { op }.0, r) }
        });
    }
}

/// Computes output rows `rows` (of the `n·oh` NHWC output rows) from an NHWC input. `packed`
/// is in the general path's layout (one group).
///
/// # Safety
/// Slices must have the lengths `cv` implies; `out` points at the whole output; `applies(cv)`.
pub(crate) unsafe fn run_rows(cv: &Conv2d, input: &[f32], packed: &[f32], bias: &[f32], out: *mut f32, rows: Range<usize>) {
    run_rows_layout::<false>(cv, input, packed, bias, out, rows)
}

/// [`run_rows`] from an NHWC input, or from an NCHW one when `NCHW`.
unsafe fn run_rows_layout<const NCHW: bool>(cv: &Conv2d, input: &[f32], packed: &[f32], bias: &[f32], out: *mut f32, rows: Range<usize>) {
    let c = cv.c_in;
    let wp = cv.w + cv.pad_left + cv.pad_right;
    let mut strip = [0.0f32; STRIP_FLOATS];
    // Strip offsets of the taps of one kernel row ((kx, ci) order), of output pixel steps and
    // of kernel rows: NHWC strip `[kh, wp, c]`, NCHW strip `[c, kh, wp]`.
    let mut taps = [0usize; MAX_PATCH];
    for kx in 0..cv.kw {
        for ci in 0..c {
            taps[kx * c + ci] = if NCHW { ci * cv.kh * wp + kx } else { kx * c + ci };
        }
    }
    let (step, ky_stride) = if NCHW { (cv.sw, wp) } else { (cv.sw * c, wp * c) };
    let isa = isa::current();
    for row in rows {
        let (b, oy) = (row / cv.oh, row % cv.oh);
        for ky in 0..cv.kh {
            let iy = (oy * cv.sh + ky) as isize - cv.pad_top as isize;
            let inside = iy >= 0 && (iy as usize) < cv.h;
            if NCHW {
                for ci in 0..c {
                    let dst = &mut strip[(ci * cv.kh + ky) * wp..][..wp];
                    if inside {
                        let src = &input[((b * c + ci) * cv.h + iy as usize) * cv.w..][..cv.w];
                        dst[..cv.pad_left].fill(0.0);
                        dst[cv.pad_left..cv.pad_left + cv.w].copy_from_slice(src);
                        dst[cv.pad_left + cv.w..].fill(0.0);
                    } else {
                        dst.fill(0.0);
                    }
                }
            } else {
                let ws = wp * c;
                let dst = &mut strip[ky * ws..(ky + 1) * ws];
                if inside {
                    let src = &input[((b * cv.h + iy as usize) * cv.w) * c..][..cv.w * c];
                    dst[..cv.pad_left * c].fill(0.0);
                    dst[cv.pad_left * c..(cv.pad_left + cv.w) * c].copy_from_slice(src);
                    dst[(cv.pad_left + cv.w) * c..].fill(0.0);
                } else {
                    dst.fill(0.0);
                }
            }
        }
        let out_row = out.add(row * cv.ow * cv.c_out);
        let k = Kern { cv, strip: strip.as_ptr(), taps: &taps, step, ky_stride, w: packed.as_ptr(), bias: bias.as_ptr(), out: out_row };
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86::row_avx512(&k),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => generic::row_avx2(&k),
            _ => generic::row::<2, false>(&k),
        }
    }
}

/// One output row's operands.
struct Kern<'a> {
    cv: &'a Conv2d,
    /// The zero-padded strip; padded column 0 of kernel row 0 of channel 0 at offset 0.
    strip: *const f32,
    /// Strip offsets of tap `kx·c_in + ci` of a kernel row.
    taps: &'a [usize; MAX_PATCH],
    /// Strip offset between output pixels and between kernel rows.
    step: usize,
    ky_stride: usize,
    /// Packed weights: panels of `[kh·kw·c_in, 16]`.
    w: *const f32,
    bias: *const f32,
    /// The output row `[ow, c_out]`.
    out: *mut f32,
}

/// Clamp bounds of an activation (±inf for none).
#[inline(always)]
fn bounds(act: Act) -> (f32, f32) {
    match act {
        Act::None => (f32::NEG_INFINITY, f32::INFINITY),
        Act::Relu => (0.0, f32::INFINITY),
        Act::Clip { min, max } => (min, max),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{bounds, Kern, NR};

    /// Output pixels per register tile (× up to 2 panels: 16 zmm accumulators).
    const P: usize = 8;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row_avx512(k: &Kern) {
        let cv = k.cv;
        let panels = cv.c_out.div_ceil(NR);
        let mut p0 = 0;
        while p0 < panels {
            let v = (panels - p0).min(2);
            let mut ox = 0;
            while ox < cv.ow {
                let n = (cv.ow - ox).min(P);
                macro_rules! go {
                    ($($n:literal)*) => {
                        match (n, v) {
                            $(($n, 2) => tile::<$n, 2>(k, ox, p0), ($n, _) => tile::<$n, 1>(k, ox, p0),)*
                            _ => unreachable!(),
                        }
                    };
                }
                go!(1 2 3 4 5 6 7 8);
                ox += n;
            }
            p0 += v;
        }
    }

    /// Pixels `ox..ox+N` × panels `p0..p0+V`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const N: usize, const V: usize>(k: &Kern, ox: usize, p0: usize) {
        let cv = k.cv;
        let kwc = cv.kw * cv.c_in;
        let kg = cv.kh * kwc;
        let step = k.step;
        let mut masks = [0xffffu16; V];
        for (v, m) in masks.iter_mut().enumerate() {
            let cols = cv.c_out.saturating_sub((p0 + v) * NR).min(NR);
            *m = ((1u32 << cols) - 1) as u16;
        }
        let mut acc = [[_mm512_setzero_ps(); V]; N];
        for v in 0..V {
            let b = _mm512_maskz_loadu_ps(masks[v], k.bias.add((p0 + v) * NR));
            for a in acc.iter_mut() {
                a[v] = b;
            }
        }
        let w0 = k.w.add(p0 * kg * NR);
        for ky in 0..cv.kh {
            let src = k.strip.add(ky * k.ky_stride + ox * step);
            let wk = w0.add(ky * kwc * NR);
            for (j, &tap) in k.taps[..kwc].iter().enumerate() {
                let mut bv = [_mm512_setzero_ps(); V];
                for (v, b) in bv.iter_mut().enumerate() {
                    *b = _mm512_loadu_ps(wk.add(v * kg * NR + j * NR));
                }
                for p in 0..N {
                    let a = _mm512_set1_ps(*src.add(p * step + tap));
                    for v in 0..V {
                        acc[p][v] = _mm512_fmadd_ps(a, bv[v], acc[p][v]);
                    }
                }
            }
        }
        let (lo, hi) = bounds(cv.act);
        let (lo, hi) = (_mm512_set1_ps(lo), _mm512_set1_ps(hi));
        let clamp = cv.act != crate::kernels::Act::None;
        for (p, a) in acc.iter().enumerate() {
            for v in 0..V {
                let x = if clamp { _mm512_min_ps(_mm512_max_ps(a[v], lo), hi) } else { a[v] };
                _mm512_mask_storeu_ps(k.out.add((ox + p) * cv.c_out + (p0 + v) * NR), masks[v], x);
            }
        }
    }
}

/// The same tile over 16-wide arrays, for AVX2+FMA and the portable baseline (LLVM vectorizes
/// the lanes for the enabled features).
mod generic {
    use super::{bounds, Kern, NR};

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn row_avx2(k: &Kern) {
        // Separate multiply and add: `f32::mul_add` here compiled to a libm call (20× slower).
        row::<4, false>(k)
    }

    /// Tiles of up to `P` pixels × one panel; `FMA`: fused multiply-add.
    #[inline(always)]
    pub(super) unsafe fn row<const P: usize, const FMA: bool>(k: &Kern) {
        let cv = k.cv;
        let panels = cv.c_out.div_ceil(NR);
        for p0 in 0..panels {
            let mut ox = 0;
            while ox < cv.ow {
                let n = (cv.ow - ox).min(P);
                if n == P {
                    tile::<P, FMA>(k, ox, p0);
                } else {
                    for i in 0..n {
                        tile::<1, FMA>(k, ox + i, p0);
                    }
                }
                ox += n;
            }
        }
    }

    #[inline(always)]
    unsafe fn tile<const N: usize, const FMA: bool>(k: &Kern, ox: usize, p0: usize) {
        let cv = k.cv;
        let kwc = cv.kw * cv.c_in;
        let kg = cv.kh * kwc;
        let step = k.step;
        let cols = (cv.c_out - p0 * NR).min(NR);
        let mut bias = [0.0f32; NR];
        for (j, b) in bias.iter_mut().enumerate().take(cols) {
            *b = *k.bias.add(p0 * NR + j);
        }
        let mut acc = [bias; N];
        let w0 = k.w.add(p0 * kg * NR);
        for ky in 0..cv.kh {
            let src = k.strip.add(ky * k.ky_stride + ox * step);
            for (j, &tap) in k.taps[..kwc].iter().enumerate() {
                let bv = &*(w0.add((ky * kwc + j) * NR) as *const [f32; NR]);
                for (p, a) in acc.iter_mut().enumerate() {
                    let x = *src.add(p * step + tap);
                    for l in 0..NR {
                        a[l] = if FMA { x.mul_add(bv[l], a[l]) } else { x * bv[l] + a[l] };
                    }
                }
            }
        }
        let (lo, hi) = bounds(cv.act);
        let clamp = cv.act != crate::kernels::Act::None;
        for (p, a) in acc.iter().enumerate() {
            let dst = k.out.add((ox + p) * cv.c_out + p0 * NR);
            for (l, &x) in a.iter().enumerate().take(cols) {
                *dst.add(l) = if clamp { x.max(lo).min(hi) } else { x };
            }
        }
    }
}
