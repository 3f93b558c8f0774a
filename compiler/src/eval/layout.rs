//! Ops that move data without arithmetic: Flatten, Reshape, Transpose, Pad, Concat.

use super::{strides, Ctx};
use crate::error::Result;
use crate::graph::Tensor;

/// [d0..d(axis-1)] and [d(axis)..] each collapsed to one dimension.
pub(super) fn flatten(ctx: &Ctx, axis: i64, args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 1, 1)?;
    let x = args[0];
    let ax = ctx.axis(axis, x.shape.len(), true)?;
    let shape = vec![x.shape[..ax].iter().product(), x.shape[ax..].iter().product()];
    Ok(Tensor::new(shape, x.data.clone()))
}

/// The output shape of an ONNX Reshape: 0 copies the input dimension (unless `allowzero`),
/// one -1 is inferred from the element count.
pub fn reshape_target(input: &[usize], target: &[i64], allowzero: bool) -> std::result::Result<Vec<usize>, String> {
    let numel: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or_else(|| format!("target {target:?} copies dimension {i}, which input {input:?} lacks"))?),
            d if d >= 0 => out.push(d as usize),
            _ => return Err(format!("target {target:?} has an invalid dimension {d}")),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer {
        if known == 0 || !numel.is_multiple_of(known) {
            return Err(format!("cannot infer the -1 of {target:?} for input {input:?}"));
        }
        out[i] = numel / known;
    } else if known != numel {
        return Err(format!("target {target:?} has {known} elements, input {input:?} has {numel}"));
    }
    Ok(out)
}

pub(super) fn reshape(ctx: &Ctx, target: &[i64], allowzero: bool, args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 1, 1)?;
    let x = args[0];
    let shape = reshape_target(&x.shape, target, allowzero).map_err(|m| ctx.err(m))?;
    Ok(Tensor::new(shape, x.data.clone()))
}

/// y.shape[i] = x.shape[perm[i]]; an empty perm reverses the axes (the ONNX default).
pub(super) fn transpose(ctx: &Ctx, perm: &[usize], args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 1, 1)?;
    let x = args[0];
    let rank = x.shape.len();
    let perm: Vec<usize> = if perm.is_empty() { (0..rank).rev().collect() } else { perm.to_vec() };
    let mut seen = vec![false; rank];
    if perm.len() != rank || perm.iter().any(|&p| p >= rank || std::mem::replace(&mut seen[p], true)) {
        return Err(ctx.err(format!("perm {perm:?} is not a permutation of the {rank} axes of {:?}", x.shape)));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let (sx, sy) = (strides(&x.shape), strides(&shape));
    let total = x.data.len();
    let data = (0..total)
        .map(|flat| {
            let src: usize = (0..rank).map(|d| (flat / sy[d]) % shape[d] * sx[perm[d]]).sum();
            x.data[src]
        })
        .collect();
    Ok(Tensor::new(shape, data))
}

/// Constant-mode Pad; negative pads crop.
pub(super) fn pad(ctx: &Ctx, pads: &[i64], value: f32, args: &[&Tensor]) -> Result<Tensor> {
    ctx.arity(args, 1, 1)?;
    let x = args[0];
    let rank = x.shape.len();
    if pads.len() != 2 * rank {
        return Err(ctx.err(format!("pads {pads:?} must have 2 × rank = {} values for input {:?}", 2 * rank, x.shape)));
    }
    let shape = (0..rank)
        .map(|d| {
            let s = x.shape[d] as i64 + pads[d] + pads[d + rank];
            usize::try_from(s).map_err(|_| ctx.err(format!("pads {pads:?} crop axis {d} of {:?} below zero", x.shape)))
        })
        .collect::<Result<Vec<usize>>>()?;
    let (sx, sy) = (strides(&x.shape), strides(&shape));
    let total: usize = shape.iter().product();
    let data = (0..total)
        .map(|flat| {
            let mut src = 0;
            for d in 0..rank {
                let i = ((flat / sy[d]) % shape[d]) as i64 - pads[d];
                if i < 0 || i >= x.shape[d] as i64 {
                    return value;
                }
                src += i as usize * sx[d];
            }
            x.data[src]
        })
        .collect();
    Ok(Tensor::new(shape, data))
}

pub(super) fn concat(ctx: &Ctx, axis: i64, args: &[&Tensor]) -> Result<Tensor> {
    if args.is_empty() {
        return Err(ctx.err("Concat needs at least one input"));
    }
    let rank = args[0].shape.len();
    let ax = ctx.axis(axis, rank, false)?;
    for t in args {
        let same = t.shape.len() == rank && (0..rank).all(|d| d == ax || t.shape[d] == args[0].shape[d]);
        if !same {
            return Err(ctx.err(format!("input shapes {:?} differ off axis {ax}", args.iter().map(|t| &t.shape).collect::<Vec<_>>())));
        }
    }
    let mut shape = args[0].shape.clone();
    shape[ax] = args.iter().map(|t| t.shape[ax]).sum();
    let outer: usize = shape[..ax].iter().product();
    let mut data = Vec::with_capacity(shape.iter().product());
    for o in 0..outer {
        for t in args {
            let chunk: usize = t.shape[ax..].iter().product();
            data.extend_from_slice(&t.data[o * chunk..(o + 1) * chunk]);
        }
    }
    Ok(Tensor::new(shape, data))
}
