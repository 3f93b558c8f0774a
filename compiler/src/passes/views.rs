//! Flatten and Reshape move no data in row-major layout: this pass normalizes Flatten into a
//! Reshape with the concrete target shape, merges chains of reshapes, drops reshapes that
//! keep the shape, and [`is_view`] tells the memory planner which nodes may alias their input.

use super::rewrite::{alive, forward_value, nodes_where, producer, set_inputs, sole_consumer, unary_io};
use crate::error::Result;
use crate::eval::reshape_target;
use crate::graph::{Graph, NodeId, Op};

/// Whether the node's output is its input reinterpreted (same bytes, same order): Reshape,
/// Flatten, Identity and a Dropout whose mask is not asked for. The memory planner may give
/// the output the input's storage.
pub fn is_view(g: &Graph, node: NodeId) -> bool {
    let n = g.node(node);
    n.inputs.len() == 1 && n.outputs.len() == 1 && matches!(n.op, Op::Reshape { .. } | Op::Flatten { .. } | Op::Identity | Op::Dropout { .. })
}

pub fn run(g: &mut Graph) -> Result<bool> {
    let mut changed = false;
    for n in nodes_where(g, |op| matches!(op, Op::Flatten { .. } | Op::Reshape { .. })) {
        if alive(g, n) {
            changed |= normalize(g, n);
        }
    }
    for n in nodes_where(g, |op| matches!(op, Op::Reshape { .. })) {
        if alive(g, n) {
            changed |= merge_or_drop(g, n);
        }
    }
    Ok(changed)
}

/// The output shape of a Flatten/Reshape from its input's static shape.
fn out_shape(g: &Graph, n: NodeId) -> Option<Vec<usize>> {
    let (x, y) = unary_io(g, n)?;
    let input = g.shape(x);
    let shape = match &g.node(n).op {
        Op::Flatten { axis } => {
            let rank = input.len() as i64;
            let ax = if *axis < 0 { axis + rank } else { *axis };
            if !(0..=rank).contains(&ax) {
                return None;
            }
            let ax = ax as usize;
            vec![input[..ax].iter().product(), input[ax..].iter().product()]
        }
        Op::Reshape { shape, allowzero } => reshape_target(input, shape, *allowzero).ok()?,
        _ => return None,
    };
    // Only trust the computation when it agrees with the recorded shape (an unknown input
    // shape would make it wrong).
    (shape == g.shape(y)).then_some(shape)
}

/// Flatten → Reshape, and any Reshape's target written as the concrete output shape (no 0 or
/// -1 left to resolve downstream).
fn normalize(g: &mut Graph, n: NodeId) -> bool {
    let Some(shape) = out_shape(g, n) else { return false };
    let target: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let op = Op::Reshape { shape: target, allowzero: shape.contains(&0) };
    if g.node(n).op == op {
        return false;
    }
    g.node_mut(n).op = op;
    true
}

/// A Reshape of a Reshape (the first read by nothing else) reads the first one's input; a
/// Reshape that keeps its input's shape is dropped.
fn merge_or_drop(g: &mut Graph, n: NodeId) -> bool {
    let Some((x, y)) = unary_io(g, n) else { return false };
    // Only a concrete target (no 0 to copy, no -1 to infer) means the same on a new input.
    let concrete = matches!(&g.node(n).op, Op::Reshape { shape, allowzero } if shape.iter().all(|&d| d > 0 || (d == 0 && *allowzero)));
    if !concrete || out_shape(g, n).is_none() {
        return false;
    }
    if g.shape(x) == g.shape(y) && forward_value(g, n, x) {
        return true;
    }
    let Some(p) = producer(g, x) else { return false };
    if !matches!(g.node(p).op, Op::Reshape { .. } | Op::Flatten { .. }) || sole_consumer(g, x) != Some(n) {
        return false;
    }
    let Some((src, _)) = unary_io(g, p) else { return false };
    set_inputs(g, n, vec![src]);
    g.remove_node(p);
    true
}
