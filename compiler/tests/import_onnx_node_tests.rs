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
    // Operands that must be constants are runtime inputs in these node tests.
    ("test_reshape_", "INT64"),
    ("test_constant_pad", "INT64"),
    ("test_training_dropout", "BOOL"),
    ("test_clip", "computed at run time"),
    ("test_dropout_default_ratio", "computed at run time"),
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
    assert!(imported >= 90, "only {imported} models imported");
}

/// The PyTorch-converted and "simple" suites: whatever imports must match the reference
/// output shapes; the rest must fail cleanly. Models that only use supported ops must import.
#[test]
fn pytorch_suites_shapes_match_or_fail_cleanly() {
    let root = Path::new(ROOT).parent().unwrap().to_path_buf();
    let mut dirs = Vec::new();
    for suite in ["pytorch-converted", "pytorch-operator", "simple"] {
        let Ok(entries) = std::fs::read_dir(root.join(suite)) else { continue };
        dirs.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
    }
    if dirs.is_empty() {
        eprintln!("skipped: the ONNX test suites are not installed");
        return;
    }
    dirs.sort();
    let (mut imported, mut failed) = (Vec::new(), Vec::new());
    let mut failures = Vec::new();
    for dir in dirs {
        let model = dir.join("model.onnx");
        if !model.exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        match std::panic::catch_unwind(|| import_file(&model, &ImportOptions::default())) {
            Err(_) => failures.push(format!("{name}: PANIC")),
            Ok(Ok(g)) => {
                let got: Vec<Vec<usize>> = g.outputs.iter().map(|&t| g.shape(t).to_vec()).collect();
                match reference_shapes(&dir, got.len()) {
                    Some(want) if want != got => failures.push(format!("{name}: output shapes {got:?}, reference {want:?}")),
                    _ => imported.push(name),
                }
            }
            Ok(Err(e)) => failed.push(format!("{name}: {}", e.innermost())),
        }
    }
    eprintln!("imported {}: {}\nrefused {}:\n{}", imported.len(), imported.join(" "), failed.len(), failed.join("\n"));
    for must in ["test_Conv2d", "test_Conv2d_depthwise", "test_Conv2d_depthwise_strided", "test_BatchNorm2d_eval", "test_Linear", "test_MaxPool2d", "test_AvgPool2d", "test_Softmax", "test_ZeroPad2d", "test_operator_flatten", "test_operator_view"] {
        if !imported.iter().any(|n| n == must) {
            failures.push(format!("{must} did not import"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
