//! ReLU6 in the forms exporters write, normalized to one `Clip`:
//! - `c - relu(c - x)` = `min(x, c)`, so `Sub(c, x) → Relu → Sub(c, ·)` becomes `Clip{-inf, c}`
//!   (exact for any x);
//! - `Relu → Clip{a, b}` becomes `Clip{max(a, 0), b}` (exact for any bounds);
//! - `Clip{a, b} → Relu` becomes `Clip{max(a, 0), b}` when `b >= 0`.
//!
//! So `relu(x)` followed by `6 - relu(6 - ·)` ends as `Clip{0, 6}`. Clip with attribute or
//! input bounds (±FLT_MAX as unbounded) is made a Clip at conversion. Rewrites keep the last
//! node (and its output tensor, so graph output names survive) and remove intermediates that
//! nothing else reads.

use crate::graph::{Graph, NodeId, Op, TensorId};

pub fn normalize_relu6(g: &mut Graph) {
    while let Some((keep, op, input, remove)) = find(g) {
        let node = g.node_mut(keep);
        node.op = op;
        node.inputs = vec![input];
        for n in remove {
            g.remove_node(n);
        }
        g.relink();
    }
}

/// The single producer of `t` if `t` is read only by one node and is not a graph output.
fn private_producer(g: &Graph, t: TensorId) -> Option<NodeId> {
    if g.outputs.contains(&t) || g.consumers(t).len() != 1 {
        return None;
    }
    g.producer(t)
}

/// The value of a constant whose elements are all equal and which cannot widen `like`'s shape
/// under broadcasting.
fn splat(g: &Graph, t: TensorId, like: &[usize]) -> Option<f32> {
    let c = g.constant(t)?;
    let v = *c.data.first()?;
    let fits = c.shape.len() <= like.len() && c.shape.iter().rev().zip(like.iter().rev()).all(|(&a, &b)| a == 1 || a == b);
    (fits && c.data.iter().all(|&x| x == v)).then_some(v)
}

type Rewrite = (NodeId, Op, TensorId, Vec<NodeId>);

fn find(g: &Graph) -> Option<Rewrite> {
    for n in g.dag.node_indices() {
        let node = g.node(n);
        let out_shape = g.shape(node.outputs[0]).to_vec();
        match node.op {
            // c - relu(c - x)
            Op::Sub if node.inputs.len() == 2 => {
                let (c2, r) = (node.inputs[0], node.inputs[1]);
                let Some(relu) = private_producer(g, r) else { continue };
                if g.node(relu).op != Op::Relu {
                    continue;
                }
                let Some(sub) = private_producer(g, g.node(relu).inputs[0]) else { continue };
                let inner = g.node(sub);
                if inner.op != Op::Sub || inner.inputs.len() != 2 {
                    continue;
                }
                let (c1, x) = (inner.inputs[0], inner.inputs[1]);
                // The result must have x's shape: the constants only broadcast into it.
                if g.shape(x) != out_shape.as_slice() {
                    continue;
                }
                match (splat(g, c1, &out_shape), splat(g, c2, &out_shape)) {
                    (Some(a), Some(b)) if a == b && a.is_finite() => return Some((n, Op::Clip { min: f32::NEG_INFINITY, max: a }, x, vec![relu, sub])),
                    _ => continue,
                }
            }
            Op::Clip { min, max } => {
                let Some(p) = private_producer(g, node.inputs[0]) else { continue };
                if g.node(p).op == Op::Relu {
                    return Some((n, Op::Clip { min: min.max(0.0), max }, g.node(p).inputs[0], vec![p]));
                }
            }
            Op::Relu => {
                let Some(p) = private_producer(g, node.inputs[0]) else { continue };
                if let Op::Clip { min, max } = g.node(p).op {
                    if max >= 0.0 {
                        return Some((n, Op::Clip { min: min.max(0.0), max }, g.node(p).inputs[0], vec![p]));
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Tensor;

    fn six(g: &mut Graph, name: &str, shape: Vec<usize>) -> TensorId {
        let n = shape.iter().product();
        g.add_constant(name, Tensor::new(shape, vec![6.0; n]))
    }

    /// x → [Relu] → Sub(6, ·) → Relu → Sub(6, ·) → y
    fn sub_form(with_relu: bool, c_shape: Vec<usize>) -> Graph {
        let mut g = Graph::new("t");
        let x = g.add_input("x", vec![1, 4, 2, 2]);
        let mut t = x;
        if with_relu {
            t = g.add_op("r0", Op::Relu, vec![t], vec![1, 4, 2, 2]).1;
        }
        let c1 = six(&mut g, "c1", c_shape.clone());
        let c2 = six(&mut g, "c2", c_shape);
        let (_, a) = g.add_op("s1", Op::Sub, vec![c1, t], vec![1, 4, 2, 2]);
        let (_, b) = g.add_op("r1", Op::Relu, vec![a], vec![1, 4, 2, 2]);
        let (_, y) = g.add_op("s2", Op::Sub, vec![c2, b], vec![1, 4, 2, 2]);
        g.outputs.push(y);
        g
    }

    fn only_op(g: &Graph) -> Op {
        assert_eq!(g.dag.node_count(), 1, "{:?}", g.dag.node_weights().map(|n| n.op.name()).collect::<Vec<_>>());
        g.dag.node_weights().next().unwrap().op.clone()
    }

    #[test]
    fn six_minus_relu_six_minus_x() {
        let mut g = sub_form(true, vec![]);
        normalize_relu6(&mut g);
        assert_eq!(only_op(&g), Op::Clip { min: 0.0, max: 6.0 });
        let n = g.dag.node_indices().next().unwrap();
        assert_eq!(g.node(n).name, "s2");
        assert_eq!(g.tensor(g.outputs[0]).name, "s2");
        assert_eq!(g.node(n).inputs, g.inputs);
        g.validate().unwrap();

        // Without the leading Relu it is min(x, 6), for any x.
        let mut g = sub_form(false, vec![1]);
        normalize_relu6(&mut g);
        assert_eq!(only_op(&g), Op::Clip { min: f32::NEG_INFINITY, max: 6.0 });
    }

    #[test]
    fn clip_semantics_match_the_subtraction_form_numerically() {
        // min(x, 6) == 6 - relu(6 - x) on a spread of values, up to the rounding of the two
        // subtractions (the Clip is the exact one): within 2 ulps of max(|x|, 6).
        let clip = crate::graph::Activation::Clip { min: f32::NEG_INFINITY, max: 6.0 };
        for i in -400..=400 {
            let x = i as f32 * 0.037;
            let (exact, sub) = (clip.apply(x), 6.0 - (6.0 - x).max(0.0));
            assert!((exact - sub).abs() <= 2.0 * f32::EPSILON * x.abs().max(6.0), "x = {x}: {exact} vs {sub}");
            assert_eq!(exact, x.min(6.0));
        }
    }

    #[test]
    fn unsafe_shapes_and_shared_tensors_are_left_alone() {
        // A constant that would widen x's shape under broadcasting.
        let mut g = Graph::new("t");
        let x = g.add_input("x", vec![1, 1]);
        let c1 = six(&mut g, "c1", vec![3, 1]);
        let c2 = six(&mut g, "c2", vec![3, 1]);
        let (_, a) = g.add_op("s1", Op::Sub, vec![c1, x], vec![3, 1]);
        let (_, b) = g.add_op("r1", Op::Relu, vec![a], vec![3, 1]);
        let (_, y) = g.add_op("s2", Op::Sub, vec![c2, b], vec![3, 1]);
        g.outputs.push(y);
        normalize_relu6(&mut g);
        assert_eq!(g.dag.node_count(), 3);

        // The inner Relu's output is also a graph output: it must stay.
        let mut g = sub_form(false, vec![]);
        let r1 = g.find_node("r1").unwrap();
        let t = g.node(r1).outputs[0];
        g.outputs.push(t);
        normalize_relu6(&mut g);
        assert_eq!(g.dag.node_count(), 3);
    }

    #[test]
    fn relu_and_clip_merge_both_ways() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", vec![4]);
        let (_, r) = g.add_op("r", Op::Relu, vec![x], vec![4]);
        let (_, y) = g.add_op("c", Op::Clip { min: f32::NEG_INFINITY, max: 6.0 }, vec![r], vec![4]);
        g.outputs.push(y);
        normalize_relu6(&mut g);
        assert_eq!(only_op(&g), Op::Clip { min: 0.0, max: 6.0 });

        let mut g = Graph::new("t");
        let x = g.add_input("x", vec![4]);
        let (_, c) = g.add_op("c", Op::Clip { min: -1.0, max: 6.0 }, vec![x], vec![4]);
        let (_, y) = g.add_op("r", Op::Relu, vec![c], vec![4]);
        g.outputs.push(y);
        normalize_relu6(&mut g);
        assert_eq!(only_op(&g), Op::Clip { min: 0.0, max: 6.0 });
    }
}
