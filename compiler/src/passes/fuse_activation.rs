//! Fuses Relu and Clip (any constant bounds; ReLU6 is Clip(0, 6)) into the epilogue of the
//! Conv or Gemm that produces their input, when they are its only reader; an activation after
//! an already-fused one composes with it (Relu then Clip(-inf, 6) is ReLU6). Two standalone
//! activations in a row (after an Add, say) become one.

use super::rewrite::{absorb, alive, nodes_where, producer, sole_consumer, unary_io};
use crate::error::Result;
use crate::graph::{Activation, Graph, NodeId, Op};

pub fn run(g: &mut Graph) -> Result<bool> {
    let mut changed = false;
    for n in nodes_where(g, |op| matches!(op, Op::Relu | Op::Clip { .. })) {
        if alive(g, n) {
            changed |= try_fuse(g, n);
        }
    }
    Ok(changed)
}

/// The activation a standalone Relu / Clip node computes, if it is a well-formed one.
fn activation_of(op: &Op) -> Option<Activation> {
    match *op {
        Op::Relu => Some(Activation::Relu),
        // NaN bounds or min > max (where ONNX gives max everywhere) are left alone.
        Op::Clip { min, max } if min <= max => Some(Activation::Clip { min, max }),
        _ => None,
    }
}

/// Bounds of an activation as a clamp interval.
fn bounds(a: Activation) -> (f32, f32) {
    match a {
        Activation::None => (f32::NEG_INFINITY, f32::INFINITY),
        Activation::Relu => (0.0, f32::INFINITY),
        Activation::Clip { min, max } => (min, max),
    }
}

/// `second ∘ first` as one clamp. For a0 ≤ a1 and b0 ≤ b1,
/// clamp(clamp(x, a0, a1), b0, b1) = clamp(x, lo, hi) with lo = min(max(a0, b0), b1) and
/// hi = max(min(a1, b1), b0): the intersection when the intervals overlap, else the constant
/// bound of `second` nearest to `first`'s interval.
pub fn compose(first: Activation, second: Activation) -> Activation {
    let ((a0, a1), (b0, b1)) = (bounds(first), bounds(second));
    let lo = a0.max(b0).min(b1);
    let hi = a1.min(b1).max(b0);
    match (lo, hi) {
        (l, h) if l == f32::NEG_INFINITY && h == f32::INFINITY => Activation::None,
        (l, h) if l == 0.0 && h == f32::INFINITY => Activation::Relu,
        (min, max) => Activation::Clip { min, max },
    }
}

fn as_op(a: Activation) -> Op {
    match a {
        Activation::None => Op::Identity,
        Activation::Relu => Op::Relu,
        Activation::Clip { min, max } => Op::Clip { min, max },
    }
}

fn try_fuse(g: &mut Graph, act: NodeId) -> bool {
    let Some(a) = activation_of(&g.node(act).op) else { return false };
    let Some((x, _)) = unary_io(g, act) else { return false };
    let Some(p) = producer(g, x) else { return false };
    if sole_consumer(g, x) != Some(act) || g.node(p).outputs.len() != 1 {
        return false;
    }
    let fused = match &mut g.node_mut(p).op {
        Op::Conv(c) => {
            c.activation = compose(c.activation, a);
            true
        }
        Op::Gemm(c) => {
            c.activation = compose(c.activation, a);
            true
        }
        op @ (Op::Relu | Op::Clip { .. }) => match activation_of(op) {
            Some(first) => {
                *op = as_op(compose(first, a));
                true
            }
            None => false,
        },
        _ => false,
    };
    if fused {
        absorb(g, p, act, x);
    }
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition_matches_applying_both() {
        let acts = [
            Activation::None,
            Activation::Relu,
            Activation::RELU6,
            Activation::Clip { min: f32::NEG_INFINITY, max: 6.0 },
            Activation::Clip { min: -1.0, max: 1.0 },
            Activation::Clip { min: 2.0, max: 3.0 },
            Activation::Clip { min: -5.0, max: -4.0 },
            Activation::Clip { min: 7.0, max: f32::INFINITY },
        ];
        for &a in &acts {
            for &b in &acts {
                let c = compose(a, b);
                for i in -100..=100 {
                    let x = i as f32 * 0.1;
                    assert_eq!(c.apply(x), b.apply(a.apply(x)), "{a:?} then {b:?} at {x}: {c:?}");
                }
            }
        }
        assert_eq!(compose(Activation::Relu, Activation::Clip { min: f32::NEG_INFINITY, max: 6.0 }), Activation::RELU6);
    }
}
