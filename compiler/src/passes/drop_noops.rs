//! Drops ops that compute the identity at inference: Identity, Dropout (its mask unread), and
//! Pad whose pads are all zero. A dropped node that wrote a graph output hands that output to
//! the producer of its input, so the output keeps its tensor and name.

use super::rewrite::{alive, forward_value, nodes_where};
use crate::error::Result;
use crate::graph::{Graph, NodeId, Op};

pub fn run(g: &mut Graph) -> Result<bool> {
    let mut changed = false;
    for n in nodes_where(g, |op| matches!(op, Op::Identity | Op::Dropout { .. } | Op::Pad { .. } | Op::Clip { .. })) {
        if alive(g, n) && is_noop(g, n) {
            let src = g.node(n).inputs[0];
            changed |= forward_value(g, n, src);
        }
    }
    Ok(changed)
}

fn is_noop(g: &Graph, n: NodeId) -> bool {
    let node = g.node(n);
    if node.inputs.len() != 1 || node.outputs.is_empty() {
        return false;
    }
    // Dropout's optional second output (the mask) must be unread for the node to go.
    let extra_outputs_unread = node.outputs[1..].iter().all(|&t| !g.outputs.contains(&t) && g.consumers(t).is_empty());
    match &node.op {
        Op::Identity => node.outputs.len() == 1,
        Op::Dropout { .. } => extra_outputs_unread,
        Op::Pad { pads, .. } => node.outputs.len() == 1 && pads.iter().all(|&p| p == 0),
        Op::Clip { min, max } => node.outputs.len() == 1 && *min == f32::NEG_INFINITY && *max == f32::INFINITY,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Tensor;

    #[test]
    fn identity_writing_a_graph_output_hands_it_to_the_producer() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", vec![2]);
        let (_, r) = g.add_op("r", Op::Relu, vec![x], vec![2]);
        let (_, y) = g.add_op("id", Op::Identity, vec![r], vec![2]);
        g.outputs.push(y);
        assert!(run(&mut g).unwrap());
        g.validate().unwrap();
        assert_eq!(g.count_op("Identity"), 0);
        assert_eq!(g.outputs, [y]);
        assert_eq!(g.node(g.find_node("r").unwrap()).outputs, [y]);
        let out = crate::eval::evaluate(&g, &[("x", Tensor::new(vec![2], vec![-1.0, 2.0]))]).unwrap();
        assert_eq!(out[0].data, [0.0, 2.0]);
    }

    #[test]
    fn identity_from_input_to_output_stays() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", vec![2]);
        let (_, y) = g.add_op("id", Op::Identity, vec![x], vec![2]);
        g.outputs.push(y);
        assert!(!run(&mut g).unwrap());
        assert_eq!(g.count_op("Identity"), 1);
    }
}
