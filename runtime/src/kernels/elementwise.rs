//! Element-wise ops on row-major tensors: Add/Sub/Mul/Div with numpy (multidirectional)
//! broadcasting and a fused activation, and the standalone activations (Relu, Clip).

use super::{ensure, Act, KernelError};

/// A binary element-wise operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    #[inline(always)]
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
        }
    }
}

/// `out = act(a op b)` with both shapes broadcast to the output shape (numpy rules).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Binary<'a> {
    pub op: BinOp,
    pub a_shape: &'a [usize],
    pub b_shape: &'a [usize],
    pub act: Act,
}

/// The numpy broadcast of two shapes, or `None` if they are incompatible.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for (i, o) in out.iter_mut().enumerate() {
        let da = if i + a.len() >= r { a[i + a.len() - r] } else { 1 };
        let db = if i + b.len() >= r { b[i + b.len() - r] } else { 1 };
        *o = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return None;
        };
    }
    Some(out)
}

/// Strides (in elements) of `shape` viewed in the broadcast shape `out` (0 on broadcast dims).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let r = out.len();
    let mut strides = vec![0; r];
    let mut s = 1;
    for i in (0..shape.len()).rev() {
        let oi = i + r - shape.len();
        strides[oi] = if shape[i] == 1 { 0 } else { s };
        s *= shape[i];
    }
    strides
}

/// For every flat index of `out` (a broadcast of `shape`), the flat index into `shape`.
pub fn broadcast_index_map(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let strides = broadcast_strides(shape, out);
    let total: usize = out.iter().product();
    let mut map = Vec::with_capacity(total);
    let mut idx = vec![0; out.len()];
    for _ in 0..total {
        map.push(idx.iter().zip(&strides).map(|(i, s)| i * s).sum());
        for d in (0..out.len()).rev() {
            idx[d] += 1;
            if idx[d] < out[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    map
}

impl Binary<'_> {
    /// The output shape, or an error if the shapes do not broadcast.
    pub fn out_shape(&self) -> Result<Vec<usize>, KernelError> {
        let s = broadcast_shape(self.a_shape, self.b_shape);
        ensure!(s.is_some(), "{:?}: shapes {:?} and {:?} do not broadcast", self.op, self.a_shape, self.b_shape);
        Ok(s.unwrap_or_default())
    }

    /// Runs the op; `out` may not alias the inputs (use [`Binary::run_inplace`] for `a += b`).
    pub fn run(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        let shape = self.out_shape().expect("Binary: shapes do not broadcast");
        assert_eq!(a.len(), self.a_shape.iter().product::<usize>(), "binary: A length");
        assert_eq!(b.len(), self.b_shape.iter().product::<usize>(), "binary: B length");
        assert_eq!(out.len(), shape.iter().product::<usize>(), "binary: output length");
        let (op, act) = (self.op, self.act);
        if a.len() == out.len() && b.len() == out.len() {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = act.apply(op.apply(x, y));
            }
            return;
        }
        let sa = broadcast_strides(self.a_shape, &shape);
        let sb = broadcast_strides(self.b_shape, &shape);
        broadcast_walk(&shape, &sa, &sb, |o, ia, ib, inner, (ka, kb)| {
            let dst = &mut out[o..o + inner];
            match (ka, kb) {
                (1, 1) => {
                    for ((d, &x), &y) in dst.iter_mut().zip(&a[ia..ia + inner]).zip(&b[ib..ib + inner]) {
                        *d = act.apply(op.apply(x, y));
                    }
                }
                (1, 0) => {
                    let y = b[ib];
                    for (d, &x) in dst.iter_mut().zip(&a[ia..ia + inner]) {
                        *d = act.apply(op.apply(x, y));
                    }
                }
                (0, 1) => {
                    let x = a[ia];
                    for (d, &y) in dst.iter_mut().zip(&b[ib..ib + inner]) {
                        *d = act.apply(op.apply(x, y));
                    }
                }
                _ => {
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = act.apply(op.apply(a[ia + j * ka], b[ib + j * kb]));
                    }
                }
            }
        });
    }

    /// `a = act(a op b)` where `a` already has the output shape (residual adds in place).
    pub fn run_inplace(&self, a: &mut [f32], b: &[f32]) {
        let shape = self.out_shape().expect("Binary: shapes do not broadcast");
        assert_eq!(shape.as_slice(), self.a_shape, "binary in place: A must have the output shape");
        assert_eq!(b.len(), self.b_shape.iter().product::<usize>(), "binary: B length");
        let (op, act) = (self.op, self.act);
        let sa = broadcast_strides(self.a_shape, &shape);
        let sb = broadcast_strides(self.b_shape, &shape);
        broadcast_walk(&shape, &sa, &sb, |o, _, ib, inner, (_, kb)| {
            for (j, d) in a[o..o + inner].iter_mut().enumerate() {
                *d = act.apply(op.apply(*d, b[ib + j * kb]));
            }
        });
    }
}

/// Walks the output in rows of its last dimension: `f(out_offset, a_offset, b_offset, len,
/// (a_inner_stride, b_inner_stride))`.
fn broadcast_walk(shape: &[usize], sa: &[usize], sb: &[usize], mut f: impl FnMut(usize, usize, usize, usize, (usize, usize))) {
    let r = shape.len();
    if r == 0 {
        f(0, 0, 0, 1, (0, 0));
        return;
    }
    let inner = shape[r - 1];
    let outer: usize = shape[..r - 1].iter().product();
    if inner == 0 {
        return;
    }
    let mut idx = vec![0; r - 1];
    let (mut ia, mut ib) = (0, 0);
    for t in 0..outer {
        f(t * inner, ia, ib, inner, (sa[r - 1], sb[r - 1]));
        for d in (0..r - 1).rev() {
            idx[d] += 1;
            ia += sa[d];
            ib += sb[d];
            if idx[d] < shape[d] {
                break;
            }
            ia -= sa[d] * shape[d];
            ib -= sb[d] * shape[d];
            idx[d] = 0;
        }
    }
}

/// A standalone activation (Relu, Clip): `out = act(input)`.
pub fn activation(act: Act, input: &[f32], out: &mut [f32]) {
    assert_eq!(input.len(), out.len(), "activation: lengths differ");
    for (o, &x) in out.iter_mut().zip(input) {
        *o = act.apply(x);
    }
}

/// `out = a + b`, element by element (an Add of two activations of one shape).
pub fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    assert!(a.len() == out.len() && b.len() == out.len(), "add: lengths differ");
    for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
        *o = p + q;
    }
}

/// `out = x + bias` with one bias value per channel, channels last (`x` is `[.., c]`).
pub fn add_channel_bias(x: &[f32], bias: &[f32], out: &mut [f32]) {
    let c = bias.len();
    assert!(c > 0 && x.len() == out.len() && x.len() % c == 0, "add_channel_bias: lengths");
    for (o, i) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        for ((o, &i), &b) in o.iter_mut().zip(i).zip(bias) {
            *o = i + b;
        }
    }
}

/// `dst += src` (summing the gradient contributions of a value read by several ops).
pub fn accumulate(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "accumulate: lengths differ");
    dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
}

#[cfg(test)]
mod training_op_tests {
    use super::*;

    #[test]
    fn add_bias_and_accumulate() {
        let (a, b) = ([1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]);
        let mut y = [0.0; 4];
        add(&a, &b, &mut y);
        assert_eq!(y, [1.5, 1.0, 5.0, 4.0]);
        add_channel_bias(&a, &[10.0, 20.0], &mut y);
        assert_eq!(y, [11.0, 22.0, 13.0, 24.0]);
        accumulate(&mut y, &b);
        assert_eq!(y, [11.5, 21.0, 15.0, 24.0]);
    }
}
