//! The classifier head fused: NHWC `[n, h·w, c]` → global average pool → dense `[c, classes]`
//! (+ bias) → optional softmax, without materializing the pooled tensor in the arena.
//!
//! At batch 1 the dense layer is a matrix-vector product that streams the whole weight matrix
//! (4 MB for MobileNet's 1024 × 1000): with threads, the classes are split by weight panels so
//! each thread streams its own part of the matrix.

use super::gemm::{self, Mm, NR};
use super::softmax::softmax_strided;
use super::{isa, Act};

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
        self.run_threads(input, packed, bias, out, 1);
    }

    /// Runs the head with the dense layer's weight panels split over `threads` threads
    /// (bit-identical for any count: each class is summed by one thread in the same order).
    pub fn run_threads(&self, input: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32], threads: usize) {
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
            // Small layers are not worth a thread.
            let threads = if c * k < 200_000 { 1 } else { threads };
            let mm = Mm {
                m: nb,
                n: k,
                kc: c,
                a: pooled.as_ptr(),
                lda: c,
                a_chunk: 0,
                b: packed.as_ptr(),
                panel_stride: c * NR,
                c: dst.as_mut_ptr(),
                ldc: k,
                bias: bias.as_ptr(),
                act: Act::None,
                first: true,
                last: true,
            };
            // SAFETY: `pooled` holds nb rows of c, `dst` nb rows of k; `packed` and `bias` were
            // checked against c and k at entry.
            unsafe { gemm::run_panels(isa::current(), &mm, threads) };
            if self.softmax {
                for row in dst.chunks_exact_mut(k) {
                    softmax_strided(row, k, 1, false);
                }
            }
            b0 += nb;
        }
    }
}
