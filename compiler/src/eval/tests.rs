//! Hand-computed cases: each op on values small enough to check on paper.

use super::*;
use crate::graph::{Activation, AutoPad, ConvAttrs, GemmAttrs, PoolAttrs};

fn t(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::new(shape.to_vec(), data.to_vec())
}

/// A one-node graph: the first input is runtime `x`, the others constants.
fn single(op: Op, x: Tensor, consts: Vec<Tensor>) -> (Graph, Tensor) {
    let mut g = Graph::new("t");
    let xi = g.add_input("x", x.shape.clone());
    let mut ins = vec![xi];
    for (i, c) in consts.into_iter().enumerate() {
        ins.push(g.add_constant(format!("c{i}"), c));
    }
    let (_, y) = g.add_op("n", op, ins, vec![]);
    g.outputs.push(y);
    (g, x)
}

fn eval1(op: Op, x: Tensor, consts: Vec<Tensor>) -> Tensor {
    let (g, x) = single(op, x, consts);
    evaluate(&g, &[("x", x)]).unwrap().remove(0)
}

fn conv_attrs(k: usize, s: usize, p: usize, group: usize) -> ConvAttrs {
    ConvAttrs { kernel: [k, k], strides: [s, s], pads: [p; 4], dilations: [1, 1], group, auto_pad: AutoPad::NotSet, activation: Activation::None }
}

#[test]
fn conv_3x3_pad1_stride2_with_bias() {
    // x = 1..16 on a 4×4 plane, an all-ones 3×3 kernel: each output is a padded window sum.
    let x = t(&[1, 1, 4, 4], &(1..=16).map(|v| v as f32).collect::<Vec<_>>());
    let y = eval1(Op::Conv(conv_attrs(3, 2, 1, 1)), x, vec![t(&[1, 1, 3, 3], &[1.0; 9]), t(&[1], &[0.5])]);
    // windows centred at (0,0), (0,2), (2,0), (2,2)
    assert_eq!(y, t(&[1, 1, 2, 2], &[1.0 + 2.0 + 5.0 + 6.0 + 0.5, 2.0 + 3.0 + 4.0 + 6.0 + 7.0 + 8.0 + 0.5, 5.0 + 6.0 + 9.0 + 10.0 + 13.0 + 14.0 + 0.5, 6.0 + 7.0 + 8.0 + 10.0 + 11.0 + 12.0 + 14.0 + 15.0 + 16.0 + 0.5]));
}

#[test]
fn depthwise_conv_uses_its_own_channel_and_epilogue() {
    let x = t(&[1, 2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
    let mut a = conv_attrs(1, 1, 0, 2);
    a.activation = Activation::Clip { min: 0.0, max: 6.0 };
    let y = eval1(Op::Conv(a), x, vec![t(&[2, 1, 1, 1], &[2.0, -1.0])]);
    assert_eq!(y, t(&[1, 2, 1, 2], &[2.0, 4.0, 0.0, 0.0]));
}

#[test]
fn grouped_conv_reads_its_group_only() {
    // 4 input channels, group 2, 2 outputs: out0 = ch0 + ch1, out1 = ch2 + ch3.
    let x = t(&[1, 4, 1, 1], &[1.0, 10.0, 100.0, 1000.0]);
    let y = eval1(Op::Conv(conv_attrs(1, 1, 0, 2)), x, vec![t(&[2, 2, 1, 1], &[1.0; 4])]);
    assert_eq!(y, t(&[1, 2, 1, 1], &[11.0, 1100.0]));
}

#[test]
fn same_upper_puts_the_odd_pad_at_the_end() {
    let x = t(&[1, 1, 1, 4], &[1.0, 2.0, 3.0, 4.0]);
    let mut a = conv_attrs(1, 1, 0, 1);
    a.kernel = [1, 2];
    a.strides = [1, 2];
    a.auto_pad = AutoPad::SameUpper;
    // out = ceil(4/2) = 2, total pad = (2-1)*2 + 2 - 4 = 0 → windows [1,2], [3,4]
    let y = eval1(Op::Conv(a.clone()), x.clone(), vec![t(&[1, 1, 1, 2], &[1.0, 1.0])]);
    assert_eq!(y.data, [3.0, 7.0]);
    a.strides = [1, 1];
    // out = 4, total pad 1 at the end: [1,2],[2,3],[3,4],[4,0]
    let y = eval1(Op::Conv(a.clone()), x.clone(), vec![t(&[1, 1, 1, 2], &[1.0, 1.0])]);
    assert_eq!(y.data, [3.0, 5.0, 7.0, 4.0]);
    a.auto_pad = AutoPad::SameLower;
    let y = eval1(Op::Conv(a), x, vec![t(&[1, 1, 1, 2], &[1.0, 1.0])]);
    assert_eq!(y.data, [1.0, 3.0, 5.0, 7.0]);
}

fn pool_attrs(k: usize, s: usize, p: usize) -> PoolAttrs {
    PoolAttrs { kernel: [k, k], strides: [s, s], pads: [p; 4], dilations: [1, 1], auto_pad: AutoPad::NotSet, ceil_mode: false, count_include_pad: false }
}

#[test]
fn pools_with_padding_and_ceil_mode() {
    let x = t(&[1, 1, 3, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let y = eval1(Op::MaxPool(pool_attrs(2, 2, 0)), x.clone(), vec![]);
    assert_eq!(y, t(&[1, 1, 1, 1], &[5.0]));
    let mut a = pool_attrs(2, 2, 0);
    a.ceil_mode = true;
    let y = eval1(Op::MaxPool(a.clone()), x.clone(), vec![]);
    assert_eq!(y, t(&[1, 1, 2, 2], &[5.0, 6.0, 8.0, 9.0]));
    let y = eval1(Op::AveragePool(a), x.clone(), vec![]);
    assert_eq!(y.data, [3.0, 4.5, 7.5, 9.0]);
    let mut a = pool_attrs(3, 1, 1);
    let y = eval1(Op::AveragePool(a.clone()), x.clone(), vec![]);
    assert_eq!(y.data[0], (1.0 + 2.0 + 4.0 + 5.0) / 4.0);
    a.count_include_pad = true;
    let y = eval1(Op::AveragePool(a), x.clone(), vec![]);
    assert_eq!(y.data[0], (1.0 + 2.0 + 4.0 + 5.0) / 9.0);
    let y = eval1(Op::GlobalAveragePool, x, vec![]);
    assert_eq!(y, t(&[1, 1, 1, 1], &[5.0]));
}

#[test]
fn gemm_transposes_scales_and_broadcasts() {
    let a = t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b_t = t(&[2, 3], &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]); // B' = b_tᵀ, [3, 2]
    let attrs = GemmAttrs { alpha: 2.0, beta: 0.5, trans_a: false, trans_b: true, activation: Activation::None };
    let y = eval1(Op::Gemm(attrs), a.clone(), vec![b_t, t(&[2], &[10.0, 20.0])]);
    // A·B' = [[4, 2], [10, 5]]
    assert_eq!(y, t(&[2, 2], &[13.0, 14.0, 25.0, 20.0]));
    let at = GemmAttrs { trans_a: true, ..GemmAttrs::default() };
    let y = eval1(Op::Gemm(at), t(&[3, 1], &[1.0, 2.0, 3.0]), vec![t(&[3, 1], &[1.0, 1.0, 1.0])]);
    assert_eq!(y, t(&[1, 1], &[6.0]));
}

#[test]
fn matmul_broadcasts_batches_and_promotes_vectors() {
    let a = t(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
    let y = eval1(Op::MatMul, a, vec![t(&[2, 2], &[1.0, 0.0, 0.0, 2.0])]);
    assert_eq!(y, t(&[2, 1, 2], &[1.0, 4.0, 3.0, 8.0]));
    let y = eval1(Op::MatMul, t(&[2], &[1.0, 2.0]), vec![t(&[2], &[3.0, 4.0])]);
    assert_eq!(y, t(&[], &[11.0]));
}

#[test]
fn softmax_on_an_inner_axis_and_the_old_coerced_form() {
    let x = t(&[1, 2, 2], &[0.0, 0.0, 0.0, 2.0_f32.ln()]);
    let y = eval1(Op::Softmax { axis: 1 }, x.clone(), vec![]);
    let expect = [0.5, 1.0 / 3.0, 0.5, 2.0 / 3.0];
    assert!(y.data.iter().zip(expect).all(|(a, b)| (a - b).abs() < 1e-7), "{:?}", y.data);
    let (mut g, x) = single(Op::Softmax { axis: 1 }, x, vec![]);
    g.meta.opset_import = vec![(String::new(), 11)];
    let y = evaluate(&g, &[("x", x)]).unwrap().remove(0);
    let expect = [0.2, 0.2, 0.2, 0.4];
    assert!(y.data.iter().zip(expect).all(|(a, b)| (a - b).abs() < 1e-7), "{:?}", y.data);
}

#[test]
fn batchnorm_honours_epsilon() {
    let x = t(&[1, 2, 1, 1], &[3.0, 3.0]);
    let p = |a: f32, b: f32| t(&[2], &[a, b]);
    let y = eval1(Op::BatchNorm { epsilon: 0.25, momentum: 0.9 }, x, vec![p(2.0, 1.0), p(1.0, -1.0), p(1.0, 5.0), p(0.75, 3.75)]);
    assert_eq!(y.data, [2.0 * 2.0 / 1.0 + 1.0, -2.0 / 2.0 - 1.0]);
}

#[test]
fn layout_ops() {
    let x = t(&[1, 2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(eval1(Op::Transpose { perm: vec![0, 2, 1] }, x.clone(), vec![]), t(&[1, 3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]));
    assert_eq!(eval1(Op::Transpose { perm: vec![] }, x.clone(), vec![]).shape, [3, 2, 1]);
    assert_eq!(eval1(Op::Flatten { axis: -1 }, x.clone(), vec![]).shape, [2, 3]);
    assert_eq!(eval1(Op::Reshape { shape: vec![0, -1], allowzero: false }, x.clone(), vec![]).shape, [1, 6]);
    let p = eval1(Op::Pad { pads: vec![0, 1, -1, 0, 0, 1], value: 9.0 }, x.clone(), vec![]);
    assert_eq!(p, t(&[1, 3, 3], &[9.0, 9.0, 9.0, 2.0, 3.0, 9.0, 5.0, 6.0, 9.0]));
    let c = eval1(Op::Concat { axis: 1 }, x.clone(), vec![t(&[1, 1, 3], &[7.0, 8.0, 9.0])]);
    assert_eq!(c, t(&[1, 3, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]));
    let a = eval1(Op::Add, x.clone(), vec![t(&[2, 1], &[10.0, 20.0])]);
    assert_eq!(a.data, [11.0, 12.0, 13.0, 24.0, 25.0, 26.0]);
}

#[test]
fn head_is_pool_then_fc_then_softmax() {
    let x = t(&[1, 2, 1, 2], &[1.0, 3.0, 0.0, 4.0]); // pooled [2, 2]
    let w = t(&[2, 2], &[1.0, 0.0, 0.0, -1.0]);
    let b = t(&[2], &[0.0, 4.0]);
    let y = eval1(Op::Head { softmax: false }, x.clone(), vec![w.clone(), b.clone()]);
    assert_eq!(y, t(&[1, 2], &[2.0, 2.0]));
    let y = eval1(Op::Head { softmax: true }, x, vec![w, b]);
    assert_eq!(y.data, [0.5, 0.5]);
}

#[test]
fn bad_inputs_are_named_errors() {
    let (g, x) = single(Op::Relu, t(&[2], &[1.0, 2.0]), vec![]);
    let e = evaluate(&g, &[("y", x.clone())]).unwrap_err().to_string();
    assert!(e.contains("'y' is not an input") && e.contains("x"), "{e}");
    let e = evaluate(&g, &[("x", t(&[3], &[1.0, 2.0, 3.0]))]).unwrap_err().to_string();
    assert!(e.contains("[3]") && e.contains("[2]"), "{e}");
    let e = evaluate(&g, &[("x", Tensor { shape: vec![2], data: vec![1.0] })]).unwrap_err().to_string();
    assert!(e.contains("1 values"), "{e}");
    let e = evaluate(&g, &[]).unwrap_err().to_string();
    assert!(e.contains("missing graph input(s): x"), "{e}");
    let e = evaluate(&g, &[("x", x.clone()), ("x", x)]).unwrap_err().to_string();
    assert!(e.contains("twice"), "{e}");
}

#[test]
fn a_wrong_recorded_shape_is_caught() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", vec![1, 2, 3]);
    let (_, y) = g.add_op("flat", Op::Flatten { axis: 1 }, vec![x], vec![6, 1]);
    g.outputs.push(y);
    let e = evaluate(&g, &[("x", Tensor::zeros(vec![1, 2, 3]))]).unwrap_err().to_string();
    assert!(e.contains("'flat'") && e.contains("[1, 6]") && e.contains("[6, 1]"), "{e}");
}

#[test]
fn evaluate_all_keeps_intermediates() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", vec![2]);
    let (_, a) = g.add_op("a", Op::Relu, vec![x], vec![2]);
    let (_, b) = g.add_op("b", Op::Mul, vec![a, a], vec![2]);
    g.outputs.push(b);
    let all = evaluate_all(&g, &[("x", t(&[2], &[-1.0, 3.0]))]).unwrap();
    assert_eq!(all[&a].data, [0.0, 3.0]);
    assert_eq!(all[&b].data, [0.0, 9.0]);
}
