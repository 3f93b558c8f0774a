//! Layout changes: general N-d transpose and the NCHW ↔ NHWC conversions.

use super::{ensure, KernelError};

/// ONNX Transpose: `out[i_perm[0], …] = input[i_0, …]`, i.e. output dim `d` is input dim
/// `perm[d]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transpose<'a> {
    pub shape: &'a [usize],
    pub perm: &'a [usize],
}

impl Transpose<'_> {
    pub fn check(&self) -> Result<(), KernelError> {
        let r = self.shape.len();
        let mut seen = vec![false; r];
        ensure!(self.perm.len() == r, "Transpose: perm {:?} has not rank {r}", self.perm);
        for &p in self.perm {
            ensure!(p < r && !seen[p], "Transpose: perm {:?} is not a permutation", self.perm);
            seen[p] = true;
        }
        Ok(())
    }

    pub fn out_shape(&self) -> Vec<usize> {
        self.perm.iter().map(|&p| self.shape[p]).collect()
    }

    pub fn run(&self, input: &[f32], out: &mut [f32]) {
        self.check().expect("Transpose: invalid perm");
        let n: usize = self.shape.iter().product();
        assert_eq!(input.len(), n, "transpose: input length");
        assert_eq!(out.len(), n, "transpose: output length");
        let r = self.shape.len();
        if n == 0 {
            return;
        }
        if r == 0 {
            out[0] = input[0];
            return;
        }
        // The conversions at a model's edges (NCHW ↔ NHWC) have few channels on one side; the
        // general walk below spends ~10 cycles per float on them (0.5 ms for a 224×224 input).
        if r == 4 && (self.perm == [0, 2, 3, 1] || self.perm == [0, 3, 1, 2]) {
            let to_nhwc = self.perm[1] == 2;
            let [nb, d1, d2, d3] = [self.shape[0], self.shape[1], self.shape[2], self.shape[3]];
            // Channels and pixels per image, as the input holds them.
            let (c, hw) = if to_nhwc { (d1, d2 * d3) } else { (d3, d1 * d2) };
            for (src, dst) in input.chunks_exact(c * hw).zip(out.chunks_exact_mut(c * hw)).take(nb) {
                if to_nhwc {
                    for (ch, plane) in src.chunks_exact(hw).enumerate() {
                        for (p, &v) in plane.iter().enumerate() {
                            dst[p * c + ch] = v;
                        }
                    }
                } else {
                    for (ch, plane) in dst.chunks_exact_mut(hw).enumerate() {
                        for (p, o) in plane.iter_mut().enumerate() {
                            *o = src[p * c + ch];
                        }
                    }
                }
            }
            return;
        }
        let mut in_strides = vec![1; r];
        for d in (0..r.saturating_sub(1)).rev() {
            in_strides[d] = in_strides[d + 1] * self.shape[d + 1];
        }
        let oshape = self.out_shape();
        // Input stride of each output dim.
        let st: Vec<usize> = self.perm.iter().map(|&p| in_strides[p]).collect();
        let inner = oshape[r - 1];
        let si = st[r - 1];
        let mut idx = vec![0; r - 1];
        let mut src = 0;
        for row in out.chunks_exact_mut(inner) {
            for (j, o) in row.iter_mut().enumerate() {
                *o = input[src + j * si];
            }
            for d in (0..r - 1).rev() {
                idx[d] += 1;
                src += st[d];
                if idx[d] < oshape[d] {
                    break;
                }
                src -= st[d] * oshape[d];
                idx[d] = 0;
            }
        }
    }
}

/// `[n, c, h, w]` → `[n, h, w, c]`.
pub fn nchw_to_nhwc(n: usize, c: usize, h: usize, w: usize, input: &[f32], out: &mut [f32]) {
    Transpose { shape: &[n, c, h, w], perm: &[0, 2, 3, 1] }.run(input, out)
}

/// `[n, h, w, c]` → `[n, c, h, w]`.
pub fn nhwc_to_nchw(n: usize, c: usize, h: usize, w: usize, input: &[f32], out: &mut [f32]) {
    Transpose { shape: &[n, h, w, c], perm: &[0, 3, 1, 2] }.run(input, out)
}
