//! Max and average pooling over NHWC (pads, dilations, ceil mode), and global average pooling.

use super::{ensure, window_out, KernelError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    /// `count_include_pad`: padded cells (inside the declared pads) count in the divisor.
    Avg { count_include_pad: bool },
}

/// A 2-D pooling instance: input `[n, h, w, c]`, output `[n, oh, ow, c]` (NHWC).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pool2d {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
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
    pub kind: PoolKind,
}

impl Pool2d {
    /// A pool with the output size computed (ONNX rules, `ceil_mode` included).
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        n: usize,
        h: usize,
        w: usize,
        c: usize,
        kernel: [usize; 2],
        strides: [usize; 2],
        dilations: [usize; 2],
        pads: [usize; 4],
        ceil_mode: bool,
        kind: PoolKind,
    ) -> Pool2d {
        let [pad_top, pad_left, pad_bottom, pad_right] = pads;
        Pool2d {
            n,
            h,
            w,
            c,
            kh: kernel[0],
            kw: kernel[1],
            sh: strides[0],
            sw: strides[1],
            dh: dilations[0],
            dw: dilations[1],
            pad_top,
            pad_left,
            pad_bottom,
            pad_right,
            oh: window_out(h, kernel[0], strides[0], dilations[0], pad_top, pad_bottom, ceil_mode),
            ow: window_out(w, kernel[1], strides[1], dilations[1], pad_left, pad_right, ceil_mode),
            kind,
        }
    }

    pub fn check(&self) -> Result<(), KernelError> {
        ensure!(self.kh > 0 && self.kw > 0 && self.sh > 0 && self.sw > 0 && self.dh > 0 && self.dw > 0,
            "pool: kernel, strides and dilations must be positive ({self:?})");
        ensure!(self.oh > 0 && self.ow > 0, "pool: empty output ({self:?})");
        ensure!(self.pad_top < self.kh * self.dh && self.pad_left < self.kw * self.dw
            && self.pad_bottom < self.kh * self.dh && self.pad_right < self.kw * self.dw,
            "pool: pads must be smaller than the window ({self:?})");
        Ok(())
    }

    pub const fn input_len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }
    pub const fn output_len(&self) -> usize {
        self.n * self.oh * self.ow * self.c
    }

    /// Runs the pool. A window with no cell inside the image (impossible when pads are smaller
    /// than the window) yields 0.
    pub fn run(&self, input: &[f32], out: &mut [f32]) {
        assert_eq!(input.len(), self.input_len(), "pool: input length");
        assert_eq!(out.len(), self.output_len(), "pool: output length");
        let c = self.c;
        let (pt, pl) = (self.pad_top as isize, self.pad_left as isize);
        // Padded extent: cells beyond it (ceil mode) never count, even with count_include_pad.
        let (hp, wp) = ((self.h + self.pad_bottom) as isize, (self.w + self.pad_right) as isize);
        for b in 0..self.n {
            for oy in 0..self.oh {
                for ox in 0..self.ow {
                    let o = &mut out[((b * self.oh + oy) * self.ow + ox) * c..][..c];
                    let mut valid = 0usize;
                    let mut padded = 0usize;
                    match self.kind {
                        PoolKind::Max => o.fill(f32::NEG_INFINITY),
                        PoolKind::Avg { .. } => o.fill(0.0),
                    }
                    for ky in 0..self.kh {
                        let iy = (oy * self.sh + ky * self.dh) as isize - pt;
                        for kx in 0..self.kw {
                            let ix = (ox * self.sw + kx * self.dw) as isize - pl;
                            if iy < hp && ix < wp {
                                padded += 1;
                            }
                            if iy < 0 || ix < 0 || iy >= self.h as isize || ix >= self.w as isize {
                                continue;
                            }
                            valid += 1;
                            let src = &input[((b * self.h + iy as usize) * self.w + ix as usize) * c..][..c];
                            match self.kind {
                                PoolKind::Max => o.iter_mut().zip(src).for_each(|(o, &x)| *o = o.max(x)),
                                PoolKind::Avg { .. } => o.iter_mut().zip(src).for_each(|(o, &x)| *o += x),
                            }
                        }
                    }
                    let div = match self.kind {
                        PoolKind::Avg { count_include_pad: true } => padded,
                        _ => valid,
                    };
                    if valid == 0 {
                        o.fill(0.0);
                    } else if let PoolKind::Avg { .. } = self.kind {
                        let inv = 1.0 / div as f32;
                        o.iter_mut().for_each(|x| *x *= inv);
                    }
                }
            }
        }
    }
}

/// GlobalAveragePool: NHWC `[n, hw, c]` → `[n, c]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalAvgPool {
    pub n: usize,
    /// h·w.
    pub hw: usize,
    pub c: usize,
}

impl GlobalAvgPool {
    pub const fn input_len(&self) -> usize {
        self.n * self.hw * self.c
    }
    pub const fn output_len(&self) -> usize {
        self.n * self.c
    }

    pub fn run(&self, input: &[f32], out: &mut [f32]) {
        assert_eq!(input.len(), self.input_len(), "global pool: input length");
        assert_eq!(out.len(), self.output_len(), "global pool: output length");
        let (hw, c) = (self.hw, self.c);
        let inv = 1.0 / hw as f32;
        for b in 0..self.n {
            let o = &mut out[b * c..(b + 1) * c];
            o.fill(0.0);
            for p in 0..hw {
                let src = &input[(b * hw + p) * c..][..c];
                o.iter_mut().zip(src).for_each(|(o, &x)| *o += x);
            }
            o.iter_mut().for_each(|x| *x *= inv);
        }
    }
}
