//! matmul_add: MatMul(constant B) + Add(constant bias) → Gemm.

mod passes_common;

use mobilenetc::graph::{GemmAttrs, Op};
use mobilenetc::passes::matmul_add::run;
use passes_common::*;

fn matmul_add(seed: u64, bias_shape: &[usize], bias_first: bool) -> (Builder, mobilenetc::graph::TensorId) {
    let mut b = Builder::new(seed);
    let x = b.input("x", &[3, 8]);
    let w = b.constant("w", &[8, 5], -0.5, 0.5);
    let m = b.op("matmul", Op::MatMul, vec![x, w], &[3, 5]);
    let c = b.constant("bias", bias_shape, -1.0, 1.0);
    let ins = if bias_first { vec![c, m] } else { vec![m, c] };
    let y = b.op("add", Op::Add, ins, &[3, 5]);
    b.output(y);
    (b, y)
}

#[test]
fn bias_of_any_last_axis_broadcast_shape_either_side() {
    for (seed, shape, first) in [(1, vec![5], false), (2, vec![1, 5], true), (3, vec![1], false), (4, vec![], true)] {
        let (b, y) = matmul_add(seed, &shape, first);
        let mut after = b.g.clone();
        while run(&mut after).unwrap() {}
        assert_same(&b.g, &after);
        assert_eq!(after.dag.node_count(), 1, "bias {shape:?}");
        let Op::Gemm(a) = producer_op(&after, y) else { panic!() };
        assert_eq!(a, GemmAttrs::default());
        assert_eq!(after.node(after.producer(y).unwrap()).inputs.len(), 3);
    }
}

#[test]
fn a_per_row_bias_is_not_absorbed() {
    let (b, y) = matmul_add(5, &[3, 5], false);
    let mut after = b.g.clone();
    while run(&mut after).unwrap() {}
    assert_same(&b.g, &after);
    assert_eq!(producer_op(&after, y), Op::Add);
}

#[test]
fn matmul_with_a_runtime_b_or_3d_a_stays() {
    let mut b = Builder::new(6);
    let x = b.input("x", &[3, 8]);
    let w = b.input("w", &[8, 5]);
    let y = b.op("matmul", Op::MatMul, vec![x, w], &[3, 5]);
    b.output(y);
    check_pass(&b.g, run, false);

    let mut b = Builder::new(7);
    let x = b.input("x", &[2, 3, 8]);
    let w = b.constant("w", &[8, 5], -0.5, 0.5);
    let y = b.op("matmul", Op::MatMul, vec![x, w], &[2, 3, 5]);
    b.output(y);
    check_pass(&b.g, run, false);
}

#[test]
fn gemm_with_bias_and_beta_absorbs_another_add() {
    let mut b = Builder::new(8);
    let x = b.input("x", &[2, 4]);
    let w = b.constant("w", &[3, 4], -0.5, 0.5);
    let c = b.constant("c", &[3], -0.5, 0.5);
    let g = b.op("gemm", Op::Gemm(GemmAttrs { beta: 0.5, trans_b: true, ..Default::default() }), vec![x, w, c], &[2, 3]);
    let d = b.constant("d", &[3], -0.5, 0.5);
    let y = b.op("add", Op::Add, vec![g, d], &[2, 3]);
    b.output(y);
    let after = check_pass(&b.g, run, true);
    assert_eq!(after.dag.node_count(), 1);
}
