//! Element-wise ops: activations, broadcasting arithmetic, inference BatchNormalization.

use super::dense::padded_strides;
use super::{strides, Ctx};
use crate::error::Result;
use crate::graph::Tensor;

pub(super) fn unary(ctx: &Ctx, args: &[&Tensor], f: impl Fn(f32) -> f32) -> Result<Tensor> {
    ctx.arity(args, 1, 1)?;
    let x = args[0];
    Ok(Tensor::new(x.shape.clone(), x.data.iter().map(|&v| f(v)).collect()))
}

/// The numpy (multidirectional) broadcast of two shapes, or `None` if they do not broadcast.
pub(super) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], d: usize| if d + s.len() < rank { 1 } else { s[d + s.len() - rank] };
    (0..rank)
        .map(|d| match (dim(a, d), dim(b, d)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// Add / Sub / Mul with numpy broadcasting, computed in f64 and rounded once.
pub(super) fn binary(ctx: &Ctx, args: &[&Tensor], f: impl Fn(f64, f64) -> f64) -> Result<Tensor> {
    ctx.arity(args, 2, 2)?;
    let (a, b) = (args[0], args[1]);
    let shape = broadcast_shape(&a.shape, &b.shape).ok_or_else(|| ctx.err(format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape)))?;
    let (sa, sb, so) = (padded_strides(&a.shape, shape.len()), padded_strides(&b.shape, shape.len()), strides(&shape));
    let total: usize = shape.iter().product();
    let data = (0..total)
        .map(|flat| {
            let (mut ia, mut ib) = (0, 0);
            for d in 0..shape.len() {
                let i = (flat / so[d]) % shape[d];
                ia += i * sa[d];
                ib += i * sb[d];
            }
            f(a.data[ia] as f64, b.data[ib] as f64) as f32
        })
        .collect();
    Ok(Tensor::new(shape, data))
}

/// Inference BatchNormalization over axis 1: y = scale·(x − mean)/√(var + ε) + bias.
pub(super) fn batch_norm(ctx: &Ctx, epsilon: f32, args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 5, 5)?;
    let x = args[0];
    if x.shape.len() < 2 {
        return Err(ctx.err(format!("the input must be [N, C, ...], got shape {:?}", x.shape)));
    }
    let c = x.shape[1];
    for (name, p) in ["scale", "bias", "mean", "var"].iter().zip(&args[1..]) {
        if p.data.len() != c {
            return Err(ctx.err(format!("{name} has shape {:?}, expected [{c}]", p.shape)));
        }
    }
    let (scale, bias, mean, var) = (&args[1].data, &args[2].data, &args[3].data, &args[4].data);
    let inner: usize = x.shape[2..].iter().product();
    let data = x
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = (i / inner) % c;
            let inv = 1.0 / (var[ch] as f64 + epsilon as f64).sqrt();
            (scale[ch] as f64 * (v as f64 - mean[ch] as f64) * inv + bias[ch] as f64) as f32
        })
        .collect();
    Ok(Tensor::new(x.shape.clone(), data))
}
