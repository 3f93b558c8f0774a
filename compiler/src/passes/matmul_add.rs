//! MatMul with a constant 2-D right operand becomes a Gemm, and a Gemm absorbs the Add of a
//! constant bias broadcast along its last axis (the PyTorch-exporter classifier: MatMul + Add).

use super::rewrite::{absorb, add_constant, alive, channel_vector, nodes_where, producer, sole_consumer};
use crate::error::Result;
use crate::graph::{Activation, GemmAttrs, Graph, NodeId, Op, Tensor};

pub fn run(g: &mut Graph) -> Result<bool> {
    let mut changed = false;
    for n in nodes_where(g, |op| matches!(op, Op::MatMul)) {
        if alive(g, n) {
            changed |= matmul_to_gemm(g, n);
        }
    }
    for n in nodes_where(g, |op| matches!(op, Op::Add)) {
        if alive(g, n) {
            changed |= absorb_bias(g, n);
        }
    }
    Ok(changed)
}

/// Gemm needs A 2-D; B constant so the kernels can pack it.
fn matmul_to_gemm(g: &mut Graph, n: NodeId) -> bool {
    let node = g.node(n);
    let &[a, b] = &node.inputs[..] else { return false };
    let b_is_matrix = g.constant(b).is_some_and(|b| b.shape.len() == 2);
    if !b_is_matrix || g.shape(a).len() != 2 || g.is_constant(a) {
        return false;
    }
    g.node_mut(n).op = Op::Gemm(GemmAttrs::default());
    true
}

/// Gemm → Add(constant c): C' = beta·C + c, beta 1.
fn absorb_bias(g: &mut Graph, add: NodeId) -> bool {
    let &[l, r] = &g.node(add).inputs[..] else { return false };
    let (y, c) = if g.is_constant(r) { (l, r) } else { (r, l) };
    let Some(gemm) = producer(g, y) else { return false };
    let Op::Gemm(attrs) = g.node(gemm).op.clone() else { return false };
    let shape = g.shape(y).to_vec();
    // The Add must not broadcast the Gemm's output to a bigger shape.
    if attrs.activation != Activation::None || sole_consumer(g, y) != Some(add) || g.shape(g.node(add).outputs[0]) != shape.as_slice() || shape.len() != 2 {
        return false;
    }
    let n = shape[1];
    let Some(bias) = g.constant(c).and_then(|c| (c.shape.len() <= 2).then(|| channel_vector(c, n)).flatten()) else { return false };
    let old = match g.node(gemm).inputs.get(2) {
        Some(&t) => match g.constant(t).and_then(|t| channel_vector(t, n)) {
            Some(v) => v,
            None => return false,
        },
        None => vec![0.0; n],
    };
    let merged = Tensor::new(vec![n], (0..n).map(|j| (attrs.beta as f64 * old[j] + bias[j]) as f32).collect());
    let name = g.node(gemm).name.clone();
    let ct = add_constant(g, &format!("{name}.bias"), merged);
    let node = g.node_mut(gemm);
    node.inputs.truncate(2);
    node.inputs.push(ct);
    if let Op::Gemm(a) = &mut node.op {
        a.beta = 1.0;
    }
    absorb(g, gemm, add, y);
    true
}
