//! Shape inference: fills every tensor's static shape from the inputs and attributes.
//!
//! Runs at import (node by node, so that `Shape` ops can be folded as the graph is built) and
//! again on the whole graph after passes. `auto_pad` is resolved into explicit pads here and
//! then cleared, so every later stage sees only explicit pads. Errors name the node, its op and
//! the shapes that disagree, and say what to do.

use crate::error::{Error, Result};
use crate::graph::{AutoPad, Graph, NodeId, Op, PoolAttrs};

/// Infers the shape of every node output in topological order; resolves `auto_pad` into
/// explicit pads. Errors name the node, its op and the shapes that disagree.
pub fn infer_shapes(g: &mut Graph) -> Result<()> {
    for n in g.topo_order()? {
        infer_node(g, n)?;
    }
    Ok(())
}

/// Infers the output shape of one node from its inputs' current shapes, and stores it (and the
/// op with `auto_pad` resolved, or a default `perm` filled in).
pub fn infer_node(g: &mut Graph, n: NodeId) -> Result<()> {
    let node = g.node(n);
    let inputs: Vec<Vec<usize>> = node.inputs.iter().map(|&t| g.shape(t).to_vec()).collect();
    let (op, shape) = infer_op(&node.name, &node.op, &inputs)?;
    if node.outputs.len() != 1 {
        return Err(Error::shape(&node.name, node.op.name(), format!("has {} outputs; every IR op has exactly one", node.outputs.len())));
    }
    let out = node.outputs[0];
    g.tensors[out].shape = shape;
    g.node_mut(n).op = op;
    Ok(())
}

/// The output shape of `op` on inputs of the given shapes, and the op with its padding made
/// explicit. Pure, so the importer and the passes can ask "what would this produce".
pub fn infer_op(node: &str, op: &Op, inputs: &[Vec<usize>]) -> Result<(Op, Vec<usize>)> {
    let cx = Cx { node, op: op.name(), inputs };
    let mut op = op.clone();
    let shape = match &mut op {
        Op::Conv(a) => {
            cx.arity(2, 3)?;
            let (x, w) = (cx.rank(0, 4, "input X ([N, C, H, W])")?, cx.rank(1, 4, "weight W ([M, C/group, kH, kW])")?);
            if a.group == 0 {
                return Err(cx.err("group is 0; it must be at least 1"));
            }
            // Checked: a hostile group (up to usize::MAX) must not overflow the product.
            if w[0] % a.group != 0 || w[1].checked_mul(a.group) != Some(x[1]) {
                return Err(cx.err(format!(
                    "input {} has {} channels but weight {} with group {} expects {} (W[1] × group) and {} output channels divisible by the group; check the weight or the input's channel dimension",
                    fmt(x), x[1], fmt(w), a.group, w[1] as u128 * a.group as u128, w[0]
                )));
            }
            if [w[2], w[3]] != a.kernel {
                return Err(cx.err(format!("kernel_shape {:?} disagrees with weight {}; fix the kernel_shape attribute", a.kernel, fmt(w))));
            }
            if let Some(b) = inputs.get(2) {
                if b.as_slice() != [w[0]] {
                    return Err(cx.err(format!("bias {} must be [{}] (one per output channel of weight {})", fmt(b), w[0], fmt(w))));
                }
            }
            let (h, pt, pb) = window(&cx, x[2], a.kernel[0], a.strides[0], a.dilations[0], a.pads[0], a.pads[2], a.auto_pad, false, "height")?;
            let (wd, pl, pr) = window(&cx, x[3], a.kernel[1], a.strides[1], a.dilations[1], a.pads[1], a.pads[3], a.auto_pad, false, "width")?;
            a.pads = [pt, pl, pb, pr];
            a.auto_pad = AutoPad::NotSet;
            vec![x[0], w[0], h, wd]
        }
        Op::AveragePool(a) | Op::MaxPool(a) => {
            cx.arity(1, 1)?;
            let x = cx.rank(0, 4, "input X ([N, C, H, W])")?;
            pool(&cx, a, x)?
        }
        Op::GlobalAveragePool => {
            cx.arity(1, 1)?;
            let x = cx.rank(0, 4, "input X ([N, C, H, W])")?;
            vec![x[0], x[1], 1, 1]
        }
        Op::BatchNorm { .. } => {
            cx.arity(5, 5)?;
            let x = &inputs[0];
            if x.len() < 2 {
                return Err(cx.err(format!("input {} needs at least 2 dims [N, C, ...]", fmt(x))));
            }
            for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "var")] {
                if inputs[i].as_slice() != [x[1]] {
                    return Err(cx.err(format!("{what} is {} but input {} has {} channels; it must be [{}]", fmt(&inputs[i]), fmt(x), x[1], x[1])));
                }
            }
            x.clone()
        }
        Op::Relu | Op::Clip { .. } | Op::Identity | Op::Dropout { .. } => {
            cx.arity(1, 1)?;
            inputs[0].clone()
        }
        Op::Softmax { axis } => {
            cx.arity(1, 1)?;
            cx.axis(*axis, inputs[0].len(), false)?;
            inputs[0].clone()
        }
        Op::Flatten { axis } => {
            cx.arity(1, 1)?;
            let x = &inputs[0];
            let a = cx.axis(*axis, x.len(), true)?;
            vec![cx.product(&x[..a])?, cx.product(&x[a..])?]
        }
        Op::Reshape { shape, allowzero } => {
            cx.arity(1, 1)?;
            reshape_target(&inputs[0], shape, *allowzero).map_err(|m| cx.err(m))?
        }
        Op::Gemm(a) => {
            cx.arity(2, 3)?;
            let (pa, pb) = (cx.rank(0, 2, "A")?, cx.rank(1, 2, "B")?);
            let (m, k) = if a.trans_a { (pa[1], pa[0]) } else { (pa[0], pa[1]) };
            let (k2, n) = if a.trans_b { (pb[1], pb[0]) } else { (pb[0], pb[1]) };
            if k != k2 {
                return Err(cx.err(format!(
                    "A {} (transA={}) and B {} (transB={}) disagree on the inner dimension ({k} vs {k2}); check the weight's orientation (transB) or the flattened input size",
                    fmt(pa), a.trans_a as u8, fmt(pb), a.trans_b as u8
                )));
            }
            if let Some(c) = inputs.get(2) {
                if broadcast(c, &[m, n]).as_deref() != Some(&[m, n][..]) {
                    return Err(cx.err(format!("C {} cannot be broadcast to the output [{m}, {n}]", fmt(c))));
                }
            }
            vec![m, n]
        }
        Op::MatMul => {
            cx.arity(2, 2)?;
            matmul(&cx, &inputs[0], &inputs[1])?
        }
        Op::Add | Op::Sub | Op::Mul => {
            cx.arity(2, 2)?;
            broadcast(&inputs[0], &inputs[1]).ok_or_else(|| {
                cx.err(format!(
                    "cannot broadcast {} with {}: aligned from the right, each pair of dims must be equal or one of them 1; check the model's input shapes (fix symbolic dims with --dim NAME=VALUE)",
                    fmt(&inputs[0]),
                    fmt(&inputs[1])
                ))
            })?
        }
        Op::Transpose { perm } => {
            cx.arity(1, 1)?;
            let x = &inputs[0];
            if perm.is_empty() {
                *perm = (0..x.len()).rev().collect();
            }
            let mut seen = vec![false; x.len()];
            if perm.len() != x.len() || perm.iter().any(|&p| p >= x.len() || std::mem::replace(&mut seen[p], true)) {
                return Err(cx.err(format!("perm {:?} is not a permutation of the {} axes of input {}", perm, x.len(), fmt(x))));
            }
            perm.iter().map(|&p| x[p]).collect()
        }
        Op::Pad { pads, .. } => {
            cx.arity(1, 1)?;
            let x = &inputs[0];
            if pads.len() != 2 * x.len() {
                return Err(cx.err(format!("has {} pads but input {} needs 2 × {} (begins, then ends)", pads.len(), fmt(x), x.len())));
            }
            let mut out = Vec::with_capacity(x.len());
            for (i, &d) in x.iter().enumerate() {
                let v = (d as i128) + pads[i] as i128 + pads[i + x.len()] as i128;
                if v <= 0 || v > usize::MAX as i128 {
                    return Err(cx.err(format!("pads {:?} make axis {i} of input {} {v} long; a padded dim must stay positive", pads, fmt(x))));
                }
                out.push(v as usize);
            }
            out
        }
        Op::Concat { axis } => {
            if inputs.is_empty() {
                return Err(cx.err("has no inputs"));
            }
            let r = inputs[0].len();
            let a = cx.axis(*axis, r, false)?;
            let mut out = inputs[0].clone();
            for s in &inputs[1..] {
                if s.len() != r || s.iter().zip(&inputs[0]).enumerate().any(|(i, (p, q))| i != a && p != q) {
                    return Err(cx.err(format!(
                        "inputs {} disagree outside the concatenation axis {a}: all dims but that one must be equal",
                        inputs.iter().map(|s| fmt(s)).collect::<Vec<_>>().join(", ")
                    )));
                }
                out[a] = out[a].checked_add(s[a]).ok_or_else(|| cx.limit(&out))?;
            }
            out
        }
        Op::Head { .. } => {
            cx.arity(3, 3)?;
            let x = cx.rank(0, 4, "input X ([N, C, H, W])")?;
            let w = cx.rank(1, 2, "weight ([classes, C])")?;
            if w[1] != x[1] || inputs[2].as_slice() != [w[0]] {
                return Err(cx.err(format!("input {}, weight {} and bias {} disagree: weight must be [classes, {}] and bias [classes]", fmt(x), fmt(w), fmt(&inputs[2]), x[1])));
            }
            vec![x[0], w[0]]
        }
    };
    cx.product(&shape)?;
    Ok((op, shape))
}

/// The shape a Reshape produces: 0 copies the input's dim at that index (unless `allowzero`),
/// -1 takes what is left. The message says which numbers disagree.
pub fn reshape_target(input: &[usize], shape: &[i64], allowzero: bool) -> std::result::Result<Vec<usize>, String> {
    let numel = checked_product(input).ok_or_else(|| format!("input {} is too large", fmt(input)))?;
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_some() => return Err(format!("target shape {shape:?} has more than one -1")),
            -1 => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or_else(|| format!("target shape {shape:?} copies dim {i} (0) but input {} has only {} dims", fmt(input), input.len()))?),
            s if s < 0 => return Err(format!("target shape {shape:?} has the negative dim {s}")),
            s => out.push(usize::try_from(s).map_err(|_| format!("target dim {s} is too large"))?),
        }
    }
    if allowzero && infer.is_some() && shape.contains(&0) {
        return Err(format!("target shape {shape:?} has both 0 and -1 with allowzero=1, which ONNX forbids"));
    }
    let known = checked_product(&out).ok_or_else(|| format!("target shape {shape:?} is too large"))?;
    if let Some(i) = infer {
        if known == 0 || numel % known != 0 {
            return Err(format!("cannot infer the -1 in {shape:?}: input {} has {numel} elements, not a multiple of {known}", fmt(input)));
        }
        out[i] = numel / known;
    } else if known != numel {
        return Err(format!("target shape {shape:?} has {known} elements but input {} has {numel}; the element counts must match", fmt(input)));
    }
    Ok(out)
}

/// Numpy (multidirectional) broadcasting; None when the shapes are incompatible.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i < r - a.len() { 1 } else { a[i - (r - a.len())] };
        let db = if i < r - b.len() { 1 } else { b[i - (r - b.len())] };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// The product of dims, or None on overflow.
pub fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// `[1, 3, 224, 224]`.
pub fn fmt(shape: &[usize]) -> String {
    format!("[{}]", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

struct Cx<'a> {
    node: &'a str,
    op: &'a str,
    inputs: &'a [Vec<usize>],
}

impl Cx<'_> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::shape(self.node, self.op, message)
    }

    fn limit(&self, shape: &[usize]) -> Error {
        Error::Limit(format!("node '{}' ({}): output shape {} has more elements than can be addressed", self.node, self.op, fmt(shape)))
    }

    fn product(&self, dims: &[usize]) -> Result<usize> {
        checked_product(dims).ok_or_else(|| self.limit(dims))
    }

    fn arity(&self, min: usize, max: usize) -> Result<()> {
        let n = self.inputs.len();
        if n < min || n > max {
            let want = if min == max { format!("{min}") } else { format!("{min} to {max}") };
            return Err(self.err(format!("has {n} inputs; it takes {want}")));
        }
        Ok(())
    }

    /// Input `i`, which must have rank `r` (only 2-D spatial convs and pools are supported).
    fn rank(&self, i: usize, r: usize, what: &str) -> Result<&[usize]> {
        let s = &self.inputs[i];
        if s.len() != r {
            let hint = if r == 4 && (self.op.contains("Conv") || self.op.contains("Pool")) { "; only 2-D (4-D NCHW) convolutions and pools are supported" } else { "" };
            return Err(self.err(format!("{what} must have {r} dims but is {}{hint}", fmt(s))));
        }
        Ok(s)
    }

    /// Normalizes an axis into `0..rank` (or `0..=rank` when `inclusive`, as Flatten allows).
    fn axis(&self, axis: i64, rank: usize, inclusive: bool) -> Result<usize> {
        let hi = rank as i64 + inclusive as i64;
        let a = if axis < 0 { axis + rank as i64 } else { axis };
        if a < 0 || a >= hi {
            return Err(self.err(format!("axis {axis} is out of range for input {} of rank {rank}", fmt(&self.inputs[0]))));
        }
        Ok(a as usize)
    }
}

/// One spatial axis of a conv or pool: (output size, pad begin, pad end), with `auto_pad`
/// resolved. SAME pads so that out = ceil(in / stride); SAME_UPPER puts the odd cell at the end.
#[allow(clippy::too_many_arguments)]
fn window(cx: &Cx, input: usize, k: usize, s: usize, d: usize, pb: usize, pe: usize, auto: AutoPad, ceil: bool, axis: &str) -> Result<(usize, usize, usize)> {
    if k == 0 || s == 0 || d == 0 {
        return Err(cx.err(format!("kernel {k}, stride {s} and dilation {d} along the {axis} must all be at least 1")));
    }
    let ek = (k - 1).checked_mul(d).and_then(|v| v.checked_add(1)).ok_or_else(|| cx.err("dilated kernel is too large"))?;
    let (pb, pe) = match auto {
        AutoPad::NotSet => (pb, pe),
        AutoPad::Valid => (0, 0),
        AutoPad::SameUpper | AutoPad::SameLower => {
            let out = input.div_ceil(s);
            // (out - 1) * s < input, so only "+ ek" can overflow: saturate (the window check
            // below then refuses the absurd kernel).
            let need = ((out - 1) * s).saturating_add(ek).saturating_sub(input);
            let small = need / 2;
            if auto == AutoPad::SameUpper { (small, need - small) } else { (need - small, small) }
        }
    };
    // Checked: pads come from attributes and may be anything up to i64::MAX.
    let padded = input.checked_add(pb).and_then(|v| v.checked_add(pe)).ok_or_else(|| cx.err(format!("the {axis} pads {pb} and {pe} are too large")))?;
    if padded < ek {
        return Err(cx.err(format!(
            "the {axis} kernel (extent {ek} with dilation {d}) is larger than the padded input ({input} + {pb} + {pe} = {padded}); the input is too small for this model (check its resolution with --dim)"
        )));
    }
    let mut out = if ceil { (padded - ek).div_ceil(s) + 1 } else { (padded - ek) / s + 1 };
    // With ceil_mode, a last window that would start inside the end padding is dropped
    // (ONNX 19+ and PyTorch agree on this).
    if ceil && auto == AutoPad::NotSet && (out - 1).saturating_mul(s) >= input + pb {
        out -= 1;
    }
    Ok((out, pb, pe))
}

fn pool(cx: &Cx, a: &mut PoolAttrs, x: &[usize]) -> Result<Vec<usize>> {
    let (h, pt, pb) = window(cx, x[2], a.kernel[0], a.strides[0], a.dilations[0], a.pads[0], a.pads[2], a.auto_pad, a.ceil_mode, "height")?;
    let (w, pl, pr) = window(cx, x[3], a.kernel[1], a.strides[1], a.dilations[1], a.pads[1], a.pads[3], a.auto_pad, a.ceil_mode, "width")?;
    if pt.max(pb) >= a.kernel[0].saturating_mul(a.dilations[0]) || pl.max(pr) >= a.kernel[1].saturating_mul(a.dilations[1]) {
        // A window entirely in the padding has no cell to take the max or mean of.
        return Err(cx.err(format!("pads {:?} must be smaller than the kernel {:?}", [pt, pl, pb, pr], a.kernel)));
    }
    a.pads = [pt, pl, pb, pr];
    a.auto_pad = AutoPad::NotSet;
    Ok(vec![x[0], x[1], h, w])
}

/// Numpy matmul: 1-D operands are promoted (and the promoted dim removed again), leading dims
/// broadcast.
fn matmul(cx: &Cx, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    if a.is_empty() || b.is_empty() {
        return Err(cx.err(format!("operands {} and {} must have at least 1 dim each", fmt(a), fmt(b))));
    }
    let pa: Vec<usize> = if a.len() == 1 { vec![1, a[0]] } else { a.to_vec() };
    let pb: Vec<usize> = if b.len() == 1 { vec![b[0], 1] } else { b.to_vec() };
    let (m, k) = (pa[pa.len() - 2], pa[pa.len() - 1]);
    let (k2, n) = (pb[pb.len() - 2], pb[pb.len() - 1]);
    if k != k2 {
        return Err(cx.err(format!("A {} and B {} disagree on the inner dimension ({k} vs {k2}); check the weight's orientation or the flattened input size", fmt(a), fmt(b))));
    }
    let batch = broadcast(&pa[..pa.len() - 2], &pb[..pb.len() - 2]).ok_or_else(|| cx.err(format!("the batch dims of {} and {} cannot be broadcast", fmt(a), fmt(b))))?;
    let mut out = batch;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Activation, ConvAttrs, GemmAttrs};

    fn conv(k: usize, s: usize, pads: [usize; 4], group: usize, auto_pad: AutoPad) -> Op {
        Op::Conv(ConvAttrs { kernel: [k, k], strides: [s, s], pads, dilations: [1, 1], group, auto_pad, activation: Activation::None })
    }

    fn pool(k: usize, s: usize, pads: [usize; 4], ceil_mode: bool, auto_pad: AutoPad) -> Op {
        Op::MaxPool(PoolAttrs { kernel: [k, k], strides: [s, s], pads, dilations: [1, 1], auto_pad, ceil_mode, count_include_pad: false })
    }

    fn out(op: &Op, inputs: &[&[usize]]) -> Result<Vec<usize>> {
        let v: Vec<Vec<usize>> = inputs.iter().map(|s| s.to_vec()).collect();
        infer_op("n", op, &v).map(|(_, s)| s)
    }

    #[test]
    fn conv_shapes_and_same_padding() {
        assert_eq!(out(&conv(3, 2, [1, 1, 1, 1], 1, AutoPad::NotSet), &[&[1, 3, 224, 224], &[32, 3, 3, 3]]).unwrap(), [1, 32, 112, 112]);
        // Depthwise.
        assert_eq!(out(&conv(3, 1, [1, 1, 1, 1], 32, AutoPad::NotSet), &[&[2, 32, 112, 112], &[32, 1, 3, 3], &[32]]).unwrap(), [2, 32, 112, 112]);
        // SAME_UPPER on an even input with stride 2: total pad 1, at the end.
        let (op, s) = infer_op("n", &conv(3, 2, [0; 4], 1, AutoPad::SameUpper), &[vec![1, 3, 224, 224], vec![8, 3, 3, 3]]).unwrap();
        assert_eq!(s, [1, 8, 112, 112]);
        let Op::Conv(a) = op else { unreachable!() };
        assert_eq!((a.pads, a.auto_pad), ([0, 0, 1, 1], AutoPad::NotSet));
        let (op, _) = infer_op("n", &conv(3, 2, [0; 4], 1, AutoPad::SameLower), &[vec![1, 3, 224, 224], vec![8, 3, 3, 3]]).unwrap();
        let Op::Conv(a) = op else { unreachable!() };
        assert_eq!(a.pads, [1, 1, 0, 0]);
        assert_eq!(out(&conv(3, 1, [9; 4], 1, AutoPad::Valid), &[&[1, 3, 10, 10], &[8, 3, 3, 3]]).unwrap(), [1, 8, 8, 8]);
        // Dilation 2: effective kernel 5.
        let mut op = conv(3, 1, [0; 4], 1, AutoPad::NotSet);
        if let Op::Conv(a) = &mut op {
            a.dilations = [2, 2];
        }
        assert_eq!(out(&op, &[&[1, 1, 7, 9], &[1, 1, 3, 3]]).unwrap(), [1, 1, 3, 5]);
    }

    #[test]
    fn conv_errors_name_node_and_shapes() {
        let e = out(&conv(3, 1, [0; 4], 1, AutoPad::NotSet), &[&[1, 4, 8, 8], &[8, 3, 3, 3]]).unwrap_err().to_string();
        assert!(e.contains("node 'n' (Conv)") && e.contains("[1, 4, 8, 8]") && e.contains("[8, 3, 3, 3]"), "{e}");
        let e = out(&conv(3, 1, [0; 4], 1, AutoPad::NotSet), &[&[1, 3, 8], &[8, 3, 3]]).unwrap_err().to_string();
        assert!(e.contains("only 2-D"), "{e}");
        let e = out(&conv(3, 1, [0; 4], 1, AutoPad::NotSet), &[&[1, 3, 2, 2], &[8, 3, 3, 3]]).unwrap_err().to_string();
        assert!(e.contains("larger than the padded input"), "{e}");
    }

    #[test]
    fn pool_ceil_mode() {
        // ONNX test maxpool_2d_ceil: 4x4, k3 s2 → 2x2 with ceil, 1x1 without.
        assert_eq!(out(&pool(3, 2, [0; 4], true, AutoPad::NotSet), &[&[1, 1, 4, 4]]).unwrap(), [1, 1, 2, 2]);
        assert_eq!(out(&pool(3, 2, [0; 4], false, AutoPad::NotSet), &[&[1, 1, 4, 4]]).unwrap(), [1, 1, 1, 1]);
        // 5x5, k2 s2 pad 1: ceil gives 4 windows but the 4th would start in the padding → 3.
        assert_eq!(out(&pool(2, 2, [1, 1, 1, 1], true, AutoPad::NotSet), &[&[1, 1, 5, 5]]).unwrap(), [1, 1, 3, 3]);
        assert_eq!(out(&pool(3, 2, [0; 4], false, AutoPad::SameUpper), &[&[1, 1, 5, 5]]).unwrap(), [1, 1, 3, 3]);
        assert_eq!(out(&Op::GlobalAveragePool, &[&[2, 7, 5, 5]]).unwrap(), [2, 7, 1, 1]);
    }

    #[test]
    fn gemm_and_matmul() {
        let g = |ta, tb| Op::Gemm(GemmAttrs { trans_a: ta, trans_b: tb, ..Default::default() });
        assert_eq!(out(&g(false, true), &[&[2, 1024], &[1000, 1024], &[1000]]).unwrap(), [2, 1000]);
        assert_eq!(out(&g(true, false), &[&[1024, 2], &[1024, 10]]).unwrap(), [2, 10]);
        assert!(out(&g(false, false), &[&[2, 1024], &[1000, 1024]]).unwrap_err().to_string().contains("inner dimension"));
        assert!(out(&g(false, true), &[&[2, 4], &[3, 4], &[2]]).is_err());
        assert_eq!(out(&Op::MatMul, &[&[2, 3, 4], &[4, 5]]).unwrap(), [2, 3, 5]);
        assert_eq!(out(&Op::MatMul, &[&[4], &[4, 5]]).unwrap(), [5]);
        assert_eq!(out(&Op::MatMul, &[&[3, 4], &[4]]).unwrap(), [3]);
        assert_eq!(out(&Op::MatMul, &[&[2, 1, 3, 4], &[5, 4, 6]]).unwrap(), [2, 5, 3, 6]);
        assert!(out(&Op::MatMul, &[&[2, 3, 4], &[3, 4, 5]]).is_err());
    }

    #[test]
    fn broadcasting_reshape_flatten_and_friends() {
        assert_eq!(out(&Op::Add, &[&[1, 8, 4, 4], &[8, 1, 1]]).unwrap(), [1, 8, 4, 4]);
        assert_eq!(out(&Op::Mul, &[&[], &[3, 1]]).unwrap(), [3, 1]);
        let e = out(&Op::Sub, &[&[1, 8], &[3]]).unwrap_err().to_string();
        assert!(e.contains("[1, 8]") && e.contains("[3]") && e.contains("--dim"), "{e}");
        let r = |s: &[i64], z| Op::Reshape { shape: s.to_vec(), allowzero: z };
        assert_eq!(out(&r(&[0, -1], false), &[&[2, 3, 4]]).unwrap(), [2, 12]);
        assert_eq!(out(&r(&[0, 0, 4], true), &[&[0, 0, 4]]).unwrap(), [0, 0, 4]);
        assert!(out(&r(&[0, -1], true), &[&[2, 3]]).is_err());
        assert!(out(&r(&[5, -1], false), &[&[2, 3]]).is_err());
        assert!(out(&r(&[-1, -1], false), &[&[2, 3]]).is_err());
        assert_eq!(out(&Op::Flatten { axis: 1 }, &[&[2, 3, 4, 5]]).unwrap(), [2, 60]);
        assert_eq!(out(&Op::Flatten { axis: 0 }, &[&[2, 3]]).unwrap(), [1, 6]);
        assert_eq!(out(&Op::Flatten { axis: 2 }, &[&[2, 3]]).unwrap(), [6, 1]);
        assert_eq!(out(&Op::Flatten { axis: -1 }, &[&[2, 3, 4]]).unwrap(), [6, 4]);
        assert!(out(&Op::Flatten { axis: 3 }, &[&[2, 3]]).is_err());
        assert!(out(&Op::Softmax { axis: 2 }, &[&[2, 3]]).is_err());
        assert_eq!(out(&Op::Softmax { axis: -2 }, &[&[2, 3]]).unwrap(), [2, 3]);
        assert_eq!(out(&Op::Transpose { perm: vec![0, 2, 3, 1] }, &[&[1, 3, 5, 7]]).unwrap(), [1, 5, 7, 3]);
        assert_eq!(out(&Op::Transpose { perm: vec![] }, &[&[1, 3, 5]]).unwrap(), [5, 3, 1]);
        assert!(out(&Op::Transpose { perm: vec![0, 0, 1] }, &[&[1, 3, 5]]).is_err());
        assert_eq!(out(&Op::Pad { pads: vec![0, 0, 1, 1, 0, 0, 2, 2], value: 0.0 }, &[&[1, 3, 5, 5]]).unwrap(), [1, 3, 8, 8]);
        assert_eq!(out(&Op::Pad { pads: vec![0, -1, 0, -1], value: 0.0 }, &[&[3, 5]]).unwrap(), [3, 3]);
        assert!(out(&Op::Pad { pads: vec![0, 0], value: 0.0 }, &[&[3, 5]]).is_err());
        assert_eq!(out(&Op::Concat { axis: 1 }, &[&[1, 2, 4], &[1, 3, 4]]).unwrap(), [1, 5, 4]);
        assert!(out(&Op::Concat { axis: 1 }, &[&[1, 2, 4], &[1, 3, 5]]).is_err());
        assert_eq!(out(&Op::Head { softmax: true }, &[&[2, 16, 7, 7], &[10, 16], &[10]]).unwrap(), [2, 10]);
        let e = out(&Op::BatchNorm { epsilon: 1e-5, momentum: 0.9 }, &[&[1, 4, 2, 2], &[4], &[4], &[3], &[4]]).unwrap_err().to_string();
        assert!(e.contains("mean is [3]"), "{e}");
    }

    #[test]
    fn huge_shapes_are_a_limit_error_not_an_overflow() {
        let e = out(&Op::Mul, &[&[1 << 40, 1 << 40, 1 << 40], &[1]]).unwrap_err();
        assert!(matches!(e, Error::Limit(_)), "{e}");
    }

    #[test]
    fn whole_graph_inference_resolves_pads() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", vec![1, 3, 9, 9]);
        let w = g.add_constant("w", crate::graph::Tensor::zeros(vec![4, 3, 3, 3]));
        let (n, y) = g.add_op("c", conv(3, 2, [0; 4], 1, AutoPad::SameUpper), vec![x, w], vec![]);
        let (_, z) = g.add_op("r", Op::Relu, vec![y], vec![]);
        g.outputs.push(z);
        infer_shapes(&mut g).unwrap();
        assert_eq!(g.shape(z), [1, 4, 5, 5]);
        let Op::Conv(a) = &g.node(n).op else { unreachable!() };
        assert_eq!(a.pads, [1, 1, 1, 1]);
    }
}
