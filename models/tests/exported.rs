//! Exported → include_model!: a model trained here and exported to ONNX
//! (tests/data/trained-mobilenet-0.125-32.onnx: MobileNet v1 α 0.125, 32×32, 10 classes, three
//! Adam steps on the Fashion-MNIST sample, BatchNorm kept; written by the ignored test
//! `write_trained_model_for_include_model` of tests/export_executor.rs) compiles with
//! include_model! and the generated code computes exactly, bit for bit, what the schedule
//! executor computes on the same file.
//!
//! With tests/export_executor.rs (exported file → executor is bit-identical to the trained
//! model in memory) this closes the chain: trained in memory = exported + executor =
//! exported + include_model!.

use mobilenetc::exec::Executor;
use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::onnx::import::{import_file, ImportOptions};

mod common;
use common::input;

mobilenetc_macros::include_model!(Trained, "tests/data/trained-mobilenet-0.125-32.onnx");

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/trained-mobilenet-0.125-32.onnx");

#[test]
fn exported_model_compiled_by_include_model_matches_the_executor_bit_for_bit() {
    let graph = import_file(std::path::Path::new(FILE), &ImportOptions::default()).expect("the exported file imports");
    let mut exec = Executor::from_graph(&graph).expect("lowering");
    let mut net = Trained::new();
    assert!(exec.schedule().weights[..] == net.weights().as_slice()[..], "the embedded weights differ from the executor's schedule");
    assert_eq!(Trained::INPUT_SHAPE, [1, 3, 32, 32]);
    assert_eq!(Trained::OUTPUT_SHAPE, [1, 10]);
    for seed in 0..3 {
        let x = input(Trained::INPUT_LEN, seed);
        let generated = net.infer(x.as_slice().try_into().expect("input length")).to_vec();
        let executed = exec.run(&[("input", &x)]).expect("run").remove(0).2;
        assert_eq!(generated.len(), executed.len());
        for (i, (g, e)) in generated.iter().zip(&executed).enumerate() {
            assert_eq!(g.to_bits(), e.to_bits(), "element {i}: generated {g} vs executor {e}");
        }
    }

    // The file holds trained weights: every conv weight differs from the constructor's initial
    // values, so this is not the untrained network under another name.
    let init = mobilenet_v1(&MobileNetConfig { alpha: 0.125, resolution: 32, classes: 10, ..MobileNetConfig::default() }).unwrap();
    let mut compared = 0;
    for (id, t) in &init.constants {
        let name = &init.tensors[*id].name;
        if !name.ends_with("_w") {
            continue;
        }
        let theirs = graph.tensors.iter().position(|x| &x.name == name).unwrap_or_else(|| panic!("{name} not in the export"));
        assert_ne!(graph.constants[&theirs].data, t.data, "{name} is still its initial value");
        compared += 1;
    }
    assert!(compared >= 28, "{compared} weights compared");
}
