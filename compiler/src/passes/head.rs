//! The classifier head as one step: GlobalAveragePool → Flatten/Reshape to [N, C] → Gemm →
//! optional Softmax over the classes becomes `Op::Head`, with the weight stored [classes, C]
//! (alpha and transB folded in) and the bias [classes] (beta folded in, zeros when absent).
//! Fusing it keeps the pooled vector in registers and spares two tiny intermediate tensors.

use super::rewrite::{absorb, add_constant, alive, channel_vector, nodes_where, producer, sole_consumer, unary_io};
use crate::error::Result;
use crate::graph::{Activation, Graph, NodeId, Op, Tensor};

pub fn run(g: &mut Graph) -> Result<bool> {
    let mut changed = false;
    for n in nodes_where(g, |op| matches!(op, Op::Gemm(_))) {
        if alive(g, n) {
            changed |= try_fuse(g, n);
        }
    }
    Ok(changed)
}

fn try_fuse(g: &mut Graph, gemm: NodeId) -> bool {
    let Op::Gemm(attrs) = g.node(gemm).op.clone() else { return false };
    if attrs.trans_a || attrs.activation != Activation::None {
        return false;
    }
    let inputs = g.node(gemm).inputs.clone();
    // flatten: [N, C, 1, 1] → [N, C]
    let Some(flat) = producer(g, inputs[0]) else { return false };
    if !matches!(g.node(flat).op, Op::Flatten { .. } | Op::Reshape { .. }) || sole_consumer(g, inputs[0]) != Some(gemm) {
        return false;
    }
    let Some((pooled, flat_out)) = unary_io(g, flat) else { return false };
    let Some(gap) = producer(g, pooled) else { return false };
    if g.node(gap).op != Op::GlobalAveragePool || sole_consumer(g, pooled) != Some(flat) {
        return false;
    }
    let x = g.node(gap).inputs[0];
    let (x_shape, p_shape, f_shape) = (g.shape(x).to_vec(), g.shape(pooled), g.shape(flat_out));
    if x_shape.len() < 3 || p_shape.len() != x_shape.len() || f_shape != [x_shape[0], x_shape[1]] {
        return false;
    }
    let c = x_shape[1];
    // The weight as [classes, C].
    let Some(b) = g.constant(inputs[1]) else { return false };
    let &[b0, b1] = &b.shape[..] else { return false };
    let (k, classes) = if attrs.trans_b { (b1, b0) } else { (b0, b1) };
    if k != c {
        return false;
    }
    let alpha = attrs.alpha as f64;
    let w = Tensor::new(
        vec![classes, c],
        (0..classes * c).map(|i| (i / c, i % c)).map(|(j, ch)| (alpha * b.data[if attrs.trans_b { j * b1 + ch } else { ch * b1 + j }] as f64) as f32).collect(),
    );
    let bias = match inputs.get(2) {
        Some(&t) => match g.constant(t).and_then(|t| channel_vector(t, classes)) {
            Some(v) => v.iter().map(|v| (attrs.beta as f64 * v) as f32).collect(),
            None => return false,
        },
        None => vec![0.0; classes],
    };
    let logits = g.node(gemm).outputs[0];
    // An optional Softmax over the classes, read by nothing else.
    let softmax = sole_consumer(g, logits).filter(|&s| matches!(g.node(s).op, Op::Softmax { axis } if axis == 1 || axis == -1) && unary_io(g, s).is_some());
    let name = g.node(gemm).name.clone();
    let wt = add_constant(g, &format!("{name}.head_weight"), w);
    let bt = add_constant(g, &format!("{name}.head_bias"), Tensor::new(vec![classes], bias));
    let node = g.node_mut(gemm);
    node.op = Op::Head { softmax: softmax.is_some() };
    node.inputs = vec![x, wt, bt];
    g.remove_node(flat);
    g.remove_node(gap);
    g.relink();
    if let Some(s) = softmax {
        absorb(g, gemm, s, logits);
    }
    true
}
