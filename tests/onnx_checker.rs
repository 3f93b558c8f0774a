//! Every model our exporter writes is valid ONNX for the outside world: it passes
//! `onnx.checker.check_model(full_check=True)` (schema, operator specs, strict shape
//! inference) and onnxruntime loads and runs it. And exporting is stable: exporting the
//! re-imported model gives a file onnxruntime computes the same outputs from.

use std::path::Path;

use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig, Variant};
use mobilenetc::onnx::export::{export_file, ExportOptions};
use mobilenetc::onnx::import::{import_file, ImportOptions};
use mobilenetc_e2e::{assert_close, onnx_check, onnxruntime_run, test_input, NamedTensor};

fn build(alpha: f32, resolution: usize, classes: usize, variant: Variant) -> mobilenetc::graph::Graph {
    let cfg = MobileNetConfig { alpha, resolution, classes, variant, seed: 11, ..MobileNetConfig::default() };
    mobilenet_v1(&cfg).unwrap_or_else(|e| panic!("constructor {alpha}-{resolution} {variant:?}: {e}"))
}

fn run(model: &Path, batch: usize, resolution: usize) -> Vec<NamedTensor> {
    let shape = vec![batch, 3, resolution, resolution];
    let x = test_input(shape.iter().product(), resolution as u64);
    onnxruntime_run(model, &[("input", shape, x)])
}

/// Exports, checks, runs at `batch`; returns the outputs.
fn check_export(g: &mobilenetc::graph::Graph, dir: &Path, tag: &str, opts: &ExportOptions, batch: usize) -> Vec<NamedTensor> {
    let path = dir.join(format!("{tag}.onnx"));
    export_file(g, &path, opts).unwrap_or_else(|e| panic!("export {tag}: {e}"));
    onnx_check(&path).unwrap_or_else(|e| panic!("onnx.checker refuses our {tag}: {e}"));
    let resolution = g.tensor(g.inputs[0]).shape[2];
    run(&path, batch, resolution)
}

/// The constructor's network ends in softmax: `[batch, classes]` rows of a distribution.
fn assert_softmax(out: &[NamedTensor], batch: usize, classes: usize, tag: &str) {
    assert_eq!(out.len(), 1, "{tag}: one output expected");
    let (_, shape, y) = &out[0];
    assert_eq!(shape, &vec![batch, classes], "{tag}: output shape");
    for row in y.chunks(classes) {
        assert!(row.iter().all(|p| p.is_finite() && *p >= 0.0), "{tag}: not a distribution");
        let s: f32 = row.iter().sum();
        assert!((s - 1.0).abs() < 1e-4, "{tag}: softmax row sums to {s}");
    }
}

fn check_grid(alpha: f32) {
    let dir = tempfile::tempdir().unwrap();
    for resolution in [224, 128, 32] {
        let classes = if resolution == 32 { 10 } else { 1000 };
        let g = build(alpha, resolution, classes, Variant::Standard);
        let tag = format!("mobilenet-{alpha}-{resolution}");
        let out = check_export(&g, dir.path(), &tag, &ExportOptions::default(), 2);
        assert_softmax(&out, 2, classes, &tag);
    }
}

#[test]
fn standard_alpha_1_0() {
    check_grid(1.0);
}

#[test]
fn standard_alpha_0_5() {
    check_grid(0.5);
}

#[test]
fn standard_alpha_0_25() {
    check_grid(0.25);
}

#[test]
fn variants_full_conv_and_shallow() {
    let dir = tempfile::tempdir().unwrap();
    for variant in [Variant::FullConv, Variant::Shallow] {
        for (alpha, resolution) in [(0.25, 128), (1.0, 32)] {
            let classes = if resolution == 32 { 10 } else { 1000 };
            let g = build(alpha, resolution, classes, variant);
            let tag = format!("{variant:?}-{alpha}-{resolution}");
            let out = check_export(&g, dir.path(), &tag, &ExportOptions::default(), 2);
            assert_softmax(&out, 2, classes, &tag);
        }
    }
}

#[test]
fn fixed_batch_export() {
    // No symbolic batch: the file says batch 1 and onnxruntime accepts exactly that.
    let dir = tempfile::tempdir().unwrap();
    let g = build(0.25, 128, 1000, Variant::Standard);
    let out = check_export(&g, dir.path(), "fixed", &ExportOptions { symbolic_batch: None }, 1);
    assert_softmax(&out, 1, 1000, "fixed");
}

#[test]
fn reexport_of_reimport_computes_the_same() {
    // export → import → export: onnxruntime must compute the same outputs from both files
    // (same ops, same weights; one thread, so only op order could move the last bits).
    let dir = tempfile::tempdir().unwrap();
    for (alpha, resolution, classes) in [(1.0, 224, 1000), (0.25, 32, 10)] {
        let g = build(alpha, resolution, classes, Variant::Standard);
        let tag = format!("first-{alpha}-{resolution}");
        let first = check_export(&g, dir.path(), &tag, &ExportOptions::default(), 2);
        let g2 = import_file(&dir.path().join(format!("{tag}.onnx")), &ImportOptions::default())
            .unwrap_or_else(|e| panic!("re-import of {tag}: {e}"));
        let second = check_export(&g2, dir.path(), &format!("second-{alpha}-{resolution}"), &ExportOptions::default(), 2);
        assert_eq!(first[0].1, second[0].1);
        assert_close(&second[0].2, &first[0].2, 1e-5, 1e-7);
    }
}
