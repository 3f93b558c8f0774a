//! views: Flatten → Reshape with a concrete target, reshape chains merged, `is_view`.

mod passes_common;

use mobilenetc::graph::Op;
use mobilenetc::passes::{is_view, views::run};
use passes_common::*;

#[test]
fn flatten_becomes_a_concrete_reshape_and_a_view() {
    let mut b = Builder::new(1);
    let x = b.input("x", &[2, 3, 2, 2]);
    let r = b.unary(x, Op::Relu);
    let f = b.op("flat", Op::Flatten { axis: 1 }, vec![r], &[2, 12]);
    let y = b.unary(f, Op::Relu);
    b.output(y);
    let after = check_pass(&b.g, run, true);
    let n = after.producer(f).unwrap();
    assert_eq!(after.node(n).op, Op::Reshape { shape: vec![2, 12], allowzero: false });
    assert!(is_view(&after, n));
    assert!(!is_view(&after, after.producer(y).unwrap()));
    // A second run changes nothing: the form is stable.
    let mut again = after.clone();
    assert!(!run(&mut again).unwrap());
}

#[test]
fn reshape_with_0_and_minus_1_is_resolved_and_chains_merge() {
    let mut b = Builder::new(2);
    let x = b.input("x", &[2, 3, 4]);
    let r1 = b.op("r1", Op::Reshape { shape: vec![0, -1], allowzero: false }, vec![x], &[2, 12]);
    let r2 = b.op("r2", Op::Reshape { shape: vec![0, 2, -1], allowzero: false }, vec![r1], &[2, 2, 6]);
    let y = b.unary(r2, Op::Relu);
    b.output(y);
    let after = check_pass(&b.g, run, true);
    assert_eq!(count(&after, "Reshape"), 1);
    assert_eq!(producer_op(&after, r2), Op::Reshape { shape: vec![2, 2, 6], allowzero: false });
}

#[test]
fn a_shape_keeping_reshape_goes_even_at_the_output() {
    let mut b = Builder::new(3);
    let x = b.input("x", &[2, 6]);
    let r = b.unary(x, Op::Relu);
    let y = b.op("same", Op::Reshape { shape: vec![2, -1], allowzero: false }, vec![r], &[2, 6]);
    b.output(y);
    let after = check_pass(&b.g, run, true);
    assert_eq!(count(&after, "Reshape"), 0);
    assert_eq!(producer_op(&after, y), Op::Relu);
}

#[test]
fn a_reshape_read_twice_is_not_merged() {
    let mut b = Builder::new(4);
    let x = b.input("x", &[2, 6]);
    let r1 = b.op("r1", Op::Reshape { shape: vec![3, 4], allowzero: false }, vec![x], &[3, 4]);
    let r2 = b.op("r2", Op::Reshape { shape: vec![12], allowzero: false }, vec![r1], &[12]);
    b.output(r2);
    b.output(r1);
    let after = check_pass(&b.g, run, false);
    assert_eq!(count(&after, "Reshape"), 2);
}
