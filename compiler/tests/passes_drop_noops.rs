//! drop_noops: Identity and Dropout go; graph outputs keep their tensors and names.

mod passes_common;

use mobilenetc::graph::Op;
use mobilenetc::passes::drop_noops::run;
use passes_common::*;

#[test]
fn identity_and_dropout_in_the_middle_and_at_the_output() {
    let mut b = Builder::new(1);
    let x = b.input("x", &[1, 3, 5, 5]);
    let i = b.unary(x, Op::Identity);
    let c = b.conv(i, 4, 3, 1, 1, 1, true);
    let d = b.unary(c, Op::Dropout { ratio: 0.5 });
    let r = b.unary(d, Op::Relu);
    let y = b.unary(r, Op::Dropout { ratio: 0.2 });
    b.output(y);
    let after = check_pass(&b.g, run, true);
    assert_eq!(count(&after, "Identity") + count(&after, "Dropout"), 0);
    assert_eq!(producer_op(&after, y), Op::Relu, "the Relu took over the output");
    assert_eq!(after.tensor(y).name, b.g.tensor(y).name);
}

#[test]
fn an_identity_between_two_graph_outputs_stays() {
    let mut b = Builder::new(2);
    let x = b.input("x", &[4]);
    let r = b.unary(x, Op::Relu);
    let y = b.unary(r, Op::Identity);
    b.output(r);
    b.output(y);
    check_pass(&b.g, run, false);
}

#[test]
fn dropout_with_a_read_mask_stays() {
    let mut b = Builder::new(3);
    let x = b.input("x", &[4]);
    let y = b.g.add_tensor("y", vec![4]);
    let mask = b.g.add_tensor("mask", vec![4]);
    b.g.add_node("drop", Op::Dropout { ratio: 0.1 }, vec![x], vec![y, mask]);
    b.output(y);
    b.output(mask);
    check_pass(&b.g, run, false);
}

#[test]
fn zero_pad_and_unbounded_clip_are_noops() {
    let mut b = Builder::new(4);
    let x = b.input("x", &[1, 2, 3, 3]);
    let r = b.unary(x, Op::Relu);
    let p = b.unary(r, Op::Pad { pads: vec![0; 8], value: 1.0 });
    let y = b.unary(p, Op::Clip { min: f32::NEG_INFINITY, max: f32::INFINITY });
    b.output(y);
    let after = check_pass(&b.g, run, true);
    assert_eq!(after.dag.node_count(), 1);
}
