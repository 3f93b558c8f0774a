//! fold_batchnorm: BatchNorm into the preceding Conv (any group, with and without bias,
//! epsilon honoured) or Gemm (transB either way), never across a tensor read twice.

mod passes_common;

use mobilenetc::graph::{Activation, Op};
use mobilenetc::passes::fold_batchnorm::run;
use passes_common::*;

/// x [2, cin, 9, 9] → conv → bn → output, folded and checked.
#[allow(clippy::too_many_arguments)] // one case per line in the tests below
fn conv_bn(seed: u64, cin: usize, cout: usize, k: usize, stride: usize, group: usize, bias: bool, eps: f32) {
    let mut b = Builder::new(seed);
    let x = b.input("x", &[2, cin, 9, 9]);
    let c = b.conv(x, cout, k, stride, k / 2, group, bias);
    let y = b.bn_eps(c, eps);
    b.output(y);
    let after = check_pass(&b.g, run, true);
    assert_eq!(count(&after, "BatchNormalization"), 0);
    let Op::Conv(a) = producer_op(&after, y) else { panic!("the conv writes the output") };
    assert_eq!(a.group, group);
    let conv = after.node(after.producer(y).unwrap());
    assert_eq!(conv.inputs.len(), 3, "the folded conv has a bias");
}

#[test]
fn regular_conv_with_and_without_bias() {
    conv_bn(1, 3, 8, 3, 2, 1, true, 1e-3);
    conv_bn(2, 3, 8, 3, 1, 1, false, 1e-3);
    conv_bn(3, 5, 7, 1, 1, 1, false, 1e-3);
}

#[test]
fn depthwise_conv_with_and_without_bias() {
    conv_bn(4, 6, 6, 3, 1, 6, false, 1e-3);
    conv_bn(5, 6, 6, 3, 2, 6, true, 1e-3);
}

#[test]
fn grouped_conv_and_channel_multiplier() {
    conv_bn(6, 4, 6, 3, 1, 2, false, 1e-3);
    // depthwise with multiplier 2: group = cin, cout = 2·cin
    conv_bn(7, 3, 6, 3, 1, 3, true, 1e-3);
}

#[test]
fn epsilon_is_honoured() {
    // var in [0.5, 2] against ε = 0.5: ignoring ε would be off by up to 40%.
    conv_bn(8, 4, 4, 3, 1, 4, false, 0.5);
}

#[test]
fn gemm_with_trans_b_either_way() {
    for (seed, trans_b, bias) in [(10, false, false), (11, true, true), (12, false, true), (13, true, false)] {
        let mut b = Builder::new(seed);
        let x = b.input("x", &[3, 12]);
        let g = b.gemm(x, 5, trans_b, bias);
        let y = b.bn(g);
        b.output(y);
        let after = check_pass(&b.g, run, true);
        assert_eq!(count(&after, "BatchNormalization"), 0);
        assert!(matches!(producer_op(&after, y), Op::Gemm(_)));
    }
}

#[test]
fn gemm_with_alpha_and_beta() {
    let mut b = Builder::new(14);
    let x = b.input("x", &[2, 6]);
    let w = b.constant("w", &[6, 4], -1.0, 1.0);
    let c = b.constant("c", &[1, 4], -1.0, 1.0);
    let attrs = mobilenetc::graph::GemmAttrs { alpha: 0.5, beta: 2.0, ..Default::default() };
    let g = b.op("gemm", Op::Gemm(attrs), vec![x, w, c], &[2, 4]);
    let y = b.bn(g);
    b.output(y);
    check_pass(&b.g, run, true);
}

#[test]
fn no_fold_when_the_conv_output_has_another_reader() {
    let mut b = Builder::new(20);
    let x = b.input("x", &[1, 4, 6, 6]);
    let c = b.conv(x, 4, 3, 1, 1, 4, false);
    let y = b.bn(c);
    let z = b.op("add", Op::Add, vec![y, c], &[1, 4, 6, 6]);
    b.output(z);
    let after = check_pass(&b.g, run, false);
    assert_eq!(count(&after, "BatchNormalization"), 1);
}

#[test]
fn no_fold_when_the_conv_output_is_a_graph_output() {
    let mut b = Builder::new(21);
    let x = b.input("x", &[1, 4, 6, 6]);
    let c = b.conv(x, 4, 1, 1, 0, 1, true);
    let y = b.bn(c);
    b.output(c);
    b.output(y);
    check_pass(&b.g, run, false);
}

#[test]
fn no_fold_across_a_fused_activation() {
    let mut b = Builder::new(22);
    let x = b.input("x", &[1, 4, 6, 6]);
    let c = b.conv(x, 4, 1, 1, 0, 1, true);
    let p = b.g.producer(c).unwrap();
    if let Op::Conv(a) = &mut b.g.node_mut(p).op {
        a.activation = Activation::RELU6;
    }
    let y = b.bn(c);
    b.output(y);
    check_pass(&b.g, run, false);
}

#[test]
fn shared_weights_are_not_modified_in_place() {
    // Two convs share one weight; only one is followed by a BatchNorm.
    let mut b = Builder::new(23);
    let x = b.input("x", &[1, 3, 5, 5]);
    let c1 = b.conv(x, 4, 3, 1, 1, 1, false);
    let w = b.g.node(b.g.producer(c1).unwrap()).inputs[1];
    let attrs = match &b.g.node(b.g.producer(c1).unwrap()).op {
        Op::Conv(a) => a.clone(),
        _ => unreachable!(),
    };
    let c2 = b.op("conv_shared", Op::Conv(attrs), vec![x, w], &[1, 4, 5, 5]);
    let y = b.bn(c1);
    b.output(y);
    b.output(c2);
    check_pass(&b.g, run, true);
}
