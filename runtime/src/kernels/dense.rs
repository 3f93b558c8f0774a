//! Fully connected layers and ONNX Gemm / MatMul, all on the packed matrix product.

use super::gemm::{self, Mm, NR};
use super::threads::Split;
use super::{ensure, isa, Act, KernelError};

/// A fully connected layer: `out[m, n] = act(input[m, k] · W[k, n] + bias[n])`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dense {
    /// Rows (the batch).
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub act: Act,
}

impl Dense {
    pub const fn input_len(&self) -> usize {
        self.m * self.k
    }
    pub const fn output_len(&self) -> usize {
        self.m * self.n
    }
    pub const fn packed_weights_len(&self) -> usize {
        gemm::packed_len(self.k, self.n)
    }
    pub const fn mult_adds(&self) -> usize {
        self.m * self.k * self.n
    }

    /// Packs W given as `[k, n]`, or `[n, k]` when `trans` (ONNX Gemm `transB = 1`, PyTorch's
    /// Linear).
    pub fn pack_weights(&self, w: &[f32], trans: bool) -> Vec<f32> {
        gemm::pack(self.k, self.n, w, trans)
    }

    #[inline]
    pub fn run(&self, input: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32]) {
        self.run_threads(input, packed, bias, out, 1)
    }

    /// Runs the layer split over `threads` threads: by rows (the batch), or by panels of 16
    /// columns when the rows are few (at batch 1 the layer is a matrix-vector product bound by
    /// streaming the weights: each thread streams its share).
    #[inline]
    pub fn run_threads(&self, input: &[f32], packed: &[f32], bias: &[f32], out: &mut [f32], threads: usize) {
        assert_eq!(input.len(), self.input_len(), "dense: input length");
        assert_eq!(packed.len(), self.packed_weights_len(), "dense: packed length");
        assert_eq!(bias.len(), self.n, "dense: bias length");
        assert_eq!(out.len(), self.output_len(), "dense: output length");
        let (m, k, n) = (self.m, self.k, self.n);
        match Split::choose(m, n, self.mult_adds(), threads) {
            Split::Serial => gemm::matmul(m, k, n, input, k, packed, Some(bias), self.act, out, n, 1),
            Split::Rows => gemm::matmul(m, k, n, input, k, packed, Some(bias), self.act, out, n, threads),
            Split::Panels => {
                let mm = Mm {
                    m,
                    n,
                    kc: k,
                    a: input.as_ptr(),
                    lda: k,
                    a_chunk: 0,
                    b: packed.as_ptr(),
                    panel_stride: k * NR,
                    c: out.as_mut_ptr(),
                    ldc: n,
                    bias: bias.as_ptr(),
                    act: self.act,
                    first: true,
                    last: true,
                };
                // SAFETY: lengths checked above.
                unsafe { gemm::run_panels(isa::current(), &mm, threads) };
            }
        }
    }
}

/// How ONNX Gemm's C broadcasts to `[m, n]` (unidirectional broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmC {
    /// No C input.
    None,
    /// Shape `[]` or `[1]` or `[1, 1]`.
    Scalar,
    /// Shape `[n]` or `[1, n]`: a bias per column.
    Row,
    /// Shape `[m, 1]`: one value per row.
    Col,
    /// Shape `[m, n]`.
    Full,
}

impl GemmC {
    /// Classifies C's shape for a product of `m × n`.
    pub fn from_shape(shape: &[usize], m: usize, n: usize) -> Result<GemmC, KernelError> {
        let dims: Vec<usize> = shape.to_vec();
        Ok(match dims.as_slice() {
            [] | [1] | [1, 1] => GemmC::Scalar,
            [x] if *x == n => GemmC::Row,
            [1, x] if *x == n => GemmC::Row,
            [x, 1] if *x == m => GemmC::Col,
            [x, y] if *x == m && *y == n => GemmC::Full,
            _ => return Err(KernelError(format!("Gemm: C of shape {shape:?} does not broadcast to [{m}, {n}]"))),
        })
    }

    /// Length of C for this kind.
    pub const fn len(&self, m: usize, n: usize) -> usize {
        match self {
            GemmC::None => 0,
            GemmC::Scalar => 1,
            GemmC::Row => n,
            GemmC::Col => m,
            GemmC::Full => m * n,
        }
    }
}

/// ONNX Gemm: `out = act(alpha · A' · B' + beta · C)` with `A' = transA ? Aᵀ : A` (`[m, k]`)
/// and `B' = transB ? Bᵀ : B` (`[k, n]`). B is packed (with alpha folded in); A is an
/// activation; C is given in its own (broadcastable) shape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gemm {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub alpha: f32,
    pub beta: f32,
    pub c: GemmC,
    pub act: Act,
}

impl Gemm {
    pub const fn a_len(&self) -> usize {
        self.m * self.k
    }
    pub const fn output_len(&self) -> usize {
        self.m * self.n
    }
    pub const fn packed_b_len(&self) -> usize {
        gemm::packed_len(self.k, self.n)
    }
    pub const fn c_len(&self) -> usize {
        self.c.len(self.m, self.n)
    }

    /// Packs B in its ONNX layout (`[k, n]`, or `[n, k]` with `trans_b`), alpha folded in.
    pub fn pack_b(&self, b: &[f32]) -> Vec<f32> {
        assert_eq!(b.len(), self.k * self.n, "gemm: B length");
        let (k, n, alpha) = (self.k, self.n, self.alpha);
        let mut out = vec![0.0; self.packed_b_len()];
        if self.trans_b {
            gemm::pack_into(k, n, |kk, j| alpha * b[j * k + kk], &mut out);
        } else {
            gemm::pack_into(k, n, |kk, j| alpha * b[kk * n + j], &mut out);
        }
        out
    }

    /// Runs the product. With `trans_a`, A is first transposed into a temporary buffer (the
    /// only kernel here that allocates; lowering avoids it for the FC layers of CNNs).
    pub fn run(&self, a: &[f32], packed_b: &[f32], c: &[f32], out: &mut [f32]) {
        assert_eq!(a.len(), self.a_len(), "gemm: A length");
        assert_eq!(c.len(), self.c_len(), "gemm: C length");
        assert_eq!(out.len(), self.output_len(), "gemm: output length");
        let (m, k, n) = (self.m, self.k, self.n);
        let at;
        let a = if self.trans_a {
            at = transpose2(a, k, m);
            &at[..]
        } else {
            a
        };
        let fused_bias = self.c == GemmC::Row && self.beta == 1.0;
        if fused_bias || self.c == GemmC::None || self.beta == 0.0 {
            let bias = if fused_bias { Some(c) } else { None };
            gemm::matmul(m, k, n, a, k, packed_b, bias, self.act, out, n, 1);
            return;
        }
        gemm::matmul(m, k, n, a, k, packed_b, None, Act::None, out, n, 1);
        let beta = self.beta;
        for i in 0..m {
            for j in 0..n {
                let cv = match self.c {
                    GemmC::Scalar => c[0],
                    GemmC::Row => c[j],
                    GemmC::Col => c[i],
                    GemmC::Full => c[i * n + j],
                    GemmC::None => 0.0,
                };
                let o = &mut out[i * n + j];
                *o = self.act.apply(*o + beta * cv);
            }
        }
    }
}

/// `[rows, cols]` → `[cols, rows]`.
fn transpose2(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = x[r * cols + c];
        }
    }
    t
}

/// ONNX MatMul (numpy `matmul`): the last two dims multiply, leading dims broadcast; a 1-D A
/// is a row `[1, k]` and a 1-D B a column `[k, 1]` (that dim is dropped from the output).
/// Both operands are activations, so B is packed at run time (this kernel allocates).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatMul<'a> {
    pub a_shape: &'a [usize],
    pub b_shape: &'a [usize],
}

impl MatMul<'_> {
    /// The output shape, or an error if the shapes do not multiply or broadcast.
    pub fn out_shape(&self) -> Result<Vec<usize>, KernelError> {
        let (a, b) = (self.a_shape, self.b_shape);
        ensure!(!a.is_empty() && !b.is_empty(), "MatMul: scalar operands are not allowed");
        let (m, ka) = if a.len() == 1 { (1, a[0]) } else { (a[a.len() - 2], a[a.len() - 1]) };
        let (kb, n) = if b.len() == 1 { (b[0], 1) } else { (b[b.len() - 2], b[b.len() - 1]) };
        ensure!(ka == kb, "MatMul: inner dimensions differ ({a:?} × {b:?})");
        let ba = &a[..a.len().saturating_sub(2)];
        let bb = &b[..b.len().saturating_sub(2)];
        let mut out = super::elementwise::broadcast_shape(ba, bb)
            .ok_or_else(|| KernelError(format!("MatMul: batch dims of {a:?} and {b:?} do not broadcast")))?;
        if a.len() > 1 {
            out.push(m);
        }
        if b.len() > 1 {
            out.push(n);
        }
        Ok(out)
    }

    /// Runs the batched product (shapes must be valid: see [`MatMul::out_shape`]).
    pub fn run(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        let out_shape = self.out_shape().expect("MatMul: invalid shapes");
        let (sa, sb) = (self.a_shape, self.b_shape);
        assert_eq!(a.len(), sa.iter().product::<usize>(), "MatMul: A length");
        assert_eq!(b.len(), sb.iter().product::<usize>(), "MatMul: B length");
        assert_eq!(out.len(), out_shape.iter().product::<usize>(), "MatMul: output length");
        let (m, k) = if sa.len() == 1 { (1, sa[0]) } else { (sa[sa.len() - 2], sa[sa.len() - 1]) };
        let n = if sb.len() == 1 { 1 } else { sb[sb.len() - 1] };
        let ba = &sa[..sa.len().saturating_sub(2)];
        let bb = &sb[..sb.len().saturating_sub(2)];
        let batch = super::elementwise::broadcast_shape(ba, bb).unwrap_or_default();
        let nb: usize = batch.iter().product();
        let a_idx = super::elementwise::broadcast_index_map(ba, &batch);
        let b_idx = super::elementwise::broadcast_index_map(bb, &batch);
        let mut packed = vec![0.0; gemm::packed_len(k, n)];
        let mut last_b = usize::MAX;
        for t in 0..nb {
            let (ia, ib) = (a_idx[t], b_idx[t]);
            if ib != last_b {
                let bm = &b[ib * k * n..(ib + 1) * k * n];
                gemm::pack_into(k, n, |kk, j| bm[kk * n + j], &mut packed);
                last_b = ib;
            }
            gemm::matmul(m, k, n, &a[ia * m * k..(ia + 1) * m * k], k, &packed, None, Act::None, &mut out[t * m * n..(t + 1) * m * n], n, 1);
        }
    }
}
