//! transposes: pairs cancel, chains merge, unit-axis moves become reshapes, and the layout
//! Transposes of NHWC graphs move to the edges.

mod passes_common;

use mobilenetc::graph::Op;
use mobilenetc::passes::transposes::run;
use passes_common::*;

fn tr(perm: &[usize]) -> Op {
    Op::Transpose { perm: perm.to_vec() }
}

fn fixed_point(g: &mobilenetc::graph::Graph) -> mobilenetc::graph::Graph {
    let mut after = g.clone();
    let mut rounds = 0;
    while run(&mut after).unwrap() {
        rounds += 1;
        assert!(rounds < 20, "the transposes pass does not settle");
    }
    assert_same(g, &after);
    after
}

#[test]
fn inverse_pairs_cancel_and_other_pairs_merge() {
    let mut b = Builder::new(1);
    let x = b.input("x", &[1, 2, 3, 4]);
    let r = b.unary(x, Op::Relu);
    let t1 = b.op("t1", tr(&[0, 2, 3, 1]), vec![r], &[1, 3, 4, 2]);
    let t2 = b.op("t2", tr(&[0, 3, 1, 2]), vec![t1], &[1, 2, 3, 4]);
    let y = b.unary(t2, Op::Relu);
    b.output(y);
    let after = fixed_point(&b.g);
    assert_eq!(count(&after, "Transpose"), 0);

    let mut b = Builder::new(2);
    let x = b.input("x", &[2, 3, 4]);
    let r = b.unary(x, Op::Relu);
    let t1 = b.op("t1", tr(&[1, 0, 2]), vec![r], &[3, 2, 4]);
    let t2 = b.op("t2", tr(&[0, 2, 1]), vec![t1], &[3, 4, 2]);
    let y = b.unary(t2, Op::Relu);
    b.output(y);
    let after = fixed_point(&b.g);
    assert_eq!(count(&after, "Transpose"), 1);
}

#[test]
fn a_cancelling_pair_at_the_output_keeps_the_output_name() {
    let mut b = Builder::new(3);
    let x = b.input("x", &[1, 2, 3, 4]);
    let r = b.unary(x, Op::Relu);
    let t1 = b.op("t1", tr(&[0, 2, 3, 1]), vec![r], &[1, 3, 4, 2]);
    let y = b.op("t2", tr(&[0, 3, 1, 2]), vec![t1], &[1, 2, 3, 4]);
    b.output(y);
    let after = fixed_point(&b.g);
    assert_eq!(count(&after, "Transpose"), 0);
    assert_eq!(producer_op(&after, y), Op::Relu);
}

#[test]
fn moving_only_unit_axes_is_a_reshape() {
    let mut b = Builder::new(4);
    let x = b.input("x", &[2, 5, 1, 1]);
    let r = b.unary(x, Op::Relu);
    let t = b.op("t", tr(&[0, 2, 3, 1]), vec![r], &[2, 1, 1, 5]);
    let y = b.unary(t, Op::Relu);
    b.output(y);
    let after = fixed_point(&b.g);
    assert_eq!(count(&after, "Transpose"), 0);
    assert_eq!(producer_op(&after, t), Op::Reshape { shape: vec![2, 1, 1, 5], allowzero: false });
}

#[test]
fn nhwc_input_transpose_moves_up_through_normalization_and_pad() {
    // NHWC input → Mul(scale [C]) → Sub(mean [1, 1, 1, C]) → Pad (NHWC axes) → Transpose to
    // NCHW → Conv: the Transpose ends right after the input and the Pad becomes NCHW.
    let mut b = Builder::new(5);
    let x = b.input("x", &[1, 8, 8, 3]);
    let s = b.constant("scale", &[3], 0.5, 1.5);
    let m = b.op("mul", Op::Mul, vec![x, s], &[1, 8, 8, 3]);
    let mean = b.constant("mean", &[1, 1, 1, 3], -0.5, 0.5);
    let n = b.op("sub", Op::Sub, vec![m, mean], &[1, 8, 8, 3]);
    let p = b.op("pad", Op::Pad { pads: vec![0, 0, 0, 0, 0, 1, 1, 0], value: 0.0 }, vec![n], &[1, 9, 9, 3]);
    let t = b.op("to_nchw", tr(&[0, 3, 1, 2]), vec![p], &[1, 3, 9, 9]);
    let c = b.conv(t, 4, 3, 2, 0, 1, true);
    b.output(c);
    let after = fixed_point(&b.g);
    assert_eq!(count(&after, "Transpose"), 1);
    let tn = after.dag.node_indices().find(|&n| matches!(after.node(n).op, Op::Transpose { .. })).unwrap();
    assert_eq!(after.node(tn).inputs, [x], "the Transpose reads the input");
    let pad = after.producer(t).unwrap();
    assert_eq!(after.node(pad).op, Op::Pad { pads: vec![0, 0, 0, 0, 0, 0, 1, 1], value: 0.0 });
}

#[test]
fn an_output_transpose_moves_down_to_the_output() {
    let mut b = Builder::new(6);
    let x = b.input("x", &[1, 3, 4, 4]);
    let c = b.conv(x, 2, 3, 1, 1, 1, true);
    let t = b.op("to_nhwc", tr(&[0, 2, 3, 1]), vec![c], &[1, 4, 4, 2]);
    let bias = b.constant("bias", &[2], -1.0, 1.0);
    let a = b.op("add", Op::Add, vec![t, bias], &[1, 4, 4, 2]);
    let y = b.unary(a, Op::Relu);
    b.output(y);
    let after = fixed_point(&b.g);
    assert!(matches!(producer_op(&after, y), Op::Transpose { .. }), "the Transpose writes the output");
    // ...and the Relu now follows the conv directly, ready to fuse... after the Add.
    let relu_in = after.node(after.producer(y).unwrap()).inputs[0];
    assert_eq!(producer_op(&after, relu_in), Op::Relu);
}

#[test]
fn a_transpose_in_the_middle_stays_put() {
    let mut b = Builder::new(7);
    let x = b.input("x", &[1, 3, 4, 4]);
    let c = b.conv(x, 2, 3, 1, 1, 1, true);
    let r = b.unary(c, Op::Relu);
    let t = b.op("t", tr(&[0, 1, 3, 2]), vec![r], &[1, 2, 4, 4]);
    let c2 = b.conv(t, 2, 1, 1, 0, 1, true);
    b.output(c2);
    fixed_point(&b.g);
    let mut after = b.g.clone();
    assert!(!run(&mut after).unwrap());
}
