//! Convolution gradients for a forward [`Conv2d`] (NHWC activations, OIHW weights; the
//! forward's fused activation, if any, is not part of these: mask `dy` first).
//!
//! - input gradient `dx = conv_transpose(dy, W)`:
//!   pointwise: the matrix product `dy [p, c_out] · W [c_out, c_in]`;
//!   depthwise: a scatter loop vectorized over channels;
//!   general: per group, `dcol = dy_g · W_g` on the packed gemm, then col2im (scatter-add).
//! - weight gradient `dW = Σ_p dy[p]ᵀ · patch[p]`: pointwise: `dyᵀ · x` on [`AtB`]; general:
//!   im2col blocks then [`AtB`]; depthwise: fused with its input-gradient loop.
//! - bias gradient: `db[c] = Σ_p dy[p, c]`.
//!
//! Threads split images (input gradients: disjoint `dx` images), rows of the weight gradient
//! (pointwise, see [`AtB`]), fixed blocks of images whose partial sums are added in block
//! order (depthwise: the same bits for any thread count), or pixels (general weight
//! gradients: partial sums reduced in part order).

use super::super::conv::{Conv2d, ConvPath};
use super::super::gemm::{self, Mm};
use super::super::isa::{self, Isa};
use super::super::threads::{split_rows, SendPtr};
use super::super::Act;
use super::matmul::AtB;
use super::{map_parts, reduce_into, threads_for};

/// Output pixels per im2col block of the general path.
const BLOCK_PIX: usize = 64;

/// Images per partial sum of the depthwise weight gradient.
const DW_IMAGES: usize = 8;

/// `db[c] = Σ_p dy[p, c]` over NHWC `dy` with `c` channels.
pub fn bias_grad(dy: &[f32], c: usize, db: &mut [f32]) {
    assert_eq!(db.len(), c, "bias_grad: length");
    assert!(c > 0 && dy.len().is_multiple_of(c), "bias_grad: dy length");
    let mut acc = vec![0.0f64; c];
    for row in dy.chunks_exact(c) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v as f64;
        }
    }
    for (d, a) in db.iter_mut().zip(acc) {
        *d = a as f32;
    }
}

/// The input gradient `dx` (NHWC, `cv.input_len()`) from `dy` (NHWC, `cv.output_len()`) and
/// the ONNX OIHW weights.
pub fn input_grad(cv: &Conv2d, dy: &[f32], w_oihw: &[f32], dx: &mut [f32], threads: usize) {
    assert_eq!(dy.len(), cv.output_len(), "conv input_grad: dy length");
    assert_eq!(w_oihw.len(), cv.weights_len(), "conv input_grad: weight length");
    assert_eq!(dx.len(), cv.input_len(), "conv input_grad: dx length");
    let threads = threads_for(cv.mult_adds(), threads);
    match cv.path() {
        ConvPath::Pointwise => {
            // dx[p, ci] = Σ_co dy[p, co] · W[co, ci]: B = W as [k = c_out, n = c_in].
            let mut packed = vec![0.0; gemm::packed_len(cv.c_out, cv.c_in)];
            gemm::pack_strided(cv.c_out, cv.c_in, w_oihw, cv.c_in, false, &mut packed);
            let pixels = cv.n * cv.h * cv.w;
            gemm::matmul(pixels, cv.c_out, cv.c_in, dy, cv.c_out, &packed, None, Act::None, dx, cv.c_in, threads);
        }
        ConvPath::Depthwise => {
            let w = depthwise_taps(cv, w_oihw);
            let dxp = SendPtr(dx.as_mut_ptr());
            split_rows(cv.n, threads, |imgs| {
                // SAFETY: each part writes the dx images of its own range.
                unsafe { depthwise_dx(cv, dy, &w, { dxp }.0, imgs) }
            });
        }
        ConvPath::General => {
            let (cig, cog, kg) = (cv.cin_g(), cv.cout_g(), cv.kh * cv.kw * cv.cin_g());
            // Per group, B[j, (tap, ci)] = W[g·cog + j, ci, ky, kx] (the im2col column order).
            let per = gemm::packed_len(cog, kg);
            let mut packed = vec![0.0; cv.groups * per];
            for g in 0..cv.groups {
                gemm::pack_into(
                    cog,
                    kg,
                    |j, k| {
                        let (tap, ci) = (k / cig, k % cig);
                        w_oihw[(((g * cog + j) * cig + ci) * cv.kh + tap / cv.kw) * cv.kw + tap % cv.kw]
                    },
                    &mut packed[g * per..(g + 1) * per],
                );
            }
            let dxp = SendPtr(dx.as_mut_ptr());
            split_rows(cv.n, threads, |imgs| {
                // SAFETY: each part writes the dx images of its own range.
                unsafe { general_dx(cv, dy, &packed, { dxp }.0, imgs) }
            });
        }
    }
}

/// The weight gradient in ONNX OIHW layout, from the forward input `x` and `dy`.
pub fn weight_grad(cv: &Conv2d, x: &[f32], dy: &[f32], dw_oihw: &mut [f32], threads: usize) {
    assert_eq!(x.len(), cv.input_len(), "conv weight_grad: x length");
    assert_eq!(dy.len(), cv.output_len(), "conv weight_grad: dy length");
    assert_eq!(dw_oihw.len(), cv.weights_len(), "conv weight_grad: dw length");
    let threads = threads_for(cv.mult_adds(), threads);
    match cv.path() {
        ConvPath::Pointwise => {
            // dW[co, ci] = Σ_p dy[p, co] · x[p, ci]: exactly OIHW for 1×1.
            let pixels = cv.n * cv.h * cv.w;
            super::matmul::at_b(pixels, cv.c_out, cv.c_in, dy, cv.c_out, x, cv.c_in, dw_oihw, threads);
        }
        ConvPath::Depthwise => {
            // Partial sums per fixed block of images (whichever thread computes it), added in
            // block order: the same bits for any thread count.
            let taps = cv.kh * cv.kw * cv.c_in;
            let blocks = cv.n.div_ceil(DW_IMAGES);
            let mut partial = vec![0.0f32; blocks * taps];
            let pp = SendPtr(partial.as_mut_ptr());
            split_rows(blocks, threads, |bs| {
                for bi in bs {
                    // SAFETY: each block's partial belongs to the part that owns the block;
                    // lengths checked above.
                    unsafe {
                        let dw = std::slice::from_raw_parts_mut({ pp }.0.add(bi * taps), taps);
                        depthwise_dw(cv, x, dy, dw, bi * DW_IMAGES..((bi + 1) * DW_IMAGES).min(cv.n));
                    }
                }
            });
            let mut dw = vec![0.0; taps];
            reduce_into(partial.chunks_exact(taps), &mut dw);
            // [kh, kw, c] → OIHW [c, 1, kh, kw].
            let (kk, c) = (cv.kh * cv.kw, cv.c_in);
            for ch in 0..c {
                for t in 0..kk {
                    dw_oihw[ch * kk + t] = dw[t * c + ch];
                }
            }
        }
        ConvPath::General => {
            let (cig, cog, kg) = (cv.cin_g(), cv.cout_g(), cv.kh * cv.kw * cv.cin_g());
            let pixels = cv.n * cv.oh * cv.ow;
            for g in 0..cv.groups {
                let parts = map_parts(pixels, threads, |r| {
                    let mut acc = AtB::new(cog, kg);
                    let mut col = vec![0.0f32; BLOCK_PIX * kg];
                    let mut p = r.start;
                    while p < r.end {
                        let cnt = BLOCK_PIX.min(r.end - p);
                        im2col(cv, x, g, p, cnt, &mut col[..cnt * kg]);
                        acc.add(cnt, &dy[p * cv.c_out + g * cog..], cv.c_out, &col, kg);
                        p += cnt;
                    }
                    acc.c
                });
                let mut c = vec![0.0; cog * kg];
                reduce_into(parts.iter().map(Vec::as_slice), &mut c);
                // c[j, (tap, ci)] → OIHW.
                for j in 0..cog {
                    for k in 0..kg {
                        let (tap, ci) = (k / cig, k % cig);
                        dw_oihw[(((g * cog + j) * cig + ci) * cv.kh + tap / cv.kw) * cv.kw + tap % cv.kw] = c[j * kg + k];
                    }
                }
            }
        }
    }
}

/// Depthwise OIHW `[c, 1, kh, kw]` → `[kh·kw, c]` (taps major, channels contiguous).
fn depthwise_taps(cv: &Conv2d, w_oihw: &[f32]) -> Vec<f32> {
    let (kk, c) = (cv.kh * cv.kw, cv.c_in);
    let mut w = vec![0.0; kk * c];
    for ch in 0..c {
        for t in 0..kk {
            w[t * c + ch] = w_oihw[ch * kk + t];
        }
    }
    w
}

/// The forward kernel's packed weights ([`Conv2d::pack_weights`]'s layout), made faster for
/// the pointwise path (block copies), which the trainer re-packs after every update.
pub fn pack_forward_weights(cv: &Conv2d, w_oihw: &[f32]) -> Vec<f32> {
    if cv.path() == ConvPath::Pointwise {
        assert_eq!(w_oihw.len(), cv.weights_len(), "conv: OIHW weight length");
        let mut out = vec![0.0; cv.packed_weights_len()];
        // B[ci, co] = W[co, ci]: W read transposed.
        gemm::pack_strided(cv.c_in, cv.c_out, w_oihw, cv.c_in, true, &mut out);
        out
    } else {
        cv.pack_weights(w_oihw)
    }
}

/// The input rows (`iy`) and columns (`ix`) tap `(ky, kx)` of output `(oy, ox)` reads, or
/// `None` in the padding.
#[inline(always)]
fn tap_at(cv: &Conv2d, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
    let iy = (oy * cv.sh + ky * cv.dh) as isize - cv.pad_top as isize;
    let ix = (ox * cv.sw + kx * cv.dw) as isize - cv.pad_left as isize;
    (iy >= 0 && ix >= 0 && (iy as usize) < cv.h && (ix as usize) < cv.w).then_some((iy as usize, ix as usize))
}

unsafe fn depthwise_dx(cv: &Conv2d, dy: &[f32], w: &[f32], dx: *mut f32, imgs: std::ops::Range<usize>) {
    match isa::current() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => depthwise_dx_avx512(cv, dy, w, dx, imgs),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => depthwise_dx_avx2(cv, dy, w, dx, imgs),
        _ => depthwise_dx_generic(cv, dy, w, dx, imgs),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn depthwise_dx_avx512(cv: &Conv2d, dy: &[f32], w: &[f32], dx: *mut f32, imgs: std::ops::Range<usize>) {
    depthwise_dx_generic(cv, dy, w, dx, imgs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_dx_avx2(cv: &Conv2d, dy: &[f32], w: &[f32], dx: *mut f32, imgs: std::ops::Range<usize>) {
    depthwise_dx_generic(cv, dy, w, dx, imgs)
}

/// Channels per vector block of the depthwise loops (one AVX-512 register; two AVX2 ones).
const L: usize = 16;

/// Gather form: each input pixel sums the output pixels whose window covers it, so every dx
/// element is written once (no zeroing pass, no read-modify-write chains). The covering
/// (output pixel, tap) pairs are listed once per pixel; then each block of [`L`] channels sums
/// them in a register (fixed-length array arithmetic, vectorized by the ISA wrappers).
#[inline(always)]
unsafe fn depthwise_dx_generic(cv: &Conv2d, dy: &[f32], w: &[f32], dx: *mut f32, imgs: std::ops::Range<usize>) {
    let c = cv.c_in;
    let full = c / L * L;
    // (dy offset, tap weight offset) of every output pixel covering the current input pixel.
    let mut taps: Vec<(usize, usize)> = Vec::with_capacity(cv.kh * cv.kw);
    for b in imgs {
        for iy in 0..cv.h {
            for ix in 0..cv.w {
                taps.clear();
                for ky in 0..cv.kh {
                    // oy·sh = iy + pad_top − ky·dh must be a non-negative multiple of sh.
                    let ty = (iy + cv.pad_top) as isize - (ky * cv.dh) as isize;
                    if ty < 0 || ty as usize % cv.sh != 0 || ty as usize / cv.sh >= cv.oh {
                        continue;
                    }
                    let oy = ty as usize / cv.sh;
                    for kx in 0..cv.kw {
                        let tx = (ix + cv.pad_left) as isize - (kx * cv.dw) as isize;
                        if tx < 0 || tx as usize % cv.sw != 0 || tx as usize / cv.sw >= cv.ow {
                            continue;
                        }
                        let ox = tx as usize / cv.sw;
                        taps.push((((b * cv.oh + oy) * cv.ow + ox) * c, (ky * cv.kw + kx) * c));
                    }
                }
                let out = std::slice::from_raw_parts_mut(dx.add(((b * cv.h + iy) * cv.w + ix) * c), c);
                for i in (0..full).step_by(L) {
                    let mut acc = [0.0f32; L];
                    for &(g, k) in &taps {
                        let (gv, kv): (&[f32; L], &[f32; L]) = (dy[g + i..g + i + L].try_into().expect("L"), w[k + i..k + i + L].try_into().expect("L"));
                        for j in 0..L {
                            acc[j] += gv[j] * kv[j];
                        }
                    }
                    out[i..i + L].copy_from_slice(&acc);
                }
                for (i, o) in out.iter_mut().enumerate().skip(full) {
                    *o = taps.iter().fold(0.0f32, |a, &(g, k)| a + dy[g + i] * w[k + i]);
                }
            }
        }
    }
}

unsafe fn depthwise_dw(cv: &Conv2d, x: &[f32], dy: &[f32], dw: &mut [f32], imgs: std::ops::Range<usize>) {
    match isa::current() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => depthwise_dw_avx512(cv, x, dy, dw, imgs),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => depthwise_dw_avx2(cv, x, dy, dw, imgs),
        _ => depthwise_dw_generic(cv, x, dy, dw, imgs),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn depthwise_dw_avx512(cv: &Conv2d, x: &[f32], dy: &[f32], dw: &mut [f32], imgs: std::ops::Range<usize>) {
    depthwise_dw_generic(cv, x, dy, dw, imgs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_dw_avx2(cv: &Conv2d, x: &[f32], dy: &[f32], dw: &mut [f32], imgs: std::ops::Range<usize>) {
    depthwise_dw_generic(cv, x, dy, dw, imgs)
}

/// `dw[tap, c] += Σ dy[b, oy, ox, c] · x[b, iy, ix, c]`: per output pixel, the taps inside
/// the image are listed once, then each block of [`L`] channels loads `dy` once and adds its
/// product with every tap's input into that tap's accumulator row (kept in L1).
#[inline(always)]
unsafe fn depthwise_dw_generic(cv: &Conv2d, x: &[f32], dy: &[f32], dw: &mut [f32], imgs: std::ops::Range<usize>) {
    let c = cv.c_in;
    let full = c / L * L;
    // (x offset, dw offset) of every tap of the current output pixel inside the image.
    let mut taps: Vec<(usize, usize)> = Vec::with_capacity(cv.kh * cv.kw);
    for b in imgs {
        for oy in 0..cv.oh {
            for ox in 0..cv.ow {
                taps.clear();
                for ky in 0..cv.kh {
                    for kx in 0..cv.kw {
                        if let Some((iy, ix)) = tap_at(cv, oy, ox, ky, kx) {
                            taps.push((((b * cv.h + iy) * cv.w + ix) * c, (ky * cv.kw + kx) * c));
                        }
                    }
                }
                let g = &dy[((b * cv.oh + oy) * cv.ow + ox) * c..][..c];
                for i in (0..full).step_by(L) {
                    let gv: [f32; L] = g[i..i + L].try_into().expect("L");
                    for &(xo, d) in &taps {
                        let xv: &[f32; L] = x[xo + i..xo + i + L].try_into().expect("L");
                        let mut acc: [f32; L] = dw[d + i..d + i + L].try_into().expect("L");
                        for j in 0..L {
                            acc[j] += gv[j] * xv[j];
                        }
                        dw[d + i..d + i + L].copy_from_slice(&acc);
                    }
                }
                for i in full..c {
                    for &(xo, d) in &taps {
                        dw[d + i] += g[i] * x[xo + i];
                    }
                }
            }
        }
    }
}

/// Fills `dst` (`cnt × kh·kw·cin_g`, columns in (ky, kx, ci) order) with the patches of output
/// pixels `p..p+cnt` (flattened over n·oh·ow) for group `g`; padding reads as zero.
fn im2col(cv: &Conv2d, x: &[f32], g: usize, p: usize, cnt: usize, dst: &mut [f32]) {
    let cig = cv.cin_g();
    let kg = cv.kh * cv.kw * cig;
    for r in 0..cnt {
        let q = p + r;
        let (b, rem) = (q / (cv.oh * cv.ow), q % (cv.oh * cv.ow));
        let (oy, ox) = (rem / cv.ow, rem % cv.ow);
        let row = &mut dst[r * kg..(r + 1) * kg];
        for ky in 0..cv.kh {
            for kx in 0..cv.kw {
                let seg = &mut row[(ky * cv.kw + kx) * cig..][..cig];
                match tap_at(cv, oy, ox, ky, kx) {
                    Some((iy, ix)) => {
                        let base = ((b * cv.h + iy) * cv.w + ix) * cv.c_in + g * cig;
                        seg.copy_from_slice(&x[base..base + cig]);
                    }
                    None => seg.fill(0.0),
                }
            }
        }
    }
}

/// General-path input gradient of images `imgs`: per group and block of output pixels,
/// `dcol = dy_g · W_g` (packed gemm), then scatter-add of the patches into `dx`.
unsafe fn general_dx(cv: &Conv2d, dy: &[f32], packed: &[f32], dx: *mut f32, imgs: std::ops::Range<usize>) {
    let isa = isa::current();
    let (cig, cog, kg) = (cv.cin_g(), cv.cout_g(), cv.kh * cv.kw * cv.cin_g());
    let per = gemm::packed_len(cog, kg);
    let img_len = cv.h * cv.w * cv.c_in;
    std::slice::from_raw_parts_mut(dx.add(imgs.start * img_len), imgs.len() * img_len).fill(0.0);
    let mut dcol = vec![0.0f32; BLOCK_PIX * kg];
    let pix_img = cv.oh * cv.ow;
    for g in 0..cv.groups {
        let mut p = imgs.start * pix_img;
        while p < imgs.end * pix_img {
            let cnt = BLOCK_PIX.min(imgs.end * pix_img - p);
            let mm = Mm {
                m: cnt,
                n: kg,
                kc: cog,
                a: dy.as_ptr().add(p * cv.c_out + g * cog),
                lda: cv.c_out,
                a_chunk: 0,
                b: packed.as_ptr().add(g * per),
                panel_stride: cog * gemm::NR,
                c: dcol.as_mut_ptr(),
                ldc: kg,
                bias: std::ptr::null(),
                act: Act::None,
                first: true,
                last: true,
            };
            gemm::run_mm(isa, &mm);
            for r in 0..cnt {
                let q = p + r;
                let (b, rem) = (q / pix_img, q % pix_img);
                let (oy, ox) = (rem / cv.ow, rem % cv.ow);
                let row = &dcol[r * kg..(r + 1) * kg];
                for ky in 0..cv.kh {
                    for kx in 0..cv.kw {
                        if let Some((iy, ix)) = tap_at(cv, oy, ox, ky, kx) {
                            let seg = &row[(ky * cv.kw + kx) * cig..][..cig];
                            let d = std::slice::from_raw_parts_mut(dx.add(((b * cv.h + iy) * cv.w + ix) * cv.c_in + g * cig), cig);
                            for (o, &v) in d.iter_mut().zip(seg) {
                                *o += v;
                            }
                        }
                    }
                }
            }
            p += cnt;
        }
    }
}
