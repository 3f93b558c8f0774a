//! Transposes: cancel pairs, merge chains, turn a Transpose that only moves size-1 axes into a
//! Reshape (a view), and push the layout Transposes of NHWC-exported graphs to the graph's
//! edges through the element-wise ops and Pads between them and an input or output.
//!
//! An NHWC-exported graph reads an NHWC input and transposes it to NCHW once; ops such as a
//! Pad, a normalization (Mul/Sub by constants) or a Relu between the input and that Transpose
//! would keep the body of the graph behind it. Moving the Transpose up to the input makes the
//! rest NCHW, so the other passes (Pad into Conv, for instance) see their patterns, and lowering
//! can fold the one edge Transpose into its choice of internal layout. A Transpose is only
//! moved when it reaches the edge: pushing it into the middle of the graph could split an
//! epilogue from its conv.

use super::rewrite::{add_constant, add_tensor, alive, forward_value, nodes_where, producer, set_inputs, sole_consumer, unary_io};
use crate::error::Result;
use crate::graph::{Graph, NodeId, Op, Tensor, TensorId};

pub fn run(g: &mut Graph) -> Result<bool> {
    let mut changed = false;
    for n in nodes_where(g, |op| matches!(op, Op::Transpose { .. })) {
        if alive(g, n) {
            changed |= normalize_perm(g, n) | (merge_pair(g, n) || unit_axes_to_reshape(g, n) || push_to_input(g, n) || push_to_output(g, n));
        }
    }
    Ok(changed)
}

/// The node's permutation with ONNX's empty default (reverse) resolved; None if invalid.
fn perm(g: &Graph, n: NodeId) -> Option<Vec<usize>> {
    let Op::Transpose { perm } = &g.node(n).op else { return None };
    let (x, _) = unary_io(g, n)?;
    let rank = g.shape(x).len();
    let p: Vec<usize> = if perm.is_empty() { (0..rank).rev().collect() } else { perm.clone() };
    let mut seen = vec![false; rank];
    let ok = p.len() == rank && p.iter().all(|&i| i < rank && !std::mem::replace(&mut seen[i], true));
    ok.then_some(p)
}

fn is_identity(p: &[usize]) -> bool {
    p.iter().enumerate().all(|(i, &v)| i == v)
}

fn inverse(p: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; p.len()];
    for (i, &v) in p.iter().enumerate() {
        inv[v] = i;
    }
    inv
}

/// Writes an empty (default) perm out explicitly, so the other rules see one form.
fn normalize_perm(g: &mut Graph, n: NodeId) -> bool {
    let Some(p) = perm(g, n) else { return false };
    match &mut g.node_mut(n).op {
        Op::Transpose { perm } if perm.is_empty() && !p.is_empty() => {
            *perm = p;
            true
        }
        _ => false,
    }
}

/// Transpose(p2) ∘ Transpose(p1): the composite perm is q[i] = p1[p2[i]]. The identity
/// cancels (readers of the second read the first's input); otherwise, when the first has no
/// other reader, one Transpose(q) replaces both. A lone identity Transpose is dropped.
fn merge_pair(g: &mut Graph, second: NodeId) -> bool {
    let Some(p2) = perm(g, second) else { return false };
    let Some((u, _)) = unary_io(g, second) else { return false };
    if is_identity(&p2) {
        return forward_value(g, second, u);
    }
    let Some(first) = producer(g, u) else { return false };
    let Some(p1) = perm(g, first) else { return false };
    let (x, _) = unary_io(g, first).expect("perm checked the arity");
    let q: Vec<usize> = p2.iter().map(|&i| p1[i]).collect();
    if is_identity(&q) {
        if !forward_value(g, second, x) {
            return false;
        }
        // The first Transpose is dead when the second was its only reader.
        if alive(g, first) && g.consumers(u).is_empty() && !g.outputs.contains(&u) {
            g.remove_node(first);
        }
        return true;
    }
    if sole_consumer(g, u) != Some(second) {
        return false;
    }
    g.node_mut(second).op = Op::Transpose { perm: q };
    set_inputs(g, second, vec![x]);
    g.remove_node(first);
    true
}

/// A Transpose that keeps the order of the axes larger than 1 moves no data: a Reshape
/// (e.g. [N, C, 1, 1] → [N, 1, 1, C] after a global pool in NHWC exports).
fn unit_axes_to_reshape(g: &mut Graph, n: NodeId) -> bool {
    let Some(p) = perm(g, n) else { return false };
    let (x, y) = unary_io(g, n).expect("perm checked the arity");
    let shape = g.shape(x);
    let moved: Vec<usize> = p.iter().copied().filter(|&i| shape[i] != 1).collect();
    if moved.windows(2).any(|w| w[0] > w[1]) {
        return false;
    }
    let out: Vec<usize> = p.iter().map(|&i| shape[i]).collect();
    if out != g.shape(y) {
        return false;
    }
    let target: Vec<i64> = out.iter().map(|&d| d as i64).collect();
    g.node_mut(n).op = Op::Reshape { allowzero: target.contains(&0), shape: target };
    true
}

/// How an op commutes with a Transpose.
enum Through {
    /// One input, element-wise (Relu, Clip, Identity, Dropout).
    Unary,
    /// Add / Sub / Mul with the constant operand at this index (it gets permuted).
    WithConstant(usize),
    /// Pad: its pads get permuted.
    Pad,
}

/// How `n` commutes with a Transpose, and its data input index.
fn commutes(g: &Graph, n: NodeId) -> Option<(Through, usize)> {
    let node = g.node(n);
    if node.outputs.len() != 1 {
        return None;
    }
    match (&node.op, &node.inputs[..]) {
        (Op::Relu | Op::Clip { .. } | Op::Identity | Op::Dropout { .. }, [_]) => Some((Through::Unary, 0)),
        (Op::Pad { .. }, [_]) => Some((Through::Pad, 0)),
        (Op::Add | Op::Sub | Op::Mul, [a, b]) => {
            let (data, c) = match (g.is_constant(*a), g.is_constant(*b)) {
                (false, true) => (0, 1),
                (true, false) => (1, 0),
                _ => return None,
            };
            // The constant must not widen the output beyond the data operand's shape.
            let out = g.shape(node.outputs[0]);
            (out == g.shape(node.inputs[data]) && g.shape(node.inputs[c]).len() <= out.len()).then_some((Through::WithConstant(c), data))
        }
        _ => None,
    }
}

/// The constant `c`, broadcast-aligned to `rank` axes, transposed by `p`.
fn permute_constant(c: &Tensor, rank: usize, p: &[usize]) -> Tensor {
    let mut shape = vec![1; rank - c.shape.len()];
    shape.extend_from_slice(&c.shape);
    let out_shape: Vec<usize> = p.iter().map(|&i| shape[i]).collect();
    let strides = |s: &[usize]| {
        let mut st = vec![1; s.len()];
        for i in (0..s.len().saturating_sub(1)).rev() {
            st[i] = st[i + 1] * s[i + 1];
        }
        st
    };
    let (si, so) = (strides(&shape), strides(&out_shape));
    let data = (0..c.data.len()).map(|flat| c.data[(0..rank).map(|d| (flat / so[d]) % out_shape[d] * si[p[d]]).sum::<usize>()]).collect();
    Tensor::new(out_shape, data)
}

/// Rewrites op `n` to act on the other side of a Transpose: `p` maps the old operand layout
/// to the new one (new axis i is old axis p[i]).
fn permute_op(g: &mut Graph, n: NodeId, how: &Through, p: &[usize]) {
    let rank = p.len();
    match how {
        Through::Unary => {}
        Through::Pad => {
            if let Op::Pad { pads, .. } = &mut g.node_mut(n).op {
                *pads = (0..2 * rank).map(|i| pads[(i / rank) * rank + p[i % rank]]).collect();
            }
        }
        Through::WithConstant(ci) => {
            let c = g.node(n).inputs[*ci];
            let permuted = permute_constant(g.constant(c).expect("checked constant"), rank, p);
            let name = g.tensor(c).name.clone();
            let ct = add_constant(g, &format!("{name}.transposed"), permuted);
            g.node_mut(n).inputs[*ci] = ct;
        }
    }
}

/// The chain of commuting single-reader ops above `t` (nearest first) when it starts at a
/// graph input or at another Transpose: there the pushed Transpose reaches the edge, or meets
/// the other one and merges with it.
fn chain_up(g: &Graph, mut t: TensorId) -> Option<Vec<NodeId>> {
    let mut chain = Vec::new();
    loop {
        if g.inputs.contains(&t) {
            break;
        }
        let p = producer(g, t)?;
        if matches!(g.node(p).op, Op::Transpose { .. }) {
            break;
        }
        let (_, data) = commutes(g, p)?;
        sole_consumer(g, t)?;
        chain.push(p);
        t = g.node(p).inputs[data];
    }
    (!chain.is_empty()).then_some(chain)
}

/// (Input | Transpose) → ops → Transpose(p)  ⇒  (Input | Transpose) → Transpose(p) → ops (each op's constants and pads
/// permuted). The Transpose's output keeps its tensor.
fn push_to_input(g: &mut Graph, t: NodeId) -> bool {
    let Some(p) = perm(g, t) else { return false };
    let (u, y) = unary_io(g, t).expect("perm checked the arity");
    let Some(chain) = chain_up(g, u) else { return false };
    let top = *chain.last().expect("non-empty");
    let (_, data) = commutes(g, top).expect("in the chain");
    let input = g.node(top).inputs[data];
    let in_shape: Vec<usize> = p.iter().map(|&i| g.shape(input)[i]).collect();
    let name = g.tensor(input).name.clone();
    let transposed = add_tensor(g, &format!("{name}.transposed"), in_shape);
    // Every op in the chain now works on permuted data: its output shape permutes too. The
    // last op (nearest the old Transpose) writes the Transpose's output tensor.
    for &n in chain.iter() {
        let how = commutes(g, n).expect("in the chain").0;
        permute_op(g, n, &how, &p);
        let out = g.node(n).outputs[0];
        let permuted: Vec<usize> = p.iter().map(|&i| g.shape(out)[i]).collect();
        g.tensors[out].shape = permuted;
    }
    g.remove_node(t);
    let nearest = chain[0];
    g.node_mut(nearest).outputs[0] = y;
    // y's shape is already the permuted one; the old tensor u is now unused.
    let mut ins = g.node(top).inputs.clone();
    ins[data] = transposed;
    g.node_mut(top).inputs = ins;
    g.add_node(format!("{}.to_edge", g.tensor(y).name), Op::Transpose { perm: p }, vec![input], vec![transposed]);
    g.relink();
    true
}

/// Transpose(p) → ops → graph output  ⇒  ops → Transpose(p) → graph output: the ops work in
/// the Transpose's input layout and the output keeps its tensor.
fn push_to_output(g: &mut Graph, t: NodeId) -> bool {
    let Some(p) = perm(g, t) else { return false };
    let (x, u) = unary_io(g, t).expect("perm checked the arity");
    // A Transpose that can go up goes up (push_to_input runs first); one at an input or right
    // after another Transpose stays: moving it down again would undo that forever.
    if g.inputs.contains(&x) || producer(g, x).is_some_and(|p| matches!(g.node(p).op, Op::Transpose { .. })) || chain_up(g, x).is_some() {
        return false;
    }
    let mut chain = Vec::new();
    let mut cur = u;
    while !g.outputs.contains(&cur) {
        let Some(c) = sole_consumer(g, cur) else { return false };
        match commutes(g, c) {
            Some((_, data)) if g.node(c).inputs[data] == cur => {}
            _ => return false,
        }
        chain.push(c);
        cur = g.node(c).outputs[0];
    }
    if chain.is_empty() || !g.consumers(cur).is_empty() {
        // Nothing to move past, or the output is also read inside the graph.
        return false;
    }
    let inv = inverse(&p);
    let y = cur;
    // The chain's ops now read x's layout; each output takes the inverse-permuted shape.
    for &n in &chain {
        let how = commutes(g, n).expect("in the chain").0;
        permute_op(g, n, &how, &inv);
        let out = g.node(n).outputs[0];
        if out != y {
            let permuted: Vec<usize> = inv.iter().map(|&i| g.shape(out)[i]).collect();
            g.tensors[out].shape = permuted;
        }
    }
    let last = *chain.last().expect("non-empty");
    let y_shape = g.shape(y).to_vec();
    let name = g.tensor(y).name.clone();
    let before = add_tensor(g, &format!("{name}.before_transpose"), inv.iter().map(|&i| y_shape[i]).collect());
    g.node_mut(last).outputs[0] = before;
    // The first op reads x directly; the old Transpose moves to the end.
    let first = chain[0];
    let ins: Vec<_> = g.node(first).inputs.iter().map(|&i| if i == u { x } else { i }).collect();
    g.node_mut(first).inputs = ins;
    let node = g.node_mut(t);
    node.inputs = vec![before];
    node.outputs = vec![y];
    g.relink();
    true
}
