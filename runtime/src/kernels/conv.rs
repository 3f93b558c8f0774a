//! 2-D convolution over NHWC activations, with groups, strides, dilations, pads and a fused
//! epilogue. One parameter struct; `run` dispatches on the parameters to one of three paths:
//!
//! - [`ConvPath::Pointwise`] (1×1, stride 1, no pad, one group): the matrix product
//!   `[n·h·w, c_in] × [c_in, c_out]` straight on the activation (no copy);
//! - [`ConvPath::Depthwise`] (groups == c_in == c_out): [`super::depthwise`], vectorized over
//!   channels;
//! - [`ConvPath::General`]: per group, im2col of a block of output pixels into a bounded stack
//!   buffer, then the packed matrix product (chunked over k when a patch is too long); a small
//!   patch (a first conv on 3 channels) runs [`super::first_conv`]'s direct kernel instead, on
//!   the same packed weights.

use std::ops::Range;

use super::gemm::{self, Mm, NR};
use super::threads::{split_rows, SendPtr, Split};
use super::{depthwise, ensure, first_conv, isa, window_out, Act, KernelError};

/// A 2-D convolution instance. Input `[n, h, w, c_in]`, output `[n, oh, ow, c_out]` (NHWC);
/// ONNX weights `[c_out, c_in/groups, kh, kw]` (OIHW) go through [`Conv2d::pack_weights`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2d {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c_in: usize,
    pub c_out: usize,
    pub groups: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub pad_bottom: usize,
    pub pad_right: usize,
    pub oh: usize,
    pub ow: usize,
    pub act: Act,
}

/// The specialized implementation a [`Conv2d`] runs (decided by its parameters alone).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvPath {
    Pointwise,
    Depthwise,
    General,
}

/// Floats of the im2col buffer (on the stack: no heap allocation during inference).
const IM2COL_FLOATS: usize = 12 * 1024;
/// Longest k chunk of the general path's matrix product.
const K_CHUNK: usize = 768;

impl Conv2d {
    /// A convolution with the output size computed from the other parameters.
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        n: usize,
        h: usize,
        w: usize,
        c_in: usize,
        c_out: usize,
        groups: usize,
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: [usize; 4],
        act: Act,
    ) -> Conv2d {
        let [kh, kw] = kernel;
        let [sh, sw] = strides;
        let [dh, dw] = dilations;
        let [pad_top, pad_left, pad_bottom, pad_right] = pads;
        Conv2d {
            n,
            h,
            w,
            c_in,
            c_out,
            groups,
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            pad_top,
            pad_left,
            pad_bottom,
            pad_right,
            oh: window_out(h, kh, sh, dh, pad_top, pad_bottom, false),
            ow: window_out(w, kw, sw, dw, pad_left, pad_right, false),
            act,
        }
    }

    /// Checks the parameters are consistent (generated code checks at compile time; the executor
    /// before running).
    pub fn check(&self) -> Result<(), KernelError> {
        ensure!(self.groups > 0 && self.sh > 0 && self.sw > 0 && self.dh > 0 && self.dw > 0 && self.kh > 0 && self.kw > 0,
            "conv: groups, kernel, strides and dilations must be positive ({self:?})");
        ensure!(self.c_in.is_multiple_of(self.groups) && self.c_out.is_multiple_of(self.groups),
            "conv: groups {} must divide c_in {} and c_out {}", self.groups, self.c_in, self.c_out);
        let oh = window_out(self.h, self.kh, self.sh, self.dh, self.pad_top, self.pad_bottom, false);
        let ow = window_out(self.w, self.kw, self.sw, self.dw, self.pad_left, self.pad_right, false);
        ensure!(oh == self.oh && ow == self.ow && oh > 0 && ow > 0,
            "conv: output {}×{} does not follow from the input and window (expected {oh}×{ow})", self.oh, self.ow);
        Ok(())
    }

    pub const fn path(&self) -> ConvPath {
        let no_pad = self.pad_top == 0 && self.pad_left == 0 && self.pad_bottom == 0 && self.pad_right == 0;
        if self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && no_pad && self.groups == 1 {
            ConvPath::Pointwise
        } else if self.groups == self.c_in && self.c_out == self.c_in {
            ConvPath::Depthwise
        } else {
            ConvPath::General
        }
    }

    pub const fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c_in
    }

    pub const fn output_len(&self) -> usize {
        self.n * self.oh * self.ow * self.c_out
    }

    /// Input channels per group.
    pub const fn cin_g(&self) -> usize {
        self.c_in / self.groups
    }

    /// Output channels per group.
    pub const fn cout_g(&self) -> usize {
        self.c_out / self.groups
    }

    /// Length of the ONNX OIHW weight tensor.
    pub const fn weights_len(&self) -> usize {
        self.c_out * self.cin_g() * self.kh * self.kw
    }

    /// Multiply-accumulates of one run.
    pub const fn mult_adds(&self) -> usize {
        self.output_len() * self.cin_g() * self.kh * self.kw
    }

    /// Length of the packed weights this path reads.
    pub const fn packed_weights_len(&self) -> usize {
        match self.path() {
            ConvPath::Pointwise => gemm::packed_len(self.c_in, self.c_out),
            ConvPath::Depthwise => self.kh * self.kw * self.c_in,
            ConvPath::General => self.groups * gemm::packed_len(self.kh * self.kw * self.cin_g(), self.cout_g()),
        }
    }

    /// Packs ONNX OIHW weights into this path's layout:
    /// pointwise: panels of `[c_in, c_out]`; depthwise: `[kh, kw, c]`;
    /// general: per group, panels of `[kh·kw·cin_g (ky, kx, ci order), cout_g]`.
    pub fn pack_weights(&self, oihw: &[f32]) -> Vec<f32> {
        assert_eq!(oihw.len(), self.weights_len(), "conv: OIHW weight length");
        let (cig, cog, kh, kw) = (self.cin_g(), self.cout_g(), self.kh, self.kw);
        let at = |o: usize, i: usize, y: usize, x: usize| oihw[((o * cig + i) * kh + y) * kw + x];
        match self.path() {
            ConvPath::Pointwise => {
                let mut out = vec![0.0; self.packed_weights_len()];
                gemm::pack_into(self.c_in, self.c_out, |k, j| at(j, k, 0, 0), &mut out);
                out
            }
            ConvPath::Depthwise => {
                let c = self.c_in;
                let mut out = vec![0.0; self.packed_weights_len()];
                for ch in 0..c {
                    for y in 0..kh {
                        for x in 0..kw {
                            out[(y * kw + x) * c + ch] = at(ch, 0, y, x);
                        }
                    }
                }
                out
            }
            ConvPath::General => {
                let kg = kh * kw * cig;
                let per = gemm::packed_len(kg, cog);
                let mut out = vec![0.0; self.packed_weights_len()];
                for g in 0..self.groups {
                    gemm::pack_into(
                        kg,
                        cog,
                        |k, j| {
                            let (tap, ci) = (k / cig, k % cig);
                            at(g * cog + j, ci, tap / kw, tap % kw)
                        },
                        &mut out[g * per..(g + 1) * per],
                    );
                }
                out
            }
        }
    }

    /// Runs the convolution on one thread. `bias` has `c_out` values (zeros when the model has
    /// none).
    #[inline]
    pub fn run(&self, input: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32]) {
        self.run_threads(input, packed, bias, out, 1);
    }

    /// Runs the convolution split over `threads` threads: by output rows (`n·oh` of them), or,
    /// for a pointwise conv with few pixels (at most a quarter of the output channels), by
    /// panels of 16 output channels (see [`Split::choose`]).
    #[inline]
    pub fn run_threads(&self, input: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32], threads: usize) {
        assert_eq!(input.len(), self.input_len(), "conv: input length");
        assert_eq!(packed.len(), self.packed_weights_len(), "conv: packed weight length");
        assert_eq!(bias.len(), self.c_out, "conv: bias length");
        assert_eq!(out.len(), self.output_len(), "conv: output length");
        let op = SendPtr(out.as_mut_ptr());
        let rows = self.n * self.oh;
        // Only a pointwise conv is a plain matrix product whose columns can be split.
        let pixels = if self.path() == ConvPath::Pointwise { rows * self.ow } else { usize::MAX };
        match Split::choose(pixels, self.c_out, self.mult_adds(), threads) {
            // SAFETY (all three): lengths checked above; parts write disjoint output rows or
            // disjoint column panels.
            Split::Serial => unsafe { self.run_rows_raw(input, packed, bias, op.0, 0..rows) },
            Split::Rows => split_rows(rows, threads, |r| unsafe { self.run_rows_raw(input, packed, bias, { op }.0, r) }),
            Split::Panels => split_rows(self.c_out.div_ceil(NR), threads, |ps| unsafe {
                self.pointwise_raw(input, packed, bias, { op }.0, 0..rows * self.ow, ps)
            }),
        }
    }

    /// The pointwise product for output pixels `pix` and column panels `panels` (of 16 output
    /// channels): the packed weights, bias and output offset to the panels' first column.
    ///
    /// # Safety
    /// As [`Conv2d::run_rows_raw`]; the conv is pointwise.
    unsafe fn pointwise_raw(&self, input: &[f32], packed: &[f32], bias: &[f32], out: *mut f32, pix: Range<usize>, panels: Range<usize>) {
        let mm = Mm {
            m: pix.len(),
            n: self.c_out,
            kc: self.c_in,
            a: input.as_ptr().add(pix.start * self.c_in),
            lda: self.c_in,
            a_chunk: 0,
            b: packed.as_ptr(),
            panel_stride: self.c_in * NR,
            c: out.add(pix.start * self.c_out),
            ldc: self.c_out,
            bias: bias.as_ptr(),
            act: self.act,
            first: true,
            last: true,
        };
        gemm::run_mm(isa::current(), &mm.panels(panels));
    }

    /// Computes output rows `rows` (indices into the `n·oh` rows of the NHWC output).
    ///
    /// # Safety
    /// Slice lengths must match the parameters; `out` must point at the whole output.
    pub(crate) unsafe fn run_rows_raw(&self, input: &[f32], packed: &[f32], bias: &[f32], out: *mut f32, rows: Range<usize>) {
        match self.path() {
            ConvPath::Pointwise => self.pointwise_raw(input, packed, bias, out, self.ow * rows.start..self.ow * rows.end, 0..self.c_out.div_ceil(NR)),
            ConvPath::Depthwise => depthwise::run_rows(self, input, packed, bias, out, 0, rows),
            ConvPath::General if first_conv::applies(self) => first_conv::run_rows(self, input, packed, bias, out, rows),
            ConvPath::General => self.general_rows(input, packed, bias, out, rows),
        }
    }

    /// im2col + matrix product, per group, over blocks of output pixels of the given rows.
    unsafe fn general_rows(&self, input: &[f32], packed: &[f32], bias: &[f32], out: *mut f32, rows: Range<usize>) {
        let isa = isa::current();
        let (cig, cog) = (self.cin_g(), self.cout_g());
        let kg = self.kh * self.kw * cig;
        let per_group = gemm::packed_len(kg, cog);
        let mut buf = [0.0f32; IM2COL_FLOATS];
        let pix_per_img = self.oh * self.ow;
        // Pixels (flattened over n·oh·ow) of the requested rows.
        let (p0, p1) = (rows.start * self.ow, rows.end * self.ow);
        let kc_max = kg.min(K_CHUNK);
        let block = (IM2COL_FLOATS / kc_max).max(1);
        let block = if block >= 12 { block / 12 * 12 } else { block };
        for g in 0..self.groups {
            let mut k0 = 0;
            while k0 < kg {
                let kc = (kg - k0).min(K_CHUNK);
                let mut p = p0;
                while p < p1 {
                    // Blocks never straddle images, so one base pointer serves the block.
                    let img_end = (p / pix_per_img + 1) * pix_per_img;
                    let cnt = block.min(p1 - p).min(img_end - p);
                    self.im2col(input, g, p, cnt, k0, kc, &mut buf[..cnt * kc]);
                    let mm = Mm {
                        m: cnt,
                        n: cog,
                        kc,
                        a: buf.as_ptr(),
                        lda: kc,
                        a_chunk: 0,
                        b: packed.as_ptr().add(g * per_group + k0 * NR),
                        panel_stride: kg * NR,
                        c: out.add(p * self.c_out + g * cog),
                        ldc: self.c_out,
                        bias: bias.as_ptr().add(g * cog),
                        act: self.act,
                        first: k0 == 0,
                        last: k0 + kc == kg,
                    };
                    gemm::run_mm(isa, &mm);
                    p += cnt;
                }
                k0 += kc;
            }
        }
    }

    /// Fills `dst` (`cnt` rows × `kc`) with the patch columns `k0..k0+kc` of output pixels
    /// `p..p+cnt` (flattened over n·oh·ow, all in one image) for group `g`; padding reads as
    /// zero.
    #[allow(clippy::too_many_arguments)]
    fn im2col(&self, input: &[f32], g: usize, p: usize, cnt: usize, k0: usize, kc: usize, dst: &mut [f32]) {
        let cig = self.cin_g();
        let taps = (k0 / cig)..(k0 + kc).div_ceil(cig);
        let per_img = self.oh * self.ow;
        let (b, rem) = (p / per_img, p % per_img);
        let (mut oy, mut ox) = (rem / self.ow, rem % self.ow);
        let img = &input[b * self.h * self.w * self.c_in..(b + 1) * self.h * self.w * self.c_in];
        for row in dst.chunks_exact_mut(kc).take(cnt) {
            for tap in taps.clone() {
                // The part of this tap's channels inside the chunk.
                let lo = (tap * cig).max(k0);
                let hi = ((tap + 1) * cig).min(k0 + kc);
                let seg = &mut row[lo - k0..hi - k0];
                let iy = (oy * self.sh + (tap / self.kw) * self.dh) as isize - self.pad_top as isize;
                let ix = (ox * self.sw + (tap % self.kw) * self.dw) as isize - self.pad_left as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < self.h && (ix as usize) < self.w {
                    let base = (iy as usize * self.w + ix as usize) * self.c_in + g * cig + (lo - tap * cig);
                    copy_short(seg, &img[base..base + (hi - lo)]);
                } else {
                    seg.fill(0.0);
                }
            }
            ox += 1;
            if ox == self.ow {
                ox = 0;
                oy += 1;
            }
        }
    }
}

/// `dst.copy_from_slice(src)` without a `memcpy` call for the few-channel segments of im2col
/// (a first conv copies 3 floats per tap).
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    match dst.len() {
        1 => dst[0] = src[0],
        2 => dst.copy_from_slice(&src[..2]),
        3 => dst.copy_from_slice(&src[..3]),
        4 => dst.copy_from_slice(&src[..4]),
        _ => dst.copy_from_slice(src),
    }
}
