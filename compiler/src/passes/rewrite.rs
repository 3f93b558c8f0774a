//! Small helpers shared by the passes: pattern conditions and the one way a fused node takes
//! over the tensor of the node it absorbs (so graph outputs keep their tensor and name).

use crate::graph::{Graph, NodeId, Op, Tensor, TensorId};

/// The only node reading `t`, if exactly one node reads it and it is not a graph output
/// (a graph output must stay materialized, so nothing may fuse across it).
pub(super) fn sole_consumer(g: &Graph, t: TensorId) -> Option<NodeId> {
    if g.outputs.contains(&t) {
        return None;
    }
    match g.consumers(t)[..] {
        [c] => Some(c),
        _ => None,
    }
}

/// The node writing `t` (none for inputs and constants).
pub(super) fn producer(g: &Graph, t: TensorId) -> Option<NodeId> {
    g.producer(t)
}

/// Whether the rewrite may drop the tensor `t` written by a node: only readers that the
/// rewrite itself handles, never a graph output.
pub(super) fn is_internal(g: &Graph, t: TensorId) -> bool {
    !g.outputs.contains(&t) && !g.inputs.contains(&t) && !g.is_constant(t)
}

/// The node's single input and output, for one-in one-out ops.
pub(super) fn unary_io(g: &Graph, n: NodeId) -> Option<(TensorId, TensorId)> {
    match (&g.node(n).inputs[..], &g.node(n).outputs[..]) {
        ([x], [y]) => Some((*x, *y)),
        _ => None,
    }
}

/// `producer` absorbs `consumer`: the consumer is removed and the producer writes the
/// consumer's output tensor in place of its own `old` output (which the consumer read).
pub(super) fn absorb(g: &mut Graph, producer: NodeId, consumer: NodeId, old: TensorId) {
    let new = g.node(consumer).outputs[0];
    g.remove_node(consumer);
    for t in g.node_mut(producer).outputs.iter_mut() {
        if *t == old {
            *t = new;
        }
    }
    g.relink();
}

/// Removes a node whose single output `y` holds the same value as the tensor `src`, making
/// every reader of `y` read `src`. When `y` is a graph output, its tensor (and so its name)
/// must survive: then the producer of `src` writes `y` instead, which needs `src` to be an
/// internal tensor. Returns false (and changes nothing) when neither way is possible.
pub(super) fn forward_value(g: &mut Graph, n: NodeId, src: TensorId) -> bool {
    let y = g.node(n).outputs[0];
    if !g.outputs.contains(&y) {
        g.remove_node(n);
        g.replace_uses(y, src);
        return true;
    }
    let Some(p) = producer(g, src) else { return false };
    if p == n || !is_internal(g, src) {
        return false;
    }
    g.remove_node(n);
    rename_tensor(g, src, y);
    true
}

/// Every writer and reader of `old` uses `new` instead (graph outputs excluded: callers use it
/// only for internal tensors).
fn rename_tensor(g: &mut Graph, old: TensorId, new: TensorId) {
    let nodes: Vec<NodeId> = g.dag.node_indices().collect();
    for n in nodes {
        let node = g.node_mut(n);
        node.inputs.iter_mut().chain(node.outputs.iter_mut()).filter(|t| **t == old).for_each(|t| *t = new);
    }
    g.relink();
}

/// A tensor name not used yet, derived from `base`.
pub(super) fn fresh_name(g: &Graph, base: &str) -> String {
    let taken = |name: &str| g.tensors.iter().any(|t| t.name == name);
    if !taken(base) {
        return base.to_string();
    }
    (1..).map(|i| format!("{base}_{i}")).find(|n| !taken(n)).expect("some suffix is free")
}

/// Adds a constant under a fresh name.
pub(super) fn add_constant(g: &mut Graph, base: &str, value: Tensor) -> TensorId {
    let name = fresh_name(g, base);
    g.add_constant(name, value)
}

/// Adds an (intermediate) tensor under a fresh name.
pub(super) fn add_tensor(g: &mut Graph, base: &str, shape: Vec<usize>) -> TensorId {
    let name = fresh_name(g, base);
    g.add_tensor(name, shape)
}

/// Nodes in topological order whose op satisfies `pred` (a snapshot: callers re-check that a
/// node still exists after earlier rewrites).
pub(super) fn nodes_where(g: &Graph, pred: impl Fn(&Op) -> bool) -> Vec<NodeId> {
    g.topo_order().unwrap_or_else(|_| g.dag.node_indices().collect()).into_iter().filter(|&n| pred(&g.node(n).op)).collect()
}

/// Whether the node still exists (earlier rewrites in the same sweep may have removed it).
pub(super) fn alive(g: &Graph, n: NodeId) -> bool {
    g.dag.contains_node(n)
}

/// A per-output-channel vector from a bias-like constant of `n` elements broadcastable along
/// the last axis: shapes [], [1], [n], [1, n], [1, 1]; `None` otherwise.
pub(super) fn channel_vector(t: &Tensor, n: usize) -> Option<Vec<f64>> {
    let lead_ones = t.shape.len().saturating_sub(1);
    if t.shape[..lead_ones].iter().any(|&d| d != 1) {
        return None;
    }
    match t.data.len() {
        1 => Some(vec![t.data[0] as f64; n]),
        len if len == n => Some(t.data.iter().map(|&v| v as f64).collect()),
        _ => None,
    }
}

/// Makes the graph's cached edges match after a node's inputs were edited by hand.
pub(super) fn set_inputs(g: &mut Graph, n: NodeId, inputs: Vec<TensorId>) {
    g.node_mut(n).inputs = inputs;
    g.relink();
}
