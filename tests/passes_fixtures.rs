//! Issue 3 on the exporter-style graphs: after the passes, the PyTorch-style and tf2onnx-style
//! MobileNets (written by tests/py/make_fixture.py) have no BatchNormalization, Clip, Relu,
//! Identity or Dropout node left, and the reference evaluator gives the same output before and
//! after within 1e-5 relative (max |after − before| / max |before|).

use mobilenetc::eval::{evaluate, max_rel_diff};
use mobilenetc::graph::Tensor;
use mobilenetc::onnx::import::{import_file, ImportOptions};
use mobilenetc::passes::{optimize, PassOptions};
use mobilenetc_e2e::{fixture, test_input};

fn check(style: &str, extra: &[&str]) {
    let mut args = vec!["--alpha", "0.25", "--resolution", "64", "--classes", "10"];
    args.extend_from_slice(extra);
    let model = fixture(style, &args);
    let before = import_file(&model, &ImportOptions::default()).unwrap_or_else(|e| panic!("{style}: {e}"));
    let mut after = before.clone();
    optimize(&mut after, &PassOptions::default()).unwrap_or_else(|e| panic!("{style}: optimize: {e}"));
    for op in ["BatchNormalization", "Clip", "Relu", "Identity", "Dropout"] {
        assert_eq!(after.count_op(op), 0, "{style}: {op} left after the passes");
    }
    let input = before.inputs[0];
    let name = before.tensor(input).name.clone();
    let shape = before.shape(input).to_vec();
    let data: Vec<f32> = test_input(shape.iter().product(), 5).iter().map(|v| v * 2.0).collect();
    let x = Tensor::new(shape, data);
    let want = evaluate(&before, &[(name.as_str(), x.clone())]).unwrap();
    let got = evaluate(&after, &[(name.as_str(), x)]).unwrap();
    let d = max_rel_diff(&got[0], &want[0]);
    println!("{style} {extra:?}: {} → {} nodes, max relative difference {d:.2e}", before.nodes_in_order().len(), after.nodes_in_order().len());
    assert!(d <= 1e-5, "{style}: output differs after the passes by {d:e} (relative)");
}

#[test]
fn pytorch_style_graph_is_fully_fused_and_unchanged() {
    check("pytorch", &[]);
}

#[test]
fn tf2onnx_style_graph_is_fully_fused_and_unchanged() {
    check("tf2onnx", &["--bn", "keep"]);
    check("tf2onnx", &["--bn", "mixed"]);
}
