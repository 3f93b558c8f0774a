//! head: GlobalAveragePool → Flatten/Reshape → Gemm → Softmax? becomes one Head.

mod passes_common;

use mobilenetc::graph::Op;
use mobilenetc::passes::head::run;
use passes_common::*;

fn head_graph(seed: u64, reshape: bool, trans_b: bool, bias: bool, softmax: bool) -> (Builder, mobilenetc::graph::TensorId) {
    let mut b = Builder::new(seed);
    let x = b.input("x", &[2, 16, 4, 4]);
    let f = b.conv(x, 12, 1, 1, 0, 1, true);
    let p = b.op("gap", Op::GlobalAveragePool, vec![f], &[2, 12, 1, 1]);
    let flat = if reshape { Op::Reshape { shape: vec![2, -1], allowzero: false } } else { Op::Flatten { axis: 1 } };
    let v = b.op("flat", flat, vec![p], &[2, 12]);
    let logits = b.gemm(v, 10, trans_b, bias);
    let y = if softmax { b.op("softmax", Op::Softmax { axis: -1 }, vec![logits], &[2, 10]) } else { logits };
    b.output(y);
    (b, y)
}

#[test]
fn every_form_of_the_head_fuses() {
    for (seed, reshape, trans_b, bias, softmax) in [(1, false, true, true, true), (2, true, false, true, true), (3, false, false, false, false), (4, true, true, true, false)] {
        let (b, y) = head_graph(seed, reshape, trans_b, bias, softmax);
        let after = check_pass(&b.g, run, true);
        assert_eq!(producer_op(&after, y), Op::Head { softmax });
        assert_eq!(after.dag.node_count(), 2, "conv + head");
        let head = after.node(after.producer(y).unwrap());
        assert_eq!(after.shape(head.inputs[1]), [10, 12], "weight stored [classes, C]");
        assert_eq!(after.shape(head.inputs[2]), [10]);
    }
}

#[test]
fn alpha_and_beta_are_folded_into_the_head() {
    let (mut b, y) = head_graph(5, false, true, true, true);
    let n = b.g.find_node("gemm").or_else(|| b.g.dag.node_indices().find(|&n| matches!(b.g.node(n).op, Op::Gemm(_)))).unwrap();
    if let Op::Gemm(a) = &mut b.g.node_mut(n).op {
        a.alpha = 0.7;
        a.beta = 3.0;
    }
    let after = check_pass(&b.g, run, true);
    assert_eq!(producer_op(&after, y), Op::Head { softmax: true });
}

#[test]
fn a_pooled_vector_read_elsewhere_blocks_the_fusion() {
    let (mut b, _) = head_graph(6, false, true, true, true);
    let v = b.g.tensors.iter().position(|t| t.name.starts_with("flat")).unwrap();
    b.output(v);
    check_pass(&b.g, run, false);
}

#[test]
fn softmax_on_another_axis_stays_outside() {
    let mut b = Builder::new(7);
    let x = b.input("x", &[2, 8, 3, 3]);
    let p = b.op("gap", Op::GlobalAveragePool, vec![x], &[2, 8, 1, 1]);
    let v = b.op("flat", Op::Flatten { axis: 1 }, vec![p], &[2, 8]);
    let l = b.gemm(v, 4, false, true);
    let y = b.op("softmax", Op::Softmax { axis: 0 }, vec![l], &[2, 4]);
    b.output(y);
    let after = check_pass(&b.g, run, true);
    assert_eq!(producer_op(&after, l), Op::Head { softmax: false });
    assert_eq!(producer_op(&after, y), Op::Softmax { axis: 0 });
}
