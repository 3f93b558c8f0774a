//! AVX-512 depthwise 3×3 (dilation 1, column stride 1 or 2) over NHWC, the hot path of
//! MobileNet's depthwise layers.
//!
//! Each output row goes in register blocks of `N` output columns × 16 channels: for each kernel
//! row the `N + 2` (stride 1) or `2N + 1` (stride 2) input columns the block needs are loaded
//! once and reused by the three kx taps, so a block of 12 (stride 1) costs 51 loads for 108
//! FMAs instead of 108 + 108. Blocks of 12 use 29 of the 32 zmm registers (12 sums, 14
//! columns, 3 taps); they measured 2% faster on the whole 1.0-224 than blocks of 8 (fewer
//! weight loads and block set-ups per pixel); at stride 2, blocks of 8 (17 columns) measured
//! the same as blocks of 6. Channels are the inner loop (contiguous in NHWC, no cache-set
//! conflicts at 512-1024 channels), with the last partial 16 handled by masks, not by a scalar
//! tail. The blocks at the two ends of a row (some kx tap outside the image) are separate
//! instantiations that skip those taps, chosen at compile time for the usual one column off
//! an end (a 14-wide row is two such blocks; testing each tap at run time cost 8-19% of the
//! 28×28 to 7×7 layers' depthwise time); kernel rows outside the image are skipped per output
//! row, so the interior loop never tests bounds.
//!
//! Summation order per output value: bias, then taps in (ky, kx) order, on every pixel kind.

use std::arch::x86_64::*;
use std::ops::Range;

use super::conv::Conv2d;
use super::Act;

/// Whether `cv` (a depthwise conv) runs here.
pub(crate) const fn applies(cv: &Conv2d) -> bool {
    cv.kh == 3 && cv.kw == 3 && cv.dh == 1 && cv.dw == 1 && (cv.sw == 1 || cv.sw == 2)
}

/// Output rows `rows` of the `n·oh` rows; `out` points at output row `row0`. Channel `ch` of
/// output pixel `p` (counted from `out`) goes to `p·px_stride + (ch / 256)·chunk_stride +
/// ch % 256`: a plain NHWC tensor is `px_stride = c_out`, `chunk_stride = 256`; the fused
/// kernel lays its band out as the matrix product's copied A tiles (see `dwpw`).
///
/// # Safety
/// AVX-512F available; slices of the lengths `cv` implies; `out` covers every address above
/// for rows `row0..rows.end`; `applies(cv)`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn run_rows(cv: &Conv2d, input: &[f32], w: &[f32], bias: &[f32], out: *mut f32, px_stride: usize, chunk_stride: usize, row0: usize, rows: Range<usize>) {
    let r = Row { cv, input: input.as_ptr(), w: w.as_ptr(), bias: bias.as_ptr(), px_stride, chunk_stride };
    for row in rows {
        let (b, oy) = (row / cv.oh, row % cv.oh);
        let iy0 = (oy * cv.sh) as isize - cv.pad_top as isize;
        let ky_lo = (-iy0).clamp(0, 3) as usize;
        let ky_hi = (cv.h as isize - iy0).clamp(ky_lo as isize, 3) as usize;
        let out_row = out.add((row - row0) * cv.ow * px_stride);
        // The input rows the next output row adds (one at stride 1, two at stride 2), still
        // inside this image: the blocks prefetch them into L2, because this layer's input was
        // written by the previous layer and has usually left L2 by now.
        let next = (iy0 + 3).max(0) as usize..((iy0 + 3 + cv.sh as isize).max(0) as usize).min(cv.h);
        if cv.sw == 1 {
            r.row_blocks::<1, 12>(b, iy0, ky_lo..ky_hi, next, out_row);
        } else {
            r.row_blocks::<2, 6>(b, iy0, ky_lo..ky_hi, next, out_row);
        }
    }
}

struct Row<'a> {
    cv: &'a Conv2d,
    input: *const f32,
    /// Packed `[3, 3, c]`.
    w: *const f32,
    bias: *const f32,
    /// Floats between output pixels, and between 256-channel chunks (see [`run_rows`]).
    px_stride: usize,
    chunk_stride: usize,
}

/// `x`, in a register the optimizer cannot see through, so it neither hoists what is computed
/// from it out of the channel loop nor folds it into constants. (`std::hint::black_box` does
/// the same through a stack slot: a store and a reload on each use, four per channel step
/// (three column strides and the store stride); this register move measured 0.5% faster on
/// the whole 1.0-224, 0.990-1.003 over five runs.)
#[inline(always)]
fn opaque(x: usize) -> usize {
    let y: usize;
    // SAFETY: a register move.
    unsafe { std::arch::asm!("mov {0}, {1}", out(reg) y, in(reg) x, options(nomem, nostack, preserves_flags)) };
    y
}

/// Which columns of a register block lie outside the input row (see [`Row::block`]).
const CUT_NONE: u8 = 0;
const CUT_LEFT: u8 = 1;
const CUT_RIGHT: u8 = 2;
const CUT_BOTH: u8 = 3;
/// More than one column off an end (padding over one): tested per tap.
const CUT_TESTED: u8 = 4;

/// The lane mask of the 16 channels from `c0` (fewer at the end).
#[inline(always)]
fn mask(c: usize, c0: usize) -> u16 {
    let n = (c - c0).min(16);
    ((1u32 << n) - 1) as u16
}

impl Row<'_> {
    #[inline(always)]
    unsafe fn epilogue(&self, x: __m512) -> __m512 {
        match self.cv.act {
            Act::None => x,
            Act::Relu => _mm512_max_ps(x, _mm512_setzero_ps()),
            Act::Clip { min, max } => _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(min)), _mm512_set1_ps(max)),
        }
    }

    /// Pointer to input pixel (`iy`, `ix`) of image `b` (both inside the image).
    #[inline(always)]
    unsafe fn at(&self, b: usize, iy: usize, ix: usize) -> *const f32 {
        self.input.add(((b * self.cv.h + iy) * self.cv.w + ix) * self.cv.c_in)
    }

    /// A whole output row in blocks of `N` pixels; the blocks at the ends skip the taps that
    /// fall outside the row.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn row_blocks<const SW: usize, const N: usize>(&self, b: usize, iy0: isize, kys: Range<usize>, next: Range<usize>, out_row: *mut f32) {
        let cv = self.cv;
        // The partial block first, so that the rest are full blocks.
        let mut n = (cv.ow + N - 1) % N + 1;
        let mut ox = 0;
        while ox < cv.ow {
            let ix0 = (ox * SW) as isize - cv.pad_left as isize;
            // Columns of the block outside the row, on the left and on the right: with the usual
            // padding of one, at most one each, a case compiled without any test per tap.
            let left = (-ix0).max(0);
            let right = (ix0 + ((n - 1) * SW + 3) as isize - cv.w as isize).max(0);
            let cut = match (left, right) {
                (0, 0) => CUT_NONE,
                (1, 0) => CUT_LEFT,
                (0, 1) => CUT_RIGHT,
                (1, 1) => CUT_BOTH,
                _ => CUT_TESTED,
            };
            macro_rules! go {
                ($($n:literal)*) => {
                    match (n, cut) {
                        $(
                            ($n, CUT_NONE) => self.block::<SW, $n, CUT_NONE>(b, iy0, kys.clone(), next.clone(), ix0, ox, out_row),
                            ($n, CUT_LEFT) => self.block::<SW, $n, CUT_LEFT>(b, iy0, kys.clone(), next.clone(), ix0, ox, out_row),
                            ($n, CUT_RIGHT) => self.block::<SW, $n, CUT_RIGHT>(b, iy0, kys.clone(), next.clone(), ix0, ox, out_row),
                            ($n, CUT_BOTH) => self.block::<SW, $n, CUT_BOTH>(b, iy0, kys.clone(), next.clone(), ix0, ox, out_row),
                            ($n, _) => self.block::<SW, $n, CUT_TESTED>(b, iy0, kys.clone(), next.clone(), ix0, ox, out_row),
                        )*
                        _ => unreachable!(),
                    }
                };
            }
            go!(1 2 3 4 5 6 7 8 9 10 11 12);
            ox += n;
            n = N;
        }
    }

    /// `N` output columns from `ox` (input columns from `ix0`, which may lie left of the row),
    /// all channels. Taps on columns outside the row are skipped (padding zeros would add
    /// nothing): which columns those are is known at compile time (`CUT`), except for
    /// [`CUT_TESTED`], which tests each tap.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn block<const SW: usize, const N: usize, const CUT: u8>(&self, b: usize, iy0: isize, kys: Range<usize>, next: Range<usize>, ix0: isize, ox: usize, out_row: *mut f32) {
        let cv = self.cv;
        let c = cv.c_in;
        let ncols = (N - 1) * SW + 3;
        // Columns i of the block inside the row: i_lo..i_hi.
        let (i_lo, i_hi) = match CUT {
            CUT_NONE => (0, ncols),
            CUT_LEFT => (1, ncols),
            CUT_RIGHT => (0, ncols - 1),
            CUT_BOTH => (1, ncols - 1),
            _ => ((-ix0).max(0) as usize, (cv.w as isize - ix0).clamp(0, ncols as isize) as usize),
        };
        let inside = |i: usize| i >= i_lo && i < i_hi;
        // Everything that does not change with the channel: the three input rows (at the block's
        // first column; rows outside the image are never read) and the rows to prefetch.
        let row_at = |iy: usize| self.at(b, iy, 0).wrapping_offset(ix0 * c as isize);
        let mut rows = [std::ptr::null(); 3];
        for ky in kys.clone() {
            rows[ky] = row_at((iy0 + ky as isize) as usize);
        }
        let (ky_lo, ky_hi) = (kys.start, kys.end);
        let pf = [next.clone().next().map(row_at), next.clone().nth(1).map(row_at)];
        let mut c0 = 0;
        while c0 < c {
            let m = mask(c, c0);
            // The block's part of each next row is one contiguous run of `N·SW` pixels × `c`
            // channels: each channel step prefetches the next `N·SW` lines of it, at constant
            // offsets from one pointer (over the channel loop, the whole run).
            for src in pf.iter().flatten() {
                let src = src.wrapping_add(c0 * N * SW) as *const i8;
                for i in 0..N * SW {
                    _mm_prefetch::<_MM_HINT_T1>(src.wrapping_add(i * 64));
                }
            }
            let bv = _mm512_maskz_loadu_ps(m, self.bias.add(c0));
            let mut acc = [bv; N];
            // Unrolled over the three kernel rows; the test skips rows outside the image.
            for (ky, row) in rows.iter().enumerate() {
                if ky < ky_lo || ky >= ky_hi {
                    continue;
                }
                let src = row.add(c0);
                // The column stride, hidden from the optimizer, so that it forms the column
                // addresses here (one add each) instead of hoisting all 42 of a block out of the
                // channel loop, which it then spilled and reloaded for every 16 channels. 3-13%
                // faster depthwise layers (alone), 1% on the whole 1.0-224.
                let cstep = opaque(c);
                // Sized for the widest block instantiated (12 columns at stride 2, never run:
                // `row_blocks` at stride 2 takes blocks of at most 6); only `ncols` are used.
                let mut col = [_mm512_setzero_ps(); 25];
                for (i, x) in col.iter_mut().enumerate().take(ncols) {
                    if inside(i) {
                        *x = _mm512_maskz_loadu_ps(m, src.wrapping_add(i * cstep));
                    }
                }
                let wk = self.w.add(ky * 3 * c + c0);
                let k = [_mm512_maskz_loadu_ps(m, wk), _mm512_maskz_loadu_ps(m, wk.add(c)), _mm512_maskz_loadu_ps(m, wk.add(2 * c))];
                for kx in 0..3 {
                    for p in 0..N {
                        if inside(p * SW + kx) {
                            acc[p] = _mm512_fmadd_ps(col[p * SW + kx], k[kx], acc[p]);
                        }
                    }
                }
            }
            let dst = out_row.add((c0 >> 8) * self.chunk_stride + (c0 & 255)).add(ox * self.px_stride);
            // Hidden like the column stride: 12 store addresses hoisted out of the channel loop
            // would be spilled too (0.4-0.8% on the whole 1.0-224).
            let ps = opaque(self.px_stride);
            for (p, a) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(dst.add(p * ps), m, self.epilogue(*a));
            }
            c0 += 16;
        }
    }
}
