//! Depthwise convolution (groups == c_in == c_out) over NHWC, vectorized over channels.
//!
//! Each output row is split into border pixels (some tap outside the image, handled by a
//! per-pixel loop that skips those taps) and interior pixels. For 3×3, dilation 1, stride 1 or
//! 2, the interior runs a loop that keeps the nine weight vectors and the bias of a 16-channel
//! slice in registers while it walks the row, so there is no bounds test in the hot loop.
//! The same generic body is compiled for AVX-512, AVX2+FMA and the portable baseline
//! (multiversioning): LLVM vectorizes the 16-wide channel arrays for each.
//!
//! On AVX-512, 3×3 kernels run [`super::depthwise_avx512`] (register blocks over output
//! columns, masked channel tails) instead.
//!
//! Packed weights: `[kh, kw, c]` (tap-major, channels contiguous).

use std::ops::Range;

use super::conv::Conv2d;
use super::isa::{self, Isa};
use super::Act;

/// Channels per vector slice of the interior loop.
const VL: usize = 16;

/// Computes output rows `rows` (of the `n·oh` NHWC output rows); `out` points at output row
/// `row0` (0: the whole output; a fused caller passes a buffer holding rows from `row0` on).
///
/// # Safety
/// Slices must have the lengths `conv` implies; `out` covers rows `row0..rows.end`.
pub(crate) unsafe fn run_rows(conv: &Conv2d, input: &[f32], w: &[f32], bias: &[f32], out: *mut f32, row0: usize, rows: Range<usize>) {
    match isa::current() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if super::depthwise_avx512::applies(conv) => super::depthwise_avx512::run_rows(conv, input, w, bias, out, conv.c_out, 256, row0, rows),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => rows_avx512(conv, input, w, bias, out, row0, rows),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => rows_avx2(conv, input, w, bias, out, row0, rows),
        _ => rows_generic::<false>(conv, input, w, bias, out, row0, rows),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn rows_avx512(conv: &Conv2d, input: &[f32], w: &[f32], bias: &[f32], out: *mut f32, row0: usize, rows: Range<usize>) {
    rows_generic::<true>(conv, input, w, bias, out, row0, rows)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_avx2(conv: &Conv2d, input: &[f32], w: &[f32], bias: &[f32], out: *mut f32, row0: usize, rows: Range<usize>) {
    rows_generic::<true>(conv, input, w, bias, out, row0, rows)
}

/// `a·b + c`, fused when the variant has FMA (a libm call otherwise, so not used there).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
unsafe fn rows_generic<const FMA: bool>(cv: &Conv2d, input: &[f32], w: &[f32], bias: &[f32], out: *mut f32, row0: usize, rows: Range<usize>) {
    let c = cv.c_in;
    let span_w = cv.dw * (cv.kw - 1) + 1;
    // Interior columns: every kx tap lands inside the row.
    let ox_lo = cv.pad_left.div_ceil(cv.sw).min(cv.ow);
    let ox_hi = if cv.w + cv.pad_left >= span_w { ((cv.w + cv.pad_left - span_w) / cv.sw + 1).min(cv.ow) } else { 0 };
    let ox_hi = ox_hi.max(ox_lo);
    let fast = cv.kh == 3 && cv.kw == 3 && cv.dh == 1 && cv.dw == 1 && (cv.sw == 1 || cv.sw == 2);
    let c_vec = if fast { c / VL * VL } else { 0 };
    for row in rows {
        let (b, oy) = (row / cv.oh, row % cv.oh);
        let iy0 = (oy * cv.sh) as isize - cv.pad_top as isize;
        let mut ky_lo = 0;
        while ky_lo < cv.kh && iy0 + ((ky_lo * cv.dh) as isize) < 0 {
            ky_lo += 1;
        }
        let mut ky_hi = cv.kh;
        while ky_hi > ky_lo && iy0 + (((ky_hi - 1) * cv.dh) as isize) >= cv.h as isize {
            ky_hi -= 1;
        }
        let full_rows = ky_lo == 0 && ky_hi == cv.kh;
        let out_row = out.add((row - row0) * cv.ow * c);
        let px = |ox: usize, ch: Range<usize>| pixel::<FMA>(cv, input, w, bias, out_row, b, oy, ox, ky_lo..ky_hi, ch);
        for ox in (0..ox_lo).chain(ox_hi..cv.ow) {
            px(ox, 0..c);
        }
        if full_rows && c_vec > 0 && ox_lo < ox_hi {
            let in_row = input.as_ptr().add((b * cv.h + iy0 as usize) * cv.w * c);
            if cv.sw == 1 {
                interior3x3::<FMA, 1>(cv, in_row, w.as_ptr(), bias.as_ptr(), out_row, ox_lo..ox_hi, c_vec);
            } else {
                interior3x3::<FMA, 2>(cv, in_row, w.as_ptr(), bias.as_ptr(), out_row, ox_lo..ox_hi, c_vec);
            }
            if c_vec < c {
                for ox in ox_lo..ox_hi {
                    px(ox, c_vec..c);
                }
            }
        } else {
            for ox in ox_lo..ox_hi {
                px(ox, 0..c);
            }
        }
    }
}

/// One output pixel, channels `ch`, summing only the taps inside the image (ky in `kys`, kx
/// tested here), in (ky, kx) order like the interior loop.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pixel<const FMA: bool>(
    cv: &Conv2d,
    input: &[f32],
    w: &[f32],
    bias: &[f32],
    out_row: *mut f32,
    b: usize,
    oy: usize,
    ox: usize,
    kys: Range<usize>,
    ch: Range<usize>,
) {
    let c = cv.c_in;
    let o = std::slice::from_raw_parts_mut(out_row.add(ox * c + ch.start), ch.len());
    o.copy_from_slice(&bias[ch.clone()]);
    for ky in kys {
        let iy = oy * cv.sh + ky * cv.dh - cv.pad_top;
        for kx in 0..cv.kw {
            let ix = (ox * cv.sw + kx * cv.dw) as isize - cv.pad_left as isize;
            if ix < 0 || ix as usize >= cv.w {
                continue;
            }
            let base = ((b * cv.h + iy) * cv.w + ix as usize) * c;
            let src = &input[base + ch.start..base + ch.end];
            let wt = &w[(ky * cv.kw + kx) * c + ch.start..(ky * cv.kw + kx) * c + ch.end];
            for ((o, &x), &k) in o.iter_mut().zip(src).zip(wt) {
                *o = madd::<FMA>(x, k, *o);
            }
        }
    }
    cv.act.apply_slice(o);
}

/// Interior pixels `oxs` of one output row for a 3×3, dilation-1 kernel with column stride
/// `SW`, channels `0..c_vec` (a multiple of [`VL`]). `in_row` points at input row `iy0`
/// (the row of tap ky = 0, inside the image), `out_row` at the output row.
#[inline(always)]
unsafe fn interior3x3<const FMA: bool, const SW: usize>(
    cv: &Conv2d,
    in_row: *const f32,
    w: *const f32,
    bias: *const f32,
    out_row: *mut f32,
    oxs: Range<usize>,
    c_vec: usize,
) {
    let c = cv.c_in;
    let row_stride = cv.w * c;
    let (lo, hi) = match cv.act {
        Act::None => (f32::NEG_INFINITY, f32::INFINITY),
        Act::Relu => (0.0, f32::INFINITY),
        Act::Clip { min, max } => (min, max),
    };
    let clamp = cv.act != Act::None;
    let mut c0 = 0;
    while c0 < c_vec {
        let mut wv = [[0.0f32; VL]; 9];
        for (t, wt) in wv.iter_mut().enumerate() {
            *wt = *(w.add(t * c + c0) as *const [f32; VL]);
        }
        let bv = *(bias.add(c0) as *const [f32; VL]);
        for ox in oxs.clone() {
            let ix0 = ox * SW - cv.pad_left;
            let mut acc = bv;
            for ky in 0..3 {
                let src_row = in_row.add(ky * row_stride + ix0 * c + c0);
                for kx in 0..3 {
                    let x = &*(src_row.add(kx * c) as *const [f32; VL]);
                    let k = &wv[ky * 3 + kx];
                    for l in 0..VL {
                        acc[l] = madd::<FMA>(x[l], k[l], acc[l]);
                    }
                }
            }
            if clamp {
                for a in acc.iter_mut() {
                    *a = a.max(lo).min(hi);
                }
            }
            (out_row.add(ox * c + c0) as *mut [f32; VL]).write_unaligned(acc);
        }
        c0 += VL;
    }
}
