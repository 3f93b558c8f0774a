//! optimize(): the exporter patterns end to end on hand-built graphs, pass switches, cleanup.

mod passes_common;

use mobilenetc::graph::{Activation, Graph, Op, TensorId};
use mobilenetc::passes::{optimize, PassOptions};
use passes_common::*;

/// Conv → BN → ReLU6 (the PyTorch export form of one MobileNet layer).
fn conv_bn_relu6(b: &mut Builder, x: TensorId, cout: usize, k: usize, stride: usize, group: usize) -> TensorId {
    let c = b.conv(x, cout, k, stride, k / 2, group, false);
    let n = b.bn(c);
    b.relu6(n)
}

/// A small MobileNet in the PyTorch style: conv s2, two depthwise-separable blocks, Dropout,
/// GAP → Shape-chain Reshape [N, -1] → MatMul → Add → Softmax.
fn pytorch_style() -> (Graph, TensorId) {
    let mut b = Builder::new(1);
    let x = b.input("input", &[2, 3, 16, 16]);
    let mut t = conv_bn_relu6(&mut b, x, 8, 3, 2, 1);
    for (cout, stride) in [(16, 1), (24, 2)] {
        let c = b.g.shape(t)[1];
        t = conv_bn_relu6(&mut b, t, c, 3, stride, c);
        t = conv_bn_relu6(&mut b, t, cout, 1, 1, 1);
    }
    let p = b.op("gap", Op::GlobalAveragePool, vec![t], &[2, 24, 1, 1]);
    let d = b.unary(p, Op::Dropout { ratio: 0.001 });
    let r = b.op("reshape", Op::Reshape { shape: vec![2, -1], allowzero: false }, vec![d], &[2, 24]);
    let w = b.constant("fc_w", &[24, 10], -0.3, 0.3);
    let m = b.op("matmul", Op::MatMul, vec![r, w], &[2, 10]);
    let bias = b.constant("fc_b", &[10], -0.3, 0.3);
    let a = b.op("add", Op::Add, vec![m, bias], &[2, 10]);
    let y = b.op("softmax", Op::Softmax { axis: 1 }, vec![a], &[2, 10]);
    b.output(y);
    (b.g, y)
}

fn assert_fully_fused(g: &Graph) {
    for op in ["BatchNormalization", "Clip", "Relu", "Identity", "Dropout", "Pad", "MatMul", "Add", "Softmax", "GlobalAveragePool", "Flatten", "Reshape"] {
        assert_eq!(count(g, op), 0, "{op} left after optimize");
    }
    for n in g.dag.node_weights() {
        if let Op::Conv(a) = &n.op {
            assert_eq!(a.activation, Activation::RELU6, "{}", n.name);
        }
    }
}

#[test]
fn pytorch_style_graph_becomes_convs_and_a_head() {
    let (g, y) = pytorch_style();
    let mut after = g.clone();
    let report = optimize(&mut after, &PassOptions::default()).unwrap();
    let d = assert_same(&g, &after);
    assert_fully_fused(&after);
    assert_eq!(count(&after, "Conv"), 5);
    assert_eq!(producer_op(&after, after.outputs[0]), Op::Head { softmax: true });
    assert_eq!(after.dag.node_count(), 6);
    assert_eq!(after.tensor(after.outputs[0]).name, g.tensor(y).name);
    // Cleanup: only live tensors and constants remain (5 conv weights + biases, head w + b).
    assert_eq!(after.constants.len(), 12);
    assert_eq!(after.tensors.len(), 1 + 12 + 6);
    eprintln!("pytorch style: max rel diff {d:e}\n{report}");
}

#[test]
fn tf2onnx_style_nhwc_input_transpose_pad_conv_clip() {
    // NHWC input → Transpose → Pad (bottom/right, TF SAME for stride 2) → Conv(bias) → Clip,
    // then a depthwise block, GAP → Flatten → Gemm(transB) (no softmax).
    let mut b = Builder::new(2);
    let x = b.input("input", &[1, 15, 15, 3]);
    let t = b.op("to_nchw", Op::Transpose { perm: vec![0, 3, 1, 2] }, vec![x], &[1, 3, 15, 15]);
    let p = b.op("pad", Op::Pad { pads: vec![0, 0, 0, 0, 0, 0, 1, 1], value: 0.0 }, vec![t], &[1, 3, 16, 16]);
    let c = b.conv(p, 8, 3, 2, 0, 1, true);
    let r = b.relu6(c);
    let p2 = b.op("pad2", Op::Pad { pads: vec![0, 0, 1, 1, 0, 0, 1, 1], value: 0.0 }, vec![r], &[1, 8, 9, 9]);
    let dw = b.conv(p2, 8, 3, 1, 0, 8, true);
    let r2 = b.relu6(dw);
    let pw = b.conv(r2, 16, 1, 1, 0, 1, true);
    let r3 = b.relu6(pw);
    let gap = b.op("gap", Op::GlobalAveragePool, vec![r3], &[1, 16, 1, 1]);
    let f = b.op("flatten", Op::Flatten { axis: 1 }, vec![gap], &[1, 16]);
    let y = b.gemm(f, 5, true, true);
    b.output(y);
    let g = b.g;
    let mut after = g.clone();
    optimize(&mut after, &PassOptions::default()).unwrap();
    assert_same(&g, &after);
    assert_fully_fused(&after);
    assert_eq!(count(&after, "Transpose"), 1);
    let tn = after.dag.node_indices().find(|&n| matches!(after.node(n).op, Op::Transpose { .. })).unwrap();
    assert_eq!(after.node(tn).inputs, [after.inputs[0]], "the layout Transpose stays at the input");
    assert_eq!(producer_op(&after, after.outputs[0]), Op::Head { softmax: false });
    let first = after.consumers(after.node(tn).outputs[0])[0];
    let Op::Conv(a) = &after.node(first).op else { panic!() };
    assert_eq!(a.pads, [0, 0, 1, 1]);
}

#[test]
fn tf2onnx_pad_in_nhwc_before_the_transpose_is_folded_too() {
    let mut b = Builder::new(3);
    let x = b.input("input", &[1, 9, 9, 3]);
    let p = b.op("pad", Op::Pad { pads: vec![0, 0, 0, 0, 0, 1, 1, 0], value: 0.0 }, vec![x], &[1, 10, 10, 3]);
    let t = b.op("to_nchw", Op::Transpose { perm: vec![0, 3, 1, 2] }, vec![p], &[1, 3, 10, 10]);
    let c = b.conv(t, 4, 3, 2, 0, 1, true);
    let y = b.relu6(c);
    b.output(y);
    let g = b.g;
    let mut after = g.clone();
    optimize(&mut after, &PassOptions::default()).unwrap();
    assert_same(&g, &after);
    assert_eq!(after.dag.node_count(), 2, "Transpose + Conv");
}

#[test]
fn switching_a_pass_off_keeps_its_pattern() {
    let (g, _) = pytorch_style();
    let mut opts = PassOptions::default();
    opts.disable("fold-batchnorm").unwrap();
    let mut after = g.clone();
    optimize(&mut after, &opts).unwrap();
    assert_same(&g, &after);
    assert_eq!(count(&after, "BatchNormalization"), 5);
    // With the BatchNorms in place the activations cannot reach the convs.
    assert_eq!(count(&after, "Clip"), 5);

    let mut opts = PassOptions::default();
    opts.disable("head").unwrap();
    let mut after = g.clone();
    optimize(&mut after, &opts).unwrap();
    assert_same(&g, &after);
    assert_eq!(count(&after, "Head"), 0);
    assert_eq!(count(&after, "Gemm"), 1);

    let mut after = g.clone();
    optimize(&mut after, &PassOptions::none()).unwrap();
    assert_eq!(after.dag.node_count(), g.dag.node_count());
}

#[test]
fn unknown_pass_names_are_errors_listing_the_names() {
    let mut opts = PassOptions::default();
    let e = opts.disable("fold_bn").unwrap_err().to_string();
    assert!(e.contains("fold_bn") && PassOptions::NAMES.iter().all(|n| e.contains(n)), "{e}");
    for name in PassOptions::NAMES {
        let mut o = PassOptions::default();
        o.disable(name).unwrap();
        assert_eq!(o.enabled(name), Some(false));
        assert!(mobilenetc::passes::pass(name).is_some());
    }
    assert_eq!(PassOptions::default().enabled("nope"), None);
}

#[test]
fn optimize_is_idempotent_and_reports() {
    let (g, _) = pytorch_style();
    let mut after = g.clone();
    let r = optimize(&mut after, &PassOptions::default()).unwrap();
    assert_eq!(r.nodes_before, g.dag.node_count());
    assert_eq!(r.nodes_after, 6);
    assert_eq!(r.ops_before["BatchNormalization"], 5);
    assert!(!r.ops_after.contains_key("BatchNormalization"));
    let text = r.to_string();
    assert!(text.contains("fold_batchnorm") && text.contains("BatchNormalization"), "{text}");
    let mut again = after.clone();
    let r2 = optimize(&mut again, &PassOptions::default()).unwrap();
    assert_eq!(r2.rounds, 1);
    assert!(r2.changed.iter().all(|(_, n)| *n == 0));
    assert_eq!(again.dag.node_count(), after.dag.node_count());
}

#[test]
fn nhwc_head_with_a_unit_transpose_and_matmul_add_becomes_a_head() {
    // tf2onnx-style classifier: GAP → Transpose to NHWC ([N, 1, 1, C], moves only unit axes)
    // → Reshape [-1, C] → MatMul → Add → Softmax.
    let mut b = Builder::new(4);
    let x = b.input("input", &[2, 3, 8, 8]);
    let c = b.conv(x, 16, 3, 2, 1, 1, true);
    let r = b.relu6(c);
    let gap = b.op("gap", Op::GlobalAveragePool, vec![r], &[2, 16, 1, 1]);
    let t = b.op("to_nhwc", Op::Transpose { perm: vec![0, 2, 3, 1] }, vec![gap], &[2, 1, 1, 16]);
    let f = b.op("reshape", Op::Reshape { shape: vec![-1, 16], allowzero: false }, vec![t], &[2, 16]);
    let w = b.constant("w", &[16, 7], -0.5, 0.5);
    let m = b.op("matmul", Op::MatMul, vec![f, w], &[2, 7]);
    let bias = b.constant("bias", &[7], -0.5, 0.5);
    let a = b.op("add", Op::Add, vec![bias, m], &[2, 7]);
    let y = b.op("softmax", Op::Softmax { axis: -1 }, vec![a], &[2, 7]);
    b.output(y);
    let g = b.g;
    let mut after = g.clone();
    optimize(&mut after, &PassOptions::default()).unwrap();
    assert_same(&g, &after);
    assert_eq!(after.dag.node_count(), 2, "conv + head");
    assert_eq!(producer_op(&after, after.outputs[0]), Op::Head { softmax: true });
}
