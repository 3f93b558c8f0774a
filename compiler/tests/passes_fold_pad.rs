//! fold_pad: a zero Pad of the spatial axes folds into the following Conv.

mod passes_common;

use mobilenetc::graph::Op;
use mobilenetc::passes::fold_pad::run;
use passes_common::*;

fn pad_conv(seed: u64, pads: Vec<i64>, value: f32, conv_pad: usize, group: usize) -> (Builder, mobilenetc::graph::TensorId) {
    let mut b = Builder::new(seed);
    let x = b.input("x", &[1, 4, 9, 8]);
    let s = b.g.shape(x).to_vec();
    let shape = [s[0], s[1], (s[2] as i64 + pads[2] + pads[6]) as usize, (s[3] as i64 + pads[3] + pads[7]) as usize];
    let p = b.op("pad", Op::Pad { pads, value }, vec![x], &shape);
    let c = b.conv(p, 4, 3, 2, conv_pad, group, true);
    b.output(c);
    (b, c)
}

#[test]
fn asymmetric_tf_style_pad_before_a_stride_2_conv() {
    let (b, c) = pad_conv(1, vec![0, 0, 0, 0, 0, 0, 1, 1], 0.0, 0, 1);
    let after = check_pass(&b.g, run, true);
    assert_eq!(count(&after, "Pad"), 0);
    let Op::Conv(a) = producer_op(&after, c) else { panic!() };
    assert_eq!(a.pads, [0, 0, 1, 1]);
}

#[test]
fn adds_to_existing_pads_of_a_depthwise_conv() {
    let (b, c) = pad_conv(2, vec![0, 0, 1, 2, 0, 0, 0, 1], 0.0, 1, 4);
    let after = check_pass(&b.g, run, true);
    let Op::Conv(a) = producer_op(&after, c) else { panic!() };
    assert_eq!(a.pads, [2, 3, 1, 2]);
}

#[test]
fn nonzero_value_channel_pads_and_crops_stay() {
    check_pass(&pad_conv(3, vec![0, 0, 1, 1, 0, 0, 1, 1], 0.5, 0, 1).0.g, run, false);
    let mut b = Builder::new(4);
    let x = b.input("x", &[1, 2, 6, 6]);
    let p = b.op("pad", Op::Pad { pads: vec![0, 1, 0, 0, 0, 1, 0, 0], value: 0.0 }, vec![x], &[1, 4, 6, 6]);
    let c = b.conv(p, 2, 3, 1, 1, 1, false);
    b.output(c);
    check_pass(&b.g, run, false);
    check_pass(&pad_conv(5, vec![0, 0, -1, 0, 0, 0, 1, 1], 0.0, 0, 1).0.g, run, false);
}

#[test]
fn a_pad_read_twice_stays() {
    let mut b = Builder::new(6);
    let x = b.input("x", &[1, 2, 6, 6]);
    let p = b.op("pad", Op::Pad { pads: vec![0, 0, 1, 1, 0, 0, 1, 1], value: 0.0 }, vec![x], &[1, 2, 8, 8]);
    let c = b.conv(p, 2, 3, 1, 0, 1, false);
    b.output(c);
    b.output(p);
    check_pass(&b.g, run, false);
}
