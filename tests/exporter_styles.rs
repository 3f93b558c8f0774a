//! MobileNet v1 written the way other exporters write it (tests/py/make_fixture.py: PyTorch,
//! tf2onnx, opset-10 Clip attributes, ReLU6 as Sub/Relu, model-local functions, Constant-node
//! weights) imports into the same network as our constructor: the per-model counts of
//! `inspect` (mult-adds, params, BN params, and the per-layer mult-adds and params of every
//! conv and fully connected layer, in order) must equal the constructor's for the same α,
//! resolution and classes. Each fixture is checked by onnx.checker and onnxruntime when made.

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
    /// (mult-adds, params) of each layer that has mult-adds (convs and the classifier), in
    /// topological order: the same 28 layers whatever glue (Pad, Transpose, Reshape) surrounds them.
    weighted_layers: Vec<(u64, u64)>,
}

fn counts(g: &mobilenetc::graph::Graph) -> Counts {
    let r = inspect::count(g).unwrap_or_else(|e| panic!("inspect: {e}"));
    let weighted_layers = r.layers.iter().filter(|l| l.mult_adds > 0).map(|l| (l.mult_adds, l.params)).collect();
    Counts { mult_adds: r.mult_adds, params: r.params, bn_params: r.bn_params, weighted_layers }
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
        // BN counts scale, bias, mean and variance: 4 per channel.
        let folded = meta["folded_bn_channels"].as_u64().unwrap();
        let bn_channels = meta["bn_channels"].as_u64().unwrap();
        assert_eq!(want.bn_params, 4 * (bn_channels + folded), "{style} {args:?}: BN channels");
        if folded > 0 {
            want.params += folded;
            want.bn_params -= 4 * folded;
            // Per layer, a folded conv carries one bias per output channel.
            let biases = meta["conv_biases"].as_array().unwrap();
            assert_eq!(biases.len() + 1, want.weighted_layers.len(), "{style}: conv layers in the metadata");
            for (layer, b) in want.weighted_layers.iter_mut().zip(biases) {
                layer.1 += b.as_u64().unwrap();
            }
        }
        assert_eq!(want.weighted_layers.len(), 28, "{style} {args:?}: the constructor has 28 weighted layers");
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
