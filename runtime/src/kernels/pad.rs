//! ONNX Pad, constant mode, on a row-major N-d tensor. Negative pads crop.

use super::{ensure, KernelError};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pad<'a> {
    pub shape: &'a [usize],
    /// ONNX order: all begins, then all ends (`2·rank` values).
    pub pads: &'a [isize],
    pub value: f32,
}

impl Pad<'_> {
    pub fn out_shape(&self) -> Result<Vec<usize>, KernelError> {
        let r = self.shape.len();
        ensure!(self.pads.len() == 2 * r, "Pad: {} pads for rank {r}", self.pads.len());
        let mut out = Vec::with_capacity(r);
        for d in 0..r {
            let s = self.shape[d] as isize + self.pads[d] + self.pads[d + r];
            ensure!(s >= 0, "Pad: pads {:?} crop dim {d} of {:?} below zero", self.pads, self.shape);
            out.push(s as usize);
        }
        Ok(out)
    }

    pub fn run(&self, input: &[f32], out: &mut [f32]) {
        let oshape = self.out_shape().expect("Pad: invalid pads");
        assert_eq!(input.len(), self.shape.iter().product::<usize>(), "pad: input length");
        assert_eq!(out.len(), oshape.iter().product::<usize>(), "pad: output length");
        let r = self.shape.len();
        if out.is_empty() {
            return;
        }
        if r == 0 {
            out[0] = input[0];
            return;
        }
        let mut in_strides = vec![1usize; r];
        for d in (0..r - 1).rev() {
            in_strides[d] = in_strides[d + 1] * self.shape[d + 1];
        }
        let inner = oshape[r - 1];
        let (lo, n_in) = (self.pads[r - 1], self.shape[r - 1] as isize);
        // The output columns that read the input: [c0, c1).
        let c0 = lo.clamp(0, inner as isize) as usize;
        let c1 = (lo + n_in).clamp(0, inner as isize) as usize;
        let mut idx = vec![0usize; r - 1];
        for row in out.chunks_exact_mut(inner) {
            // Input row of this output row, if every outer index lands inside the input.
            let mut src: Option<usize> = Some(0);
            for d in 0..r - 1 {
                let i = idx[d] as isize - self.pads[d];
                if i < 0 || i >= self.shape[d] as isize {
                    src = None;
                    break;
                }
                src = src.map(|s| s + i as usize * in_strides[d]);
            }
            match src {
                Some(s) if c0 < c1 => {
                    row[..c0].fill(self.value);
                    let i0 = (c0 as isize - lo) as usize;
                    row[c0..c1].copy_from_slice(&input[s + i0..s + i0 + (c1 - c0)]);
                    row[c1..].fill(self.value);
                }
                _ => row.fill(self.value),
            }
            for d in (0..r - 1).rev() {
                idx[d] += 1;
                if idx[d] < oshape[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    }
}
