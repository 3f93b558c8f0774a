//! AVX-512 depthwise 3×3 (dilation 1, column stride 1 or 2) over NHWC, the hot path of
//! MobileNet's depthwise layers.
//!
//! Per output row, interior pixels go in register blocks of `N` output columns × 16 channels:
//! for each kernel row the `N + 2` (stride 1) or `2N + 1` (stride 2) input columns the block
//! needs are loaded once and reused by the three kx taps, so a block of 8 costs 39 loads for
//! 72 FMAs instead of 72 + 72. Channels are the inner loop (contiguous in NHWC, no cache-set
//! conflicts at 512-1024 channels), with the last partial 16 handled by masks, not by a scalar
//! tail. Border pixels (some kx tap outside the image) run the same sums one pixel at a time
//! over the taps inside; kernel rows outside the image are skipped per output row, so the hot
//! loop never tests bounds.
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

/// Output rows `rows` of the `n·oh` rows; `out` points at output row `row0`.
///
/// # Safety
/// AVX-512F available; slices of the lengths `cv` implies; `out` covers rows
/// `row0..rows.end`; `applies(cv)`.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn run_rows(cv: &Conv2d, input: &[f32], w: &[f32], bias: &[f32], out: *mut f32, row0: usize, rows: Range<usize>) {
    // Interior columns: all three kx taps inside the row.
    let ox_lo = cv.pad_left.div_ceil(cv.sw).min(cv.ow);
    let ox_hi = if cv.w + cv.pad_left >= 3 { ((cv.w + cv.pad_left - 3) / cv.sw + 1).min(cv.ow) } else { 0 };
    let ox_hi = ox_hi.max(ox_lo);
    let r = Row { cv, input: input.as_ptr(), w: w.as_ptr(), bias: bias.as_ptr() };
    for row in rows {
        let (b, oy) = (row / cv.oh, row % cv.oh);
        let iy0 = (oy * cv.sh) as isize - cv.pad_top as isize;
        let ky_lo = (-iy0).clamp(0, 3) as usize;
        let ky_hi = (cv.h as isize - iy0).clamp(ky_lo as isize, 3) as usize;
        let out_row = out.add((row - row0) * cv.ow * cv.c_in);
        for ox in (0..ox_lo).chain(ox_hi..cv.ow) {
            r.border(b, iy0, ky_lo..ky_hi, ox, out_row);
        }
        // The input rows the next output row adds (one at stride 1, two at stride 2), still
        // inside this image: the interior blocks prefetch them into L2, because this layer's
        // input was written by the previous layer and has usually left L2 by now.
        let next = (iy0 + 3).max(0) as usize..((iy0 + 3 + cv.sh as isize).max(0) as usize).min(cv.h);
        if cv.sw == 1 {
            r.interior::<1, 8>(b, iy0, ky_lo..ky_hi, next, ox_lo..ox_hi, out_row);
        } else {
            r.interior::<2, 6>(b, iy0, ky_lo..ky_hi, next, ox_lo..ox_hi, out_row);
        }
    }
}

struct Row<'a> {
    cv: &'a Conv2d,
    input: *const f32,
    /// Packed `[3, 3, c]`.
    w: *const f32,
    bias: *const f32,
}

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

    /// One border pixel: taps with ky in `kys` and kx inside the row.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn border(&self, b: usize, iy0: isize, kys: Range<usize>, ox: usize, out_row: *mut f32) {
        let cv = self.cv;
        let c = cv.c_in;
        let ix0 = (ox * cv.sw) as isize - cv.pad_left as isize;
        let kx_lo = (-ix0).clamp(0, 3) as usize;
        let kx_hi = (cv.w as isize - ix0).clamp(kx_lo as isize, 3) as usize;
        let mut c0 = 0;
        while c0 < c {
            let m = mask(c, c0);
            let mut acc = _mm512_maskz_loadu_ps(m, self.bias.add(c0));
            for ky in kys.clone() {
                let iy = (iy0 + ky as isize) as usize;
                for kx in kx_lo..kx_hi {
                    let x = _mm512_maskz_loadu_ps(m, self.at(b, iy, (ix0 + kx as isize) as usize).add(c0));
                    let k = _mm512_maskz_loadu_ps(m, self.w.add((ky * 3 + kx) * c + c0));
                    acc = _mm512_fmadd_ps(x, k, acc);
                }
            }
            _mm512_mask_storeu_ps(out_row.add(ox * c + c0), m, self.epilogue(acc));
            c0 += 16;
        }
    }

    /// Interior pixels `oxs` in blocks of `N` (then smaller blocks for the rest).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn interior<const SW: usize, const N: usize>(&self, b: usize, iy0: isize, kys: Range<usize>, next: Range<usize>, oxs: Range<usize>, out_row: *mut f32) {
        let mut ox = oxs.start;
        while ox < oxs.end {
            let n = (oxs.end - ox).min(N);
            let nx = next.clone();
            match n {
                8 => self.block::<SW, 8>(b, iy0, kys.clone(), nx, ox, out_row),
                7 => self.block::<SW, 7>(b, iy0, kys.clone(), nx, ox, out_row),
                6 => self.block::<SW, 6>(b, iy0, kys.clone(), nx, ox, out_row),
                5 => self.block::<SW, 5>(b, iy0, kys.clone(), nx, ox, out_row),
                4 => self.block::<SW, 4>(b, iy0, kys.clone(), nx, ox, out_row),
                3 => self.block::<SW, 3>(b, iy0, kys.clone(), nx, ox, out_row),
                2 => self.block::<SW, 2>(b, iy0, kys.clone(), nx, ox, out_row),
                _ => self.block::<SW, 1>(b, iy0, kys.clone(), nx, ox, out_row),
            }
            ox += n;
        }
    }

    /// `N` interior output columns from `ox`, all channels.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn block<const SW: usize, const N: usize>(&self, b: usize, iy0: isize, kys: Range<usize>, next: Range<usize>, ox: usize, out_row: *mut f32) {
        let cv = self.cv;
        let c = cv.c_in;
        let ix0 = ox * SW - cv.pad_left;
        // Input columns the block reads: N + 2 (stride 1) or 2N + 1 (stride 2); at most 17.
        let ncols = (N - 1) * SW + 3;
        let mut c0 = 0;
        while c0 < c {
            let m = mask(c, c0);
            // This block's columns of the next rows (the block to the right fetches its own).
            for iy in next.clone() {
                let src = self.at(b, iy, ix0).add(c0) as *const i8;
                for i in 0..N * SW {
                    _mm_prefetch::<_MM_HINT_T1>(src.add(i * c * 4));
                }
            }
            let bv = _mm512_maskz_loadu_ps(m, self.bias.add(c0));
            let mut acc = [bv; N];
            for ky in kys.clone() {
                let src = self.at(b, (iy0 + ky as isize) as usize, ix0).add(c0);
                let mut col = [_mm512_setzero_ps(); 17];
                for (i, x) in col.iter_mut().enumerate().take(ncols) {
                    *x = _mm512_maskz_loadu_ps(m, src.add(i * c));
                }
                let wk = self.w.add(ky * 3 * c + c0);
                let k = [_mm512_maskz_loadu_ps(m, wk), _mm512_maskz_loadu_ps(m, wk.add(c)), _mm512_maskz_loadu_ps(m, wk.add(2 * c))];
                for kx in 0..3 {
                    for p in 0..N {
                        acc[p] = _mm512_fmadd_ps(col[p * SW + kx], k[kx], acc[p]);
                    }
                }
            }
            for (p, a) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(out_row.add((ox + p) * c + c0), m, self.epilogue(*a));
            }
            c0 += 16;
        }
    }
}
