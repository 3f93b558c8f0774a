//! MobileNet v1 written the way other exporters write it (tests/py/make_fixture.py: PyTorch,
//! tf2onnx, opset-10 Clip attributes, ReLU6 as Sub/Relu, model-local functions, Constant-node
//! weights) imports into the same network as our constructor: the per-model counts of
//! `inspect` (mult-adds, params, BN params, and the per-layer mult-adds and params of every
//! conv and fully connected layer, in order) must equal the constructor's for the same α,
//! resolution and classes. Each fixture is checked by onnx.checker and onnxruntime when made.
//! And the imported graph computes what onnxruntime computes from the file (reference
//! evaluator vs onnxruntime, whole output tensors, rtol 1e-5 / atol 1e-6).

use mobilenetc::eval;
use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::graph::Tensor;
use mobilenetc::inspect;
use mobilenetc::onnx::import::{import_file, ImportOptions};
use mobilenetc_e2e::{assert_close, fixture, fixture_meta, onnxruntime_run, test_input};

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
    /// topological order: the same 28 layers whatever glue (Pad, Transpose, Reshape) surrounds
    /// them. A separate bias `Add` (tf2onnx's MatMul + Add) counts with the layer before it.
    weighted_layers: Vec<(u64, u64)>,
}

fn counts(g: &mobilenetc::graph::Graph) -> Counts {
    let r = inspect::count(g).unwrap_or_else(|e| panic!("inspect: {e}"));
    let mut weighted_layers: Vec<(u64, u64)> = Vec::new();
    for l in &r.layers {
        match weighted_layers.last_mut() {
            Some(last) if l.mult_adds == 0 => last.1 += l.params,
            _ if l.mult_adds > 0 => weighted_layers.push((l.mult_adds, l.params)),
            _ => assert_eq!(l.params, 0, "params before the first layer: {l:?}"),
        }
    }
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

/// Imports `style` with batch `batch`, evaluates it with the compiler's reference evaluator
/// and compares every output element with onnxruntime on the same input.
fn check_numerics(style: &str, alpha: &str, res: usize, classes: usize, batch: usize) {
    let (r, k) = (res.to_string(), classes.to_string());
    let args = ["--alpha", alpha, "--resolution", &r, "--classes", &k, "--seed", "5"];
    let path = fixture(style, &args);
    let meta = fixture_meta(&path);
    let name = meta["input"]["name"].as_str().unwrap().to_string();
    // The fixture's input shape with its symbolic batch ("batch") set.
    let shape: Vec<usize> =
        meta["input"]["shape"].as_array().unwrap().iter().map(|d| d.as_u64().map_or(batch, |v| v as usize)).collect();
    let x = test_input(shape.iter().product(), res as u64 + 17);
    let reference = onnxruntime_run(&path, &[(&name, shape.clone(), x.clone())]);

    let opts = ImportOptions { batch, ..ImportOptions::default() };
    let g = import_file(&path, &opts).unwrap_or_else(|e| panic!("import of {style} {args:?}: {e}"));
    let ours = eval::evaluate(&g, &[(&name, Tensor::new(shape, x))]).unwrap_or_else(|e| panic!("evaluate {style}: {e}"));
    assert_eq!(ours.len(), reference.len(), "{style}: number of outputs");
    for (o, (rname, rshape, rdata)) in ours.iter().zip(&reference) {
        assert_eq!(&o.shape, rshape, "{style}: shape of output {rname}");
        // f64 sums against onnxruntime's f32 ones over 28 layers; seen: 7e-7 relative at most.
        assert_close(&o.data, rdata, 1e-5, 1e-6);
    }
}

#[test]
fn every_style_computes_what_onnxruntime_computes() {
    for style in ["pytorch", "tf2onnx", "clip-attr", "relu6-sub", "functions", "constant-nodes"] {
        check_numerics(style, "1.0", 32, 10, 2);
    }
}

#[test]
fn full_size_styles_compute_what_onnxruntime_computes() {
    check_numerics("pytorch", "0.25", 224, 1000, 1);
    check_numerics("tf2onnx", "0.25", 224, 1000, 1);
}
