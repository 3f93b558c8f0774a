//! fuse_activation: Relu / Clip into the producing Conv or Gemm epilogue; composition.

mod passes_common;

use mobilenetc::graph::{Activation, Op};
use mobilenetc::passes::fuse_activation::run;
use passes_common::*;

fn epilogue(op: &Op) -> Activation {
    match op {
        Op::Conv(a) => a.activation,
        Op::Gemm(a) => a.activation,
        other => panic!("not a conv or gemm: {other:?}"),
    }
}

#[test]
fn relu6_relu_and_any_clip_into_a_conv() {
    for (seed, act, expect) in [
        (1, Op::Clip { min: 0.0, max: 6.0 }, Activation::RELU6),
        (2, Op::Relu, Activation::Relu),
        (3, Op::Clip { min: -0.5, max: 0.25 }, Activation::Clip { min: -0.5, max: 0.25 }),
        (4, Op::Clip { min: f32::NEG_INFINITY, max: 0.1 }, Activation::Clip { min: f32::NEG_INFINITY, max: 0.1 }),
    ] {
        let mut b = Builder::new(seed);
        let x = b.input("x", &[1, 3, 7, 7]);
        let c = b.conv(x, 4, 3, 2, 1, 1, true);
        let y = b.unary(c, act);
        b.output(y);
        let after = check_pass(&b.g, run, true);
        assert_eq!(count(&after, "Clip") + count(&after, "Relu"), 0);
        assert_eq!(epilogue(&producer_op(&after, y)), expect);
    }
}

#[test]
fn depthwise_conv_and_gemm_epilogues() {
    let mut b = Builder::new(5);
    let x = b.input("x", &[1, 4, 6, 6]);
    let c = b.conv(x, 4, 3, 1, 1, 4, false);
    let y = b.relu6(c);
    b.output(y);
    check_pass(&b.g, run, true);

    let mut b = Builder::new(6);
    let x = b.input("x", &[2, 5]);
    let g = b.gemm(x, 3, true, true);
    let y = b.unary(g, Op::Clip { min: -0.2, max: 0.2 });
    b.output(y);
    let after = check_pass(&b.g, run, true);
    assert_eq!(epilogue(&producer_op(&after, y)), Activation::Clip { min: -0.2, max: 0.2 });
}

#[test]
fn relu_then_clip_to_6_is_relu6() {
    let mut b = Builder::new(7);
    let x = b.input("x", &[1, 3, 5, 5]);
    let c = b.conv(x, 3, 1, 1, 0, 1, true);
    let r = b.unary(c, Op::Relu);
    let y = b.unary(r, Op::Clip { min: f32::NEG_INFINITY, max: 6.0 });
    b.output(y);
    let mut after = b.g.clone();
    while run(&mut after).unwrap() {}
    assert_same(&b.g, &after);
    assert_eq!(after.dag.node_count(), 1);
    assert_eq!(epilogue(&producer_op(&after, y)), Activation::RELU6);
}

#[test]
fn standalone_relu_then_clip_become_one_node() {
    let mut b = Builder::new(8);
    let x = b.input("x", &[1, 3, 5, 5]);
    let z = b.input("z", &[1, 3, 5, 5]);
    let s = b.op("add", Op::Add, vec![x, z], &[1, 3, 5, 5]);
    let r = b.unary(s, Op::Relu);
    let y = b.unary(r, Op::Clip { min: f32::NEG_INFINITY, max: 6.0 });
    b.output(y);
    let after = check_pass(&b.g, run, true);
    assert_eq!(producer_op(&after, y), Op::Clip { min: 0.0, max: 6.0 });
    assert_eq!(after.dag.node_count(), 2);
}

#[test]
fn no_fusion_when_the_conv_output_has_another_reader_or_is_an_output() {
    let mut b = Builder::new(9);
    let x = b.input("x", &[1, 2, 4, 4]);
    let c = b.conv(x, 2, 3, 1, 1, 1, true);
    let y = b.relu6(c);
    let z = b.op("add", Op::Add, vec![y, c], &[1, 2, 4, 4]);
    b.output(z);
    check_pass(&b.g, run, false);

    let mut b = Builder::new(10);
    let x = b.input("x", &[1, 2, 4, 4]);
    let c = b.conv(x, 2, 3, 1, 1, 1, true);
    let y = b.relu6(c);
    b.output(c);
    b.output(y);
    check_pass(&b.g, run, false);
}

#[test]
fn conv_without_bias_then_batchnorm_then_relu6_fully_fuses() {
    // The PyTorch export pattern: Conv(no bias) + BN + Clip(0, 6).
    let mut b = Builder::new(11);
    let x = b.input("x", &[1, 3, 8, 8]);
    let c = b.conv(x, 8, 3, 2, 1, 1, false);
    let n = b.bn(c);
    let y = b.relu6(n);
    let d = b.conv(y, 8, 3, 1, 1, 8, false);
    let n2 = b.bn(d);
    let y2 = b.relu6(n2);
    b.output(y2);
    let mut after = b.g.clone();
    mobilenetc::passes::optimize(&mut after, &Default::default()).unwrap();
    assert_same(&b.g, &after);
    assert_eq!(after.dag.node_count(), 2);
    assert_eq!(epilogue(&producer_op(&after, after.outputs[0])), Activation::RELU6);
}
