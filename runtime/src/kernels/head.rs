//! The classifier head fused: NHWC `[n, h·w, c]` → global average pool → dense `[c, classes]`
//! (+ bias) → optional softmax, without materializing the pooled tensor in the arena.

use super::gemm;
use super::softmax::softmax_strided;
use super::Act;

/// Pooled rows held on the stack at once.
const POOLED_FLOATS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub n: usize,
    /// h·w of the input.
    pub hw: usize,
    pub c: usize,
    pub classes: usize,
    pub softmax: bool,
}

impl Head {
    pub const fn input_len(&self) -> usize {
        self.n * self.hw * self.c
    }
    pub const fn output_len(&self) -> usize {
        self.n * self.classes
    }
    pub const fn packed_weights_len(&self) -> usize {
        gemm::packed_len(self.c, self.classes)
    }

    /// Packs the dense weights given as `[c, classes]`, or `[classes, c]` when `trans`.
    pub fn pack_weights(&self, w: &[f32], trans: bool) -> Vec<f32> {
        gemm::pack(self.c, self.classes, w, trans)
    }

    pub fn run(&self, input: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32]) {
        assert_eq!(input.len(), self.input_len(), "head: input length");
        assert_eq!(packed.len(), self.packed_weights_len(), "head: packed length");
        assert_eq!(bias.len(), self.classes, "head: bias length");
        assert_eq!(out.len(), self.output_len(), "head: output length");
        let (hw, c, k) = (self.hw, self.c, self.classes);
        let mut stack = [0.0f32; POOLED_FLOATS];
        let mut heap = Vec::new();
        let pooled: &mut [f32] = if c <= POOLED_FLOATS {
            &mut stack[..]
        } else {
            heap.resize(c, 0.0);
            &mut heap[..]
        };
        let rows = (pooled.len() / c.max(1)).max(1);
        let inv = 1.0 / hw as f32;
        let mut b0 = 0;
        while b0 < self.n {
            let nb = rows.min(self.n - b0);
            for i in 0..nb {
                let o = &mut pooled[i * c..(i + 1) * c];
                o.fill(0.0);
                for p in 0..hw {
                    let src = &input[((b0 + i) * hw + p) * c..][..c];
                    o.iter_mut().zip(src).for_each(|(o, &x)| *o += x);
                }
                o.iter_mut().for_each(|x| *x *= inv);
            }
            let dst = &mut out[b0 * k..(b0 + nb) * k];
            gemm::matmul(nb, c, k, &pooled[..nb * c], c, packed, Some(bias), Act::None, dst, k, 1);
            if self.softmax {
                for row in dst.chunks_exact_mut(k) {
                    softmax_strided(row, k, 1, false);
                }
            }
            b0 += nb;
        }
    }
}
