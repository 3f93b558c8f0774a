//! Smoke test over the ONNX node tests (libonnx-testdata, ONNX 1.12): every model of a
//! supported op imports and its inferred output shapes equal the reference outputs' shapes,
//! or it is refused for a listed reason. Models of other ops must fail cleanly (no panic).
//! Skipped when the test data is not installed.

use std::path::{Path, PathBuf};

use mobilenetc::onnx::import::{import_file, ImportOptions};
use mobilenetc_runtime::onnx::TensorProto;
use prost::Message;

const ROOT: &str = "/usr/share/libonnx-testdata/data/node";

/// Ops the IR supports: their models must import.
const SUPPORTED: &[&str] = &[
    "Conv", "BatchNormalization", "Relu", "Clip", "GlobalAveragePool", "AveragePool", "MaxPool", "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Sub", "Mul", "Softmax",
    "Identity", "Dropout", "Transpose", "Pad", "Concat",
];

/// Models of supported ops that are refused on purpose, with a word the error must contain.
const REFUSED: &[(&str, &str)] = &[
    ("test_averagepool_1d_default", "only 2-D"),
    ("test_averagepool_3d_default", "only 2-D"),
    ("test_maxpool_1d_default", "only 2-D"),
    ("test_maxpool_3d_default", "only 2-D"),
    ("test_maxpool_with_argmax_2d_precomputed_pads", "Indices"),
    ("test_maxpool_with_argmax_2d_precomputed_strides", "Indices"),
    ("test_maxpool_2d_uint8", "UINT8"),
    ("test_add_uint8", "UINT8"),
    ("test_sub_uint8", "UINT8"),
    ("test_mul_uint8", "UINT8"),
    ("test_batchnorm_epsilon_training_mode", "training_mode"),
    ("test_batchnorm_example_training_mode", "training_mode"),
    ("test_dropout_default_mask", "mask"),
    ("test_dropout_default_mask_ratio", "mask"),
    ("test_clip_default_int8_inbounds", "INT8"),
    ("test_clip_default_int8_max", "INT8"),
    ("test_clip_default_int8_min", "INT8"),
    ("test_edge_pad", "edge"),
    ("test_reflect_pad", "reflect"),
    ("test_identity_sequence", "not a tensor"),
    ("test_identity_opt", "not a tensor"),
    // The shape input is a runtime input in these node tests.
    ("test_reshape_", "computed at run time"),
    ("test_clip", "computed at run time"),
    ("test_dropout_default_ratio", "computed at run time"),
    ("test_constant_pad", "computed at run time"),
];

fn main_op(model: &Path) -> Option<String> {
    let bytes = std::fs::read(model).ok()?;
    let m = mobilenetc_runtime::onnx::ModelProto::decode(bytes.as_slice()).ok()?;
    let g = m.graph?;
    (g.node.len() == 1).then(|| g.node[0].op_type.clone().unwrap_or_default())
}

fn reference_shapes(dir: &Path, n: usize) -> Option<Vec<Vec<usize>>> {
    (0..n)
        .map(|i| {
            let bytes = std::fs::read(dir.join("test_data_set_0").join(format!("output_{i}.pb"))).ok()?;
            Some(TensorProto::decode(bytes.as_slice()).ok()?.dims.iter().map(|&d| d as usize).collect())
        })
        .collect()
}

#[test]
fn onnx_node_tests_import_or_are_refused_clearly() {
    let Ok(entries) = std::fs::read_dir(ROOT) else {
        eprintln!("skipped: {ROOT} is not installed (apt-get install libonnx-testdata)");
        return;
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    let (mut imported, mut refused, mut other) = (0, 0, 0);
    let mut failures = Vec::new();
    for dir in dirs {
        let model = dir.join("model.onnx");
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let Some(op) = main_op(&model) else { continue };
        let result = std::panic::catch_unwind(|| import_file(&model, &ImportOptions::default()));
        let Ok(result) = result else {
            failures.push(format!("{name}: PANIC"));
            continue;
        };
        if !SUPPORTED.contains(&op.as_str()) || name.ends_with("_expanded") {
            other += 1;
            continue;
        }
        match result {
            Ok(g) => {
                imported += 1;
                let got: Vec<Vec<usize>> = g.outputs.iter().map(|&t| g.shape(t).to_vec()).collect();
                match reference_shapes(&dir, got.len()) {
                    Some(want) if want == got => {}
                    want => failures.push(format!("{name}: output shapes {got:?}, reference {want:?}")),
                }
            }
            Err(e) => {
                let text = e.to_string();
                match REFUSED.iter().find(|(prefix, _)| name.starts_with(prefix)) {
                    Some((_, word)) if text.contains(word) => refused += 1,
                    _ => failures.push(format!("{name} ({op}): {text}")),
                }
            }
        }
    }
    eprintln!("imported {imported}, refused as expected {refused}, other ops {other}");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(imported > 100, "only {imported} models imported");
}
