//! Fully connected layer gradients for `y [m, n] = x [m, k] · W + b` with `W` stored `[k, n]`,
//! or `[n, k]` when `trans` (ONNX Gemm `transB = 1`, PyTorch's Linear). Gradients are in the
//! stored layout.

use super::super::gemm;
use super::super::{Act, Dense};

/// `dx [m, k] = dy [m, n] · Wᵀ`.
pub fn input_grad(d: &Dense, dy: &[f32], w: &[f32], trans: bool, dx: &mut [f32], threads: usize) {
    assert_eq!(dy.len(), d.m * d.n, "dense input_grad: dy length");
    assert_eq!(w.len(), d.k * d.n, "dense input_grad: weight length");
    assert_eq!(dx.len(), d.m * d.k, "dense input_grad: dx length");
    // B'[j, i] (j over n, i over k) = W[i, j]: the stored [k, n] read transposed, or [n, k] as is.
    let mut packed = vec![0.0; gemm::packed_len(d.n, d.k)];
    if trans {
        gemm::pack_strided(d.n, d.k, w, d.k, false, &mut packed);
    } else {
        gemm::pack_strided(d.n, d.k, w, d.n, true, &mut packed);
    }
    gemm::matmul(d.m, d.n, d.k, dy, d.n, &packed, None, Act::None, dx, d.k, threads);
}

/// `dW = xᵀ·dy` (`[k, n]`), or `dyᵀ·x` (`[n, k]`) when `trans`.
pub fn weight_grad(d: &Dense, x: &[f32], dy: &[f32], trans: bool, dw: &mut [f32], threads: usize) {
    assert_eq!(x.len(), d.m * d.k, "dense weight_grad: x length");
    assert_eq!(dy.len(), d.m * d.n, "dense weight_grad: dy length");
    assert_eq!(dw.len(), d.k * d.n, "dense weight_grad: dw length");
    if trans {
        super::matmul::at_b(d.m, d.n, d.k, dy, d.n, x, d.k, dw, threads);
    } else {
        super::matmul::at_b(d.m, d.k, d.n, x, d.k, dy, d.n, dw, threads);
    }
}
