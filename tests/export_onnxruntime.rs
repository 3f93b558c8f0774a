//! Trained models exported to ONNX are first-class ONNX models: onnx.checker (full_check)
//! accepts them and onnxruntime computes what our inference of the trained weights computes.
//!
//! Tolerance: max |ours − onnxruntime| / max |onnxruntime| ≤ 1e-5 over the whole output
//! tensor (our inference is the reference evaluator: f64 sums, f32 storage; onnxruntime sums
//! in f32 in another order, so the two differ by accumulated f32 rounding, far below 1e-5).

use std::path::Path;

use mobilenetc::eval::{evaluate, max_rel_diff};
use mobilenetc::export::{to_onnx, OnnxExportOptions};
use mobilenetc::graph::{Graph, Tensor};
use mobilenetc::onnx::import::{decode_model, import_file, ImportOptions};
use mobilenetc::runtime::onnx::{type_proto, ValueInfoProto};
use mobilenetc_e2e::{fixture, onnx_check, onnxruntime_run, test_input};

mod export_common;
use export_common::{assert_all_moved, fine_tune, small_mobilenet};

const TOLERANCE: f64 = 1e-5;

/// Our inference, image by image (the source graphs have batch 1).
fn ours(g: &Graph, input: &str, images: &[f32], n: usize) -> Vec<f32> {
    let per = images.len() / n;
    let shape = g.shape(g.inputs[0]).to_vec();
    (0..n)
        .flat_map(|i| {
            let x = Tensor::new(shape.clone(), images[i * per..(i + 1) * per].to_vec());
            evaluate(g, &[(input, x)]).unwrap().remove(0).data
        })
        .collect()
}

fn check_against_onnxruntime(path: &Path, ours_graph: &Graph, input: &str, chw: [usize; 3], n: usize) {
    onnx_check(path).unwrap_or_else(|e| panic!("onnx.checker rejects {}: {e}", path.display()));
    let images = test_input(n * chw.iter().product::<usize>(), 11);
    let ort = onnxruntime_run(path, &[(input, vec![n, chw[0], chw[1], chw[2]], images.clone())]);
    let ours = ours(ours_graph, input, &images, n);
    let reference = Tensor::new(ort[0].1.clone(), ort[0].2.clone());
    let mine = Tensor::new(ort[0].1.clone(), ours);
    let d = max_rel_diff(&mine, &reference);
    assert!(d <= TOLERANCE, "{}: ours vs onnxruntime differ by {d:e} (relative to the output's scale)", path.display());
}

fn dims(vi: &ValueInfoProto) -> Vec<String> {
    let Some(type_proto::Value::TensorType(t)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else { panic!("not a tensor type") };
    t.shape
        .as_ref()
        .unwrap()
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(mobilenetc::runtime::onnx::tensor_shape_proto::dimension::Value::DimValue(v)) => v.to_string(),
            Some(mobilenetc::runtime::onnx::tensor_shape_proto::dimension::Value::DimParam(p)) => p.clone(),
            None => "?".into(),
        })
        .collect()
}

#[test]
fn trained_mobilenet_exports_with_batchnorm_kept_and_folded() {
    let source = small_mobilenet();
    let trainer = fine_tune(&source, 5);
    let trained = trainer.to_graph();
    // Training moved every weight and running statistic in 5 steps.
    assert_all_moved(&source, &trainer);

    let dir = tempfile::tempdir().unwrap();
    for fold in [false, true] {
        let path = dir.path().join(if fold { "folded.onnx" } else { "kept.onnx" });
        trainer.export_onnx(&path, &OnnxExportOptions { fold_batchnorm: fold, source: None }).unwrap();
        let back = import_file(&path, &ImportOptions::default()).unwrap();
        let bn = back.dag.node_weights().filter(|n| n.op.name() == "BatchNormalization").count();
        assert_eq!(bn, if fold { 0 } else { 27 }, "fold {fold}");
        let model = decode_model(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!((model.ir_version, model.opset_import[0].version), (Some(8), Some(17)));
        let g = model.graph.unwrap();
        assert_eq!(dims(&g.input[0]), ["batch", "3", "32", "32"]);
        assert_eq!(dims(&g.output[0]), ["batch", "10"]);
        // onnxruntime on the export vs our inference of the trained graph (BN kept: the
        // unfolded graph; folded: both sides folded by us, checked against the kept one too).
        check_against_onnxruntime(&path, &trained, "input", [3, 32, 32], 3);
        if fold {
            check_against_onnxruntime(&path, &back, "input", [3, 32, 32], 3);
        }
    }
}

#[test]
fn pytorch_model_fine_tuned_keeps_its_interface() {
    let src = fixture("pytorch", &["--alpha", "0.25", "--resolution", "32", "--classes", "10"]);
    let original = decode_model(&std::fs::read(&src).unwrap()).unwrap();
    let graph = import_file(&src, &ImportOptions::default()).unwrap();
    let trainer = fine_tune(&graph, 10);
    let dir = tempfile::tempdir().unwrap();
    let og = original.graph.as_ref().unwrap();
    for fold in [false, true] {
        let path = dir.path().join(format!("finetuned-{fold}.onnx"));
        let opts = OnnxExportOptions { fold_batchnorm: fold, source: Some(original.clone()) };
        trainer.export_onnx(&path, &opts).unwrap();
        let model = decode_model(&std::fs::read(&path).unwrap()).unwrap();
        let g = model.graph.as_ref().unwrap();
        let names = |v: &[ValueInfoProto]| v.iter().map(|x| (x.name.clone().unwrap(), dims(x))).collect::<Vec<_>>();
        let inputs: Vec<_> = og.input.iter().filter(|i| !og.initializer.iter().any(|t| t.name == i.name)).cloned().collect();
        assert_eq!(names(&g.input), names(&inputs));
        assert_eq!(names(&g.output), names(&og.output));
        assert_eq!(names(&g.input)[0], ("input".to_string(), vec!["batch_size".to_string(), "3".into(), "32".into(), "32".into()]));
        assert_eq!(to_onnx(&trainer.to_graph(), &opts).unwrap().graph.unwrap().input, g.input);
        check_against_onnxruntime(&path, &trainer.to_graph(), "input", [3, 32, 32], 3);
    }
    // The fine-tuned weights differ from the file's.
    let before = ours(&graph, "input", &test_input(3 * 32 * 32, 5), 1);
    let after = ours(&trainer.to_graph(), "input", &test_input(3 * 32 * 32, 5), 1);
    assert_ne!(before, after);
}
