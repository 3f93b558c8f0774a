//! The schedule executor against onnxruntime on whole networks: the constructed MobileNet v1
//! (α 1.0 / 0.5 / 0.25 × resolution 224 / 128 / 32, exported to ONNX and imported back) and the
//! fixtures written the way PyTorch and tf2onnx export. Tolerance, element-wise:
//! |ours − ref| ≤ 1e-4 · max(1, |ref|).

use std::path::Path;

use mobilenetc::exec::Executor;
use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::lower::Kernel;
use mobilenetc::onnx::export::{export_file, ExportOptions};
use mobilenetc::onnx::import::{import_file, ImportOptions};
use mobilenetc_e2e::{fixture, onnxruntime_run, test_input};

/// max |ours − ref| / max(1, |ref|) must stay within 1e-4; the message names the worst element.
fn assert_within(ours: &[f32], reference: &[f32], what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths");
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (&o, &r)) in ours.iter().zip(reference).enumerate() {
        let d = (o - r).abs() / r.abs().max(1.0);
        assert!(!d.is_nan(), "{what}: NaN at {i} (ours {o}, onnxruntime {r})");
        if d > worst {
            (worst, at) = (d, i);
        }
    }
    assert!(worst <= 1e-4, "{what}: element {at}: ours {} vs onnxruntime {} (scaled difference {worst:e})", ours[at], reference[at]);
}

/// Runs `model` with the executor and with onnxruntime on the same seeded inputs; returns the
/// executor for further checks on its schedule.
fn compare(model: &Path, batch: usize, what: &str) -> Executor {
    let g = import_file(model, &ImportOptions { batch, ..ImportOptions::default() }).unwrap_or_else(|e| panic!("{what}: import: {e}"));
    let mut exec = Executor::from_graph(&g).unwrap_or_else(|e| panic!("{what}: compile: {e}"));
    let inputs: Vec<(String, Vec<usize>, Vec<f32>)> = exec
        .schedule()
        .inputs
        .iter()
        .enumerate()
        .map(|(i, b)| (b.name.clone(), b.shape.clone(), test_input(b.range.len, 17 + i as u64).iter().map(|v| v * 2.0).collect()))
        .collect();
    let feed: Vec<(&str, &[f32])> = inputs.iter().map(|(n, _, d)| (n.as_str(), d.as_slice())).collect();
    let ours = exec.run(&feed).unwrap_or_else(|e| panic!("{what}: run: {e}"));
    let ort_in: Vec<(&str, Vec<usize>, Vec<f32>)> = inputs.iter().map(|(n, s, d)| (n.as_str(), s.clone(), d.clone())).collect();
    let theirs = onnxruntime_run(model, &ort_in);
    assert_eq!(ours.len(), theirs.len(), "{what}: output count");
    for ((name, shape, data), (rname, rshape, rdata)) in ours.iter().zip(&theirs) {
        assert_eq!(name, rname, "{what}: output order");
        assert_eq!(shape, rshape, "{what}: output {name} shape");
        assert_within(data, rdata, &format!("{what}: output {name}"));
    }
    exec
}

fn constructed(alpha: f32, resolution: usize, dir: &Path) {
    let cfg = MobileNetConfig { alpha, resolution, classes: 10 + resolution / 32, seed: 3, ..MobileNetConfig::default() };
    let g = mobilenet_v1(&cfg).expect("constructor");
    let path = dir.join(format!("mobilenet-{alpha}-{resolution}.onnx"));
    export_file(&g, &path, &ExportOptions::default()).expect("export");
    let what = format!("mobilenet_v1 α={alpha} ρ={resolution}");
    let exec = compare(&path, 1, &what);
    // The passes fold every BN and fuse every ReLU6, and lowering fuses each depthwise conv
    // with the pointwise conv after it: the first conv (reading the NCHW input in place, no
    // conversion), 13 fused depthwise-separable blocks and the head, nothing else.
    let kinds: Vec<&str> = exec.schedule().steps.iter().map(|s| s.kernel.kind()).collect();
    let mut want = vec!["conv_nchw"];
    want.extend(["dwpw"; 13]);
    want.push("head");
    assert_eq!(kinds, want, "{what}");
}

#[test]
fn constructed_mobilenets_match_onnxruntime() {
    let dir = tempfile::tempdir().expect("temp dir");
    for alpha in [1.0, 0.5, 0.25] {
        for resolution in [224, 128, 32] {
            constructed(alpha, resolution, dir.path());
        }
    }
}

#[test]
fn pytorch_style_graphs_match_onnxruntime() {
    for style in ["pytorch", "clip-attr", "relu6-sub", "functions", "constant-nodes"] {
        let model = fixture(style, &["--alpha", "0.25", "--resolution", "96", "--classes", "10"]);
        compare(&model, 1, style);
    }
    // The symbolic batch compiled as 2, at full width and resolution.
    let model = fixture("pytorch", &["--alpha", "1.0", "--resolution", "224"]);
    compare(&model, 2, "pytorch 1.0-224 batch 2");
}

#[test]
fn tf2onnx_style_graphs_match_onnxruntime_without_layout_conversions() {
    for bn in ["mixed", "keep", "fold"] {
        let model = fixture("tf2onnx", &["--alpha", "0.5", "--resolution", "128", "--classes", "10", "--bn", bn]);
        let exec = compare(&model, 1, &format!("tf2onnx --bn {bn}"));
        // NHWC input followed by Transpose(0,3,1,2): the body is channels-last already.
        let transposes = exec.schedule().steps.iter().filter(|s| matches!(s.kernel, Kernel::Transpose { .. })).count();
        assert_eq!(transposes, 0, "tf2onnx --bn {bn}: {:?}", exec.schedule().steps.iter().map(|s| &s.name).collect::<Vec<_>>());
    }
}
