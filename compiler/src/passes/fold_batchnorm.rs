//! Folds an inference BatchNormalization into the Conv (any group: depthwise and grouped
//! convs too) or Gemm that produces its input, when the BatchNorm is that tensor's only reader.
//!
//! With s = scale / √(var + ε) per output channel: w' = w·s (along the output channel) and
//! b' = (b − mean)·s + bias (b = 0 for a conv without bias). The output channel is the first
//! weight axis for every group count, which is why depthwise convs need no special case.
//! Folded weights are new constants (the originals may be shared); computed in f64.

use super::rewrite::{absorb, add_constant, alive, channel_vector, nodes_where, producer, sole_consumer};
use crate::error::Result;
use crate::graph::{Activation, Graph, NodeId, Op, Tensor};

pub fn run(g: &mut Graph) -> Result<bool> {
    let mut changed = false;
    for bn in nodes_where(g, |op| matches!(op, Op::BatchNorm { .. })) {
        if alive(g, bn) {
            changed |= try_fold(g, bn);
        }
    }
    Ok(changed)
}

/// The BatchNorm's per-channel affine map y = s·x + t, if its parameters are constants of
/// `channels` values.
fn affine(g: &Graph, bn: NodeId, channels: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let node = g.node(bn);
    let Op::BatchNorm { epsilon, .. } = node.op else { return None };
    let params: Vec<&Tensor> = node.inputs.get(1..5)?.iter().map(|&t| g.constant(t)).collect::<Option<_>>()?;
    if params.iter().any(|p| p.data.len() != channels) || node.outputs.len() != 1 {
        return None;
    }
    let (scale, bias, mean, var) = (&params[0].data, &params[1].data, &params[2].data, &params[3].data);
    let s: Vec<f64> = (0..channels).map(|c| scale[c] as f64 / (var[c] as f64 + epsilon as f64).sqrt()).collect();
    let t: Vec<f64> = (0..channels).map(|c| bias[c] as f64 - mean[c] as f64 * s[c]).collect();
    Some((s, t))
}

fn try_fold(g: &mut Graph, bn: NodeId) -> bool {
    let x = g.node(bn).inputs[0];
    let Some(p) = producer(g, x) else { return false };
    if sole_consumer(g, x) != Some(bn) || g.node(p).outputs.len() != 1 {
        return false;
    }
    match g.node(p).op.clone() {
        Op::Conv(a) if a.activation == Activation::None => fold_into_conv(g, p, bn),
        Op::Gemm(a) if a.activation == Activation::None && g.shape(x).len() == 2 => fold_into_gemm(g, p, bn),
        _ => false,
    }
}

fn fold_into_conv(g: &mut Graph, conv: NodeId, bn: NodeId) -> bool {
    let inputs = g.node(conv).inputs.clone();
    let Some(w) = inputs.get(1).and_then(|&t| g.constant(t)) else { return false };
    let m = w.shape.first().copied().unwrap_or(0);
    if m == 0 || w.data.len() % m != 0 {
        return false;
    }
    let bias = match inputs.get(2) {
        Some(&b) => match g.constant(b) {
            Some(b) if b.data.len() == m => b.data.iter().map(|&v| v as f64).collect(),
            _ => return false,
        },
        None => vec![0.0; m],
    };
    let Some((s, t)) = affine(g, bn, m) else { return false };
    let per = w.data.len() / m;
    let w_new = Tensor::new(w.shape.clone(), w.data.iter().enumerate().map(|(i, &v)| (v as f64 * s[i / per]) as f32).collect());
    let b_new = Tensor::new(vec![m], (0..m).map(|c| (bias[c] * s[c] + t[c]) as f32).collect());
    let name = g.node(conv).name.clone();
    let wt = add_constant(g, &format!("{name}.weight_bn"), w_new);
    let bt = add_constant(g, &format!("{name}.bias_bn"), b_new);
    g.node_mut(conv).inputs = vec![inputs[0], wt, bt];
    let old = g.node(conv).outputs[0];
    absorb(g, conv, bn, old);
    true
}

/// Gemm: Y = alpha·A'·B' + beta·C with the BatchNorm over Y's columns (axis 1). Scaling the
/// columns of B' by s and replacing C by s·beta·C + t (beta becomes 1) folds it.
fn fold_into_gemm(g: &mut Graph, gemm: NodeId, bn: NodeId) -> bool {
    let Op::Gemm(attrs) = g.node(gemm).op.clone() else { return false };
    let inputs = g.node(gemm).inputs.clone();
    let Some(b) = inputs.get(1).and_then(|&t| g.constant(t)) else { return false };
    let &[b0, b1] = &b.shape[..] else { return false };
    let n = if attrs.trans_b { b0 } else { b1 };
    let Some((s, t)) = affine(g, bn, n) else { return false };
    let c = match inputs.get(2) {
        Some(&c) => match g.constant(c).and_then(|c| channel_vector(c, n)) {
            Some(c) => c,
            // A per-row C ([M, N], M > 1) is rare in classifiers; leave it unfolded.
            None => return false,
        },
        None => vec![0.0; n],
    };
    let col = |i: usize| if attrs.trans_b { i / b1 } else { i % b1 };
    let b_new = Tensor::new(b.shape.clone(), b.data.iter().enumerate().map(|(i, &v)| (v as f64 * s[col(i)]) as f32).collect());
    let c_new = Tensor::new(vec![n], (0..n).map(|j| (s[j] * attrs.beta as f64 * c[j] + t[j]) as f32).collect());
    let name = g.node(gemm).name.clone();
    let bt = add_constant(g, &format!("{name}.weight_bn"), b_new);
    let ct = add_constant(g, &format!("{name}.bias_bn"), c_new);
    let node = g.node_mut(gemm);
    node.inputs = vec![inputs[0], bt, ct];
    if let Op::Gemm(a) = &mut node.op {
        a.beta = 1.0;
    }
    let old = g.node(gemm).outputs[0];
    absorb(g, gemm, bn, old);
    true
}
