//! MobileNet v1 written the way other exporters write it (tests/py/make_fixture.py: PyTorch,
//! tf2onnx, opset-10 Clip attributes, ReLU6 as Sub/Relu, model-local functions, Constant-node
//! weights) imports into the same network as our constructor: the per-model counts of
//! `inspect` (mult-adds, params, BN params, layers) must equal the constructor's for the same
//! α, resolution and classes. Each fixture is checked by onnx.checker and onnxruntime when made.

use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::inspect;
use mobilenetc::onnx::import::{import_file, ImportOptions};
use mobilenetc_e2e::{fixture, fixture_meta};

/// (α, resolution, classes): the two ends of the paper's width range at 224, and the seed's
/// CIFAR-10 network.
const CONFIGS: [(&str, usize, usize); 3] = [("1.0", 224, 1000), ("0.25", 224, 1000), ("1.0", 32, 10)];

/// The counts the importer's graph must reproduce.
#[derive(Debug, PartialEq)]
struct Counts {
    mult_adds: u64,
    params: u64,
    bn_params: u64,
    layers: usize,
}

fn counts(g: &mobilenetc::graph::Graph) -> Counts {
    let r = inspect::report(g);
    Counts { mult_adds: r.mult_adds as u64, params: r.params as u64, bn_params: r.bn_params as u64, layers: r.layers }
}

fn constructor_counts(alpha: &str, resolution: usize, classes: usize) -> Counts {
    let cfg = MobileNetConfig { alpha: alpha.parse().unwrap(), resolution, classes, ..MobileNetConfig::default() };
    let g = mobilenet_v1(&cfg).unwrap_or_else(|e| panic!("constructor {alpha}-{resolution}: {e}"));
    counts(&g)
}

/// Imports `style` at every config and compares with the constructor. `extra` are more
/// make_fixture.py arguments.
fn check_style(style: &str, extra: &[&str]) {
    for (alpha, res, classes) in CONFIGS {
        let (r, k) = (res.to_string(), classes.to_string());
        let mut args = vec!["--alpha", alpha, "--resolution", &r, "--classes", &k, "--seed", "3"];
        args.extend_from_slice(extra);
        let path = fixture(style, &args);
        let meta = fixture_meta(&path);
        let g = import_file(&path, &ImportOptions::default())
            .unwrap_or_else(|e| panic!("import of {style} {args:?} ({}): {e}", path.display()));
        let ours = counts(&g);
        let mut want = constructor_counts(alpha, res, classes);
        // Where the exporter folded BatchNorm into the conv, the BN statistics became one conv
        // bias per channel: the fixture has those biases instead of the BN parameters.
        let folded = meta["folded_bn_channels"].as_u64().unwrap();
        let bn_channels = meta["bn_channels"].as_u64().unwrap();
        if folded > 0 {
            let per_channel = want.bn_params / (bn_channels + folded);
            want.params += folded;
            want.bn_params -= per_channel * folded;
        }
        assert_eq!(ours, want, "{style} {args:?}: imported counts differ from the constructor's");
    }
}

#[test]
fn pytorch_style() {
    check_style("pytorch", &[]);
}

#[test]
fn tf2onnx_style_bn_mixed() {
    check_style("tf2onnx", &[]);
}

#[test]
fn tf2onnx_style_bn_kept() {
    check_style("tf2onnx", &["--bn", "keep"]);
}

#[test]
fn clip_attributes_opset_10() {
    check_style("clip-attr", &[]);
}

#[test]
fn clip_attributes_opset_9() {
    check_style("clip-attr", &["--opset", "9"]);
}

#[test]
fn relu6_as_sub_relu() {
    check_style("relu6-sub", &[]);
}

#[test]
fn model_local_functions() {
    check_style("functions", &[]);
}

#[test]
fn weights_in_constant_nodes() {
    check_style("constant-nodes", &[]);
}
