//! Matrix products, softmax and the fused classifier head.

use super::elementwise::broadcast_shape;
use super::{strides, Ctx};
use crate::error::Result;
use crate::graph::{GemmAttrs, Tensor};

/// ONNX Gemm: Y = alpha·A'·B' + beta·C (C broadcast to [M, N]), then the fused epilogue.
pub(super) fn gemm(ctx: &Ctx, a: &GemmAttrs, args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 2, 3)?;
    let (am, bm) = (args[0], args[1]);
    let (&[a0, a1], &[b0, b1]) = (&am.shape[..], &bm.shape[..]) else {
        return Err(ctx.err(format!("A and B must be 2-D, got {:?} and {:?}", am.shape, bm.shape)));
    };
    let (m, k) = if a.trans_a { (a1, a0) } else { (a0, a1) };
    let (kb, n) = if a.trans_b { (b1, b0) } else { (b0, b1) };
    if k != kb {
        return Err(ctx.err(format!("inner dimensions differ: A {:?} (transA {}) and B {:?} (transB {})", am.shape, a.trans_a, bm.shape, a.trans_b)));
    }
    let c = match args.get(2) {
        Some(c) => Some(broadcast_to(ctx, c, &[m, n])?),
        None => None,
    };
    let at = |i: usize, p: usize| am.data[if a.trans_a { p * a1 + i } else { i * a1 + p }] as f64;
    let bt = |p: usize, j: usize| bm.data[if a.trans_b { j * b1 + p } else { p * b1 + j }] as f64;
    let mut y = Tensor::zeros(vec![m, n]);
    for i in 0..m {
        for j in 0..n {
            let dot: f64 = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
            let mut v = a.alpha as f64 * dot;
            if let Some(c) = &c {
                v += a.beta as f64 * c[i * n + j] as f64;
            }
            y.data[i * n + j] = a.activation.apply(v as f32);
        }
    }
    Ok(y)
}

/// The values of `t` broadcast (numpy rules) to exactly `shape`.
fn broadcast_to(ctx: &Ctx, t: &Tensor, shape: &[usize]) -> Result<Vec<f32>> {
    let b = broadcast_shape(&t.shape, shape).filter(|b| b == shape).ok_or_else(|| ctx.err(format!("{:?} does not broadcast to {:?}", t.shape, shape)))?;
    let src_strides = padded_strides(&t.shape, b.len());
    let total: usize = b.iter().product();
    let out_strides = strides(&b);
    Ok((0..total)
        .map(|flat| {
            let src: usize = (0..b.len()).map(|d| (flat / out_strides[d]) % b[d] * src_strides[d]).sum();
            t.data[src]
        })
        .collect())
}

/// Strides of `shape` right-aligned to `rank` dims, 0 on broadcast (size-1 or missing) dims.
pub(super) fn padded_strides(shape: &[usize], rank: usize) -> Vec<usize> {
    let s = strides(shape);
    let lead = rank - shape.len();
    (0..rank).map(|d| if d < lead || shape[d - lead] == 1 { 0 } else { s[d - lead] }).collect()
}

/// ONNX MatMul (numpy matmul): 1-D operands promoted, batch dimensions broadcast.
pub(super) fn matmul(ctx: &Ctx, args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 2, 2)?;
    let (a, b) = (args[0], args[1]);
    if a.shape.is_empty() || b.shape.is_empty() {
        return Err(ctx.err("MatMul operands must have rank >= 1"));
    }
    let a_shape = if a.shape.len() == 1 { vec![1, a.shape[0]] } else { a.shape.clone() };
    let b_shape = if b.shape.len() == 1 { vec![b.shape[0], 1] } else { b.shape.clone() };
    let (ra, rb) = (a_shape.len(), b_shape.len());
    let (m, k) = (a_shape[ra - 2], a_shape[ra - 1]);
    let (kb, n) = (b_shape[rb - 2], b_shape[rb - 1]);
    if k != kb {
        return Err(ctx.err(format!("inner dimensions differ: {:?} × {:?}", a.shape, b.shape)));
    }
    let batch = broadcast_shape(&a_shape[..ra - 2], &b_shape[..rb - 2]).ok_or_else(|| ctx.err(format!("batch dimensions of {:?} and {:?} do not broadcast", a.shape, b.shape)))?;
    let sa = padded_strides(&a_shape[..ra - 2], batch.len());
    let sb = padded_strides(&b_shape[..rb - 2], batch.len());
    let bstr = strides(&batch);
    let nbatch: usize = batch.iter().product();
    let mut data = vec![0.0f32; nbatch * m * n];
    for bi in 0..nbatch {
        let idx: Vec<usize> = (0..batch.len()).map(|d| (bi / bstr[d]) % batch[d]).collect();
        let ao: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum::<usize>() * m * k;
        let bo: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum::<usize>() * k * n;
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|p| a.data[ao + i * k + p] as f64 * b.data[bo + p * n + j] as f64).sum();
                data[(bi * m + i) * n + j] = dot as f32;
            }
        }
    }
    let mut shape = batch;
    if a.shape.len() > 1 {
        shape.push(m);
    }
    if b.shape.len() > 1 {
        shape.push(n);
    }
    Ok(Tensor::new(shape, data))
}

/// Softmax over `axis` (opset 13 and later). Before opset 13 ONNX coerced the input to 2-D at
/// `axis` and normalized over everything from `axis` on; `opset` selects that meaning.
pub(super) fn softmax(ctx: &Ctx, axis: i64, opset: i64, args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 1, 1)?;
    let x = args[0];
    let rank = x.shape.len();
    let ax = ctx.axis(axis, rank, false)?;
    let (outer, len, inner) = if opset > 0 && opset < 13 {
        (x.shape[..ax].iter().product::<usize>(), x.shape[ax..].iter().product::<usize>(), 1)
    } else {
        (x.shape[..ax].iter().product::<usize>(), x.shape[ax], x.shape[ax + 1..].iter().product::<usize>())
    };
    let mut y = Tensor::zeros(x.shape.clone());
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * len + j) * inner + i;
            let max = (0..len).map(|j| x.data[at(j)] as f64).fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = (0..len).map(|j| (x.data[at(j)] as f64 - max).exp()).sum();
            for j in 0..len {
                y.data[at(j)] = ((x.data[at(j)] as f64 - max).exp() / sum) as f32;
            }
        }
    }
    Ok(y)
}

/// The fused head: global average pool of x [N, C, ...], then y = pooled·wᵀ + b with
/// w [classes, C] and b [classes], then softmax over the classes if asked. Output [N, classes].
/// The pooled means are kept in f64 (a fused kernel never stores them).
pub(super) fn head(ctx: &Ctx, softmax: bool, args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 3, 3)?;
    let (x, w, b) = (args[0], args[1], args[2]);
    if x.shape.len() < 3 {
        return Err(ctx.err(format!("the input must be [N, C, spatial...], got shape {:?}", x.shape)));
    }
    let (n, c) = (x.shape[0], x.shape[1]);
    let area: usize = x.shape[2..].iter().product();
    let &[classes, wc] = &w.shape[..] else {
        return Err(ctx.err(format!("the weight must be [classes, C], got {:?}", w.shape)));
    };
    if wc != c || b.data.len() != classes {
        return Err(ctx.err(format!("input {:?}, weight {:?} and bias {:?} disagree (weight [classes, C], bias [classes])", x.shape, w.shape, b.shape)));
    }
    let mut y = Tensor::zeros(vec![n, classes]);
    for i in 0..n {
        let pooled: Vec<f64> = (0..c).map(|ch| x.data[(i * c + ch) * area..(i * c + ch + 1) * area].iter().map(|&v| v as f64).sum::<f64>() / area as f64).collect();
        let logits: Vec<f64> = (0..classes).map(|j| b.data[j] as f64 + (0..c).map(|ch| pooled[ch] * w.data[j * c + ch] as f64).sum::<f64>()).collect();
        let row = &mut y.data[i * classes..(i + 1) * classes];
        if softmax {
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = logits.iter().map(|l| (l - max).exp()).sum();
            row.iter_mut().zip(&logits).for_each(|(r, l)| *r = ((l - max).exp() / sum) as f32);
        } else {
            row.iter_mut().zip(&logits).for_each(|(r, l)| *r = *l as f32);
        }
    }
    Ok(y)
}
