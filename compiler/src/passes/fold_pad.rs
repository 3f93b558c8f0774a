//! Folds a constant-zero Pad of the spatial axes into the Conv that reads it (the tf2onnx
//! pattern: TensorFlow's "SAME" padding of stride-2 convs exported as an explicit Pad).
//! Zero padding then convolution equals convolution with larger pads, since a conv's own pads
//! are zeros too.

use super::rewrite::{alive, nodes_where, set_inputs, sole_consumer, unary_io};
use crate::error::Result;
use crate::graph::{AutoPad, Graph, NodeId, Op};

pub fn run(g: &mut Graph) -> Result<bool> {
    let mut changed = false;
    for pad in nodes_where(g, |op| matches!(op, Op::Pad { .. })) {
        if alive(g, pad) {
            changed |= try_fold(g, pad);
        }
    }
    Ok(changed)
}

fn try_fold(g: &mut Graph, pad: NodeId) -> bool {
    let Op::Pad { pads, value } = g.node(pad).op.clone() else { return false };
    let Some((x, y)) = unary_io(g, pad) else { return false };
    // [n_begin, c_begin, h_begin, w_begin, n_end, c_end, h_end, w_end]: batch and channel
    // untouched, spatial pads non-negative (negative pads crop, which a conv cannot do).
    let &[0, 0, top, left, 0, 0, bottom, right] = &pads[..] else { return false };
    if value != 0.0 || [top, left, bottom, right].iter().any(|&p| p < 0) {
        return false;
    }
    let Some(conv) = sole_consumer(g, y) else { return false };
    let node = g.node(conv);
    let Op::Conv(attrs) = &node.op else { return false };
    // Only as the data input (a padded weight would be another matter), and only with
    // explicit pads: SAME_* pads depend on the input size, which the fold changes.
    if node.inputs.first() != Some(&y) || node.inputs[1..].contains(&y) || !matches!(attrs.auto_pad, AutoPad::NotSet | AutoPad::Valid) {
        return false;
    }
    let mut attrs = attrs.clone();
    if attrs.auto_pad == AutoPad::Valid {
        attrs.pads = [0; 4];
    }
    attrs.auto_pad = AutoPad::NotSet;
    for (p, extra) in attrs.pads.iter_mut().zip([top, left, bottom, right]) {
        *p += extra as usize;
    }
    let mut inputs = node.inputs.clone();
    inputs[0] = x;
    g.node_mut(conv).op = Op::Conv(attrs);
    g.remove_node(pad);
    set_inputs(g, conv, inputs);
    true
}
