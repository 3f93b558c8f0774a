//! Exported → executor: a trained model written to ONNX and read back runs bit for bit like
//! the trained model in memory.
//!
//! "In memory" is the trainer's current state as a graph (`Trainer::to_graph`: the source
//! graph with the trained parameters and running statistics) run by the schedule executor;
//! "exported" is the file `Trainer::export_onnx` wrote, imported and run by the same executor.
//! Every output element must have the same bits (`f32::to_bits`): the export must carry every
//! trained value exactly (no rounding through text or f64, no reordering), with BatchNorm kept
//! (the executor folds it on both sides the same way) and folded at export (the file holds the
//! f32 folded weights the executor computes itself for the in-memory graph).
//!
//! The include_model! half is models/tests/exported.rs (generated code = executor, bit for bit,
//! on a trained model exported by `mobilenetc train`).

mod export_common;

use mobilenetc::exec::Executor;
use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::export::OnnxExportOptions;
use mobilenetc::onnx::import::{import_file, ImportOptions};
use mobilenetc_e2e::{fixture, onnx_check, test_input};

use export_common::{assert_all_moved, fine_tune, small_mobilenet};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Runs `a` and `b` on the same three inputs and asserts every output bit is equal; returns
/// the first output of `a` (to show it depends on the weights).
fn assert_bit_identical(a: &mut Executor, b: &mut Executor, input: &str, what: &str) -> Vec<f32> {
    let len: usize = a.schedule().inputs[0].shape.iter().product();
    let mut first = Vec::new();
    for seed in 0..3 {
        let x = test_input(len, 100 + seed);
        let ya = a.run(&[(input, &x)]).unwrap();
        let yb = b.run(&[(input, &x)]).unwrap();
        assert_eq!(ya.len(), yb.len(), "{what}: output counts");
        for (oa, ob) in ya.iter().zip(&yb) {
            assert_eq!((&oa.0, &oa.1), (&ob.0, &ob.1), "{what}: output names and shapes");
            let (ba, bb) = (bits(&oa.2), bits(&ob.2));
            if let Some(i) = ba.iter().zip(&bb).position(|(p, q)| p != q) {
                panic!("{what}: output '{}' element {i}: in memory {} vs exported {}", oa.0, oa.2[i], ob.2[i]);
            }
        }
        if seed == 0 {
            first = ya[0].2.clone();
        }
    }
    first
}

fn check(source: &mobilenetc::graph::Graph, original: Option<mobilenetc::runtime::onnx::ModelProto>, input: &str, steps: usize) {
    let trainer = fine_tune(source, steps);
    assert_all_moved(source, &trainer);
    let mut in_memory = Executor::from_graph(&trainer.to_graph()).unwrap();
    let mut untrained = Executor::from_graph(source).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for fold in [false, true] {
        let path = dir.path().join(format!("trained-fold-{fold}.onnx"));
        trainer.export_onnx(&path, &OnnxExportOptions { fold_batchnorm: fold, source: original.clone() }).unwrap();
        onnx_check(&path).unwrap_or_else(|e| panic!("onnx.checker rejects the export: {e}"));
        let back = import_file(&path, &ImportOptions::default()).unwrap();
        let mut exported = Executor::from_graph(&back).unwrap();
        let y = assert_bit_identical(&mut in_memory, &mut exported, input, &format!("BatchNorm folded {fold}"));
        // Not vacuous: the untrained weights give other outputs.
        let x = test_input(in_memory.schedule().inputs[0].shape.iter().product(), 100);
        let y0 = untrained.run(&[(input, &x)]).unwrap().remove(0).2;
        assert_ne!(bits(&y), bits(&y0), "training did not change the outputs");
    }
}

#[test]
fn constructed_mobilenet_exported_runs_bit_identical() {
    check(&small_mobilenet(), None, "input", 3);
}

#[test]
fn imported_pytorch_model_exported_runs_bit_identical() {
    let src = fixture("pytorch", &["--alpha", "0.25", "--resolution", "32", "--classes", "10"]);
    let original = mobilenetc::onnx::import::decode_model(&std::fs::read(&src).unwrap()).unwrap();
    let graph = import_file(&src, &ImportOptions::default()).unwrap();
    check(&graph, Some(original), "input", 3);
}

/// Writes the trained, exported model that models/tests/exported.rs compiles with
/// include_model!: `cargo test -p mobilenetc-e2e --test export_executor -- --ignored`.
#[test]
#[ignore = "regenerates models/tests/data/trained-mobilenet-0.125-32.onnx"]
fn write_trained_model_for_include_model() {
    // α 0.125 keeps the checked-in file small (about 0.2 MB).
    let cfg = MobileNetConfig { alpha: 0.125, resolution: 32, classes: 10, ..MobileNetConfig::default() };
    let source = mobilenet_v1(&cfg).unwrap();
    let trainer = fine_tune(&source, 3);
    assert_all_moved(&source, &trainer);
    let path = mobilenetc_e2e::workspace_root().join("models/tests/data/trained-mobilenet-0.125-32.onnx");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    trainer.export_onnx(&path, &OnnxExportOptions::default()).unwrap();
}
