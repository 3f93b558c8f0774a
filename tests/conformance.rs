//! ONNX conformance: ONNX's own backend node tests for every op mobilenetc claims, run through
//! the importer and the schedule executor and compared with ONNX's reference outputs at the
//! suite's tolerances (|ours − ref| ≤ atol + rtol·|ref|, rtol 1e-3, atol 1e-7).
//!
//! The cases come from the installed `onnx` wheel (`tests/conformance/generate.py`, run once in
//! the venv and cached under `target/conformance/`). Every case either passes, or is refused with
//! an error containing the word listed for it in [`KNOWN_LIMITATIONS`]; anything else — a
//! numeric mismatch, an unlisted refusal, a listed case that now passes, a panic — fails the test.
//!
//! Inputs promoted to constants: ONNX node tests feed *every* operand as a graph input, even the
//! ones whose values decide output shapes or that the op's semantics want fixed (Reshape's
//! `shape`, Pad's `pads`/`constant_value`/`axes`, Clip's `min`/`max`, Dropout's `ratio` and
//! `training_mode`), and BatchNormalization's `scale`/`B`/`mean`/`var`, which inference folds
//! into one multiply-add per channel at compile time (the importer refuses them as runtime
//! inputs: "must be a constant for inference"). Such operands (inputs 1.. of those five ops)
//! are turned into initializers holding the test data set's values before import, as tract
//! does with its "input as constant" tags. Data operands — including Conv and Gemm weights and
//! every integer data input — stay runtime inputs, so the executor packs weights at run time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use mobilenetc::exec::Executor;
use mobilenetc::onnx::import::{import_model, ImportOptions};
use mobilenetc_e2e::{python, workspace_root};
use mobilenetc_runtime::onnx::{tensor_proto::DataType, ModelProto, TensorProto};
use prost::Message;

/// Cases of claimed ops that are refused on purpose: (case name, a word the error must contain,
/// the reason, for the README).
const KNOWN_LIMITATIONS: &[(&str, &str, &str)] = &[
    // Integer element types: the runtime computes in f32 only.
    ("test_add_int16", "INT16", "integer element types (f32 only)"),
    ("test_add_int8", "INT8", "integer element types (f32 only)"),
    ("test_add_uint16", "UINT16", "integer element types (f32 only)"),
    ("test_add_uint32", "UINT32", "integer element types (f32 only)"),
    ("test_add_uint64", "UINT64", "integer element types (f32 only)"),
    ("test_add_uint8", "UINT8", "integer element types (f32 only)"),
    ("test_sub_int16", "INT16", "integer element types (f32 only)"),
    ("test_sub_int8", "INT8", "integer element types (f32 only)"),
    ("test_sub_uint16", "UINT16", "integer element types (f32 only)"),
    ("test_sub_uint32", "UINT32", "integer element types (f32 only)"),
    ("test_sub_uint64", "UINT64", "integer element types (f32 only)"),
    ("test_sub_uint8", "UINT8", "integer element types (f32 only)"),
    ("test_mul_int16", "INT16", "integer element types (f32 only)"),
    ("test_mul_int8", "INT8", "integer element types (f32 only)"),
    ("test_mul_uint16", "UINT16", "integer element types (f32 only)"),
    ("test_mul_uint32", "UINT32", "integer element types (f32 only)"),
    ("test_mul_uint64", "UINT64", "integer element types (f32 only)"),
    ("test_mul_uint8", "UINT8", "integer element types (f32 only)"),
    ("test_clip_default_int8_inbounds", "INT8", "integer element types (f32 only)"),
    ("test_clip_default_int8_inbounds_expanded", "INT8", "integer element types (f32 only)"),
    ("test_clip_default_int8_max", "INT8", "integer element types (f32 only)"),
    ("test_clip_default_int8_min", "INT8", "integer element types (f32 only)"),
    ("test_maxpool_2d_uint8", "UINT8", "integer element types (f32 only)"),
    ("test_edge_pad", "INT32", "integer element types (and edge mode)"),
    ("test_reflect_pad", "INT32", "integer element types (and reflect mode)"),
    ("test_wrap_pad", "INT32", "integer element types (and wrap mode)"),
    // 1-D and 3-D pooling: the kernels are 2-D (images).
    ("test_averagepool_1d_default", "only 2-D", "1-D pooling (2-D only)"),
    ("test_maxpool_1d_default", "only 2-D", "1-D pooling (2-D only)"),
    ("test_averagepool_3d_default", "only 2-D", "3-D pooling (2-D only)"),
    ("test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_False", "only 2-D", "3-D pooling (2-D only)"),
    ("test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_True", "only 2-D", "3-D pooling (2-D only)"),
    ("test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_False", "only 2-D", "3-D pooling (2-D only)"),
    ("test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True", "only 2-D", "3-D pooling (2-D only)"),
    ("test_averagepool_3d_dilations_small", "only 2-D", "3-D pooling (2-D only)"),
    ("test_maxpool_3d_default", "only 2-D", "3-D pooling (2-D only)"),
    ("test_maxpool_3d_dilations", "only 2-D", "3-D pooling (2-D only)"),
    ("test_maxpool_3d_dilations_use_ref_impl", "only 2-D", "3-D pooling (2-D only)"),
    ("test_maxpool_3d_dilations_use_ref_impl_large", "only 2-D", "3-D pooling (2-D only)"),
    // Zero-size tensors: a declared 0 dim of a graph input is read as unknown (old exporters
    // write 0 for a free batch) and set to the batch size, so the element counts disagree.
    ("test_reshape_allowzero_reordered", "has 0 elements", "zero-size tensors (a 0 dim of an input reads as unknown)"),
    // Outputs we do not produce.
    ("test_maxpool_with_argmax_2d_precomputed_pads", "Indices", "MaxPool's Indices output"),
    ("test_maxpool_with_argmax_2d_precomputed_strides", "Indices", "MaxPool's Indices output"),
    ("test_dropout_default_mask", "mask", "Dropout's mask output"),
    ("test_dropout_default_mask_ratio", "mask", "Dropout's mask output"),
    ("test_training_dropout_default_mask", "mask", "Dropout's mask output"),
    ("test_training_dropout_mask", "mask", "Dropout's mask output"),
    ("test_training_dropout_zero_ratio_mask", "mask", "Dropout's mask output"),
    // Training-mode semantics: inference only.
    ("test_training_dropout", "training", "Dropout in training mode (inference only)"),
    ("test_training_dropout_default", "training", "Dropout in training mode (inference only)"),
    ("test_training_dropout_zero_ratio", "training", "Dropout in training mode (inference only)"),
    ("test_batchnorm_epsilon_training_mode", "training_mode", "BatchNormalization in training mode (inference only)"),
    ("test_batchnorm_example_training_mode", "training_mode", "BatchNormalization in training mode (inference only)"),
];

/// Ops of the claimed list whose node tests run here.
const CLAIMED: &[&str] = &[
    "Conv", "BatchNormalization", "Relu", "Clip", "GlobalAveragePool", "AveragePool", "MaxPool", "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Sub", "Mul", "Softmax",
    "Identity", "Dropout", "Transpose", "Pad", "Concat",
];

/// Ops whose inputs after the first are promoted to initializers (see the module doc).
const CONSTANT_OPERANDS: &[&str] = &["Clip", "Reshape", "Pad", "Dropout", "BatchNormalization"];

/// Runs a generator script of `tests/conformance` (`args` after it) unless `dir`'s manifest is
/// newer than the script; returns the manifest.
fn generated(script: &str, dir: &Path, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance").join(script);
    let manifest = dir.join("manifest.json");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    if !manifest.exists() || mtime(&manifest) < mtime(&script) {
        let _ = std::fs::remove_dir_all(dir);
        let out = std::process::Command::new(python()).arg(&script).args(args).output().expect("start python");
        assert!(
            out.status.success(),
            "{} failed:\n{}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    serde_json::from_slice(&std::fs::read(&manifest).expect("manifest.json")).expect("manifest.json parses")
}

/// The claimed ops' node tests, generated once per run of this binary (two tests read them).
fn claimed_cases() -> &'static (PathBuf, serde_json::Value) {
    static CASES: OnceLock<(PathBuf, serde_json::Value)> = OnceLock::new();
    CASES.get_or_init(|| {
        let dir = cases_dir("claimed");
        let manifest = generated("generate.py", &dir, &[dir.as_os_str()]);
        (dir, manifest)
    })
}

fn cases_dir(suite: &str) -> PathBuf {
    workspace_root().join("target/conformance").join(suite)
}

fn read_tensor(path: &Path) -> TensorProto {
    TensorProto::decode(std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).as_slice())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of a FLOAT tensor (raw little-endian bytes or `float_data`); None for other types.
fn f32_values(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type != Some(DataType::Float as i32) {
        return None;
    }
    Some(match &t.raw_data {
        Some(raw) if !raw.is_empty() || t.float_data.is_empty() => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        _ => t.float_data.clone(),
    })
}

fn dims(t: &TensorProto) -> Vec<usize> {
    t.dims.iter().map(|&d| d as usize).collect()
}

fn type_name(t: &TensorProto) -> String {
    DataType::try_from(t.data_type.unwrap_or(0)).map(|d| d.as_str_name().to_string()).unwrap_or_else(|_| "?".into())
}

/// The numbered `prefix_<i>.pb` files of a data set, in order.
fn numbered(set: &Path, prefix: &str) -> Vec<TensorProto> {
    (0..).map(|i| set.join(format!("{prefix}_{i}.pb"))).take_while(|p| p.exists()).map(|p| read_tensor(&p)).collect()
}

#[derive(Debug)]
enum Outcome {
    Passed,
    Refused(String),
    Failed(String),
}

/// Runs one data set of one case: promotes constant operands, imports, executes, compares.
fn run_case(model: &ModelProto, set: &Path, rtol: f32, atol: f32) -> Outcome {
    let mut model = model.clone();
    let graph = model.graph.as_mut().expect("a node test has a graph");
    let inputs = numbered(set, "input");
    let outputs = numbered(set, "output");
    let node = graph.node[0].clone();
    let op = node.op_type.clone().unwrap_or_default();
    let mut feeds: Vec<(String, Vec<f32>)> = Vec::new();
    let mut unfed: Vec<String> = Vec::new();
    let graph_inputs = std::mem::take(&mut graph.input);
    for (info, value) in graph_inputs.iter().zip(&inputs) {
        let name = info.name.clone().unwrap_or_default();
        let position = node.input.iter().position(|n| *n == name);
        if CONSTANT_OPERANDS.contains(&op.as_str()) && position.is_some_and(|p| p >= 1) {
            let mut init = value.clone();
            init.name = Some(name);
            graph.initializer.push(init);
            continue;
        }
        graph.input.push(info.clone());
        match f32_values(value) {
            Some(v) => feeds.push((name, v)),
            None => unfed.push(format!("{name}: {}", type_name(value))),
        }
    }
    let graph_outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone().unwrap_or_default()).collect();
    let g = match import_model(&model, &ImportOptions::default()) {
        Ok(g) => g,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    if !unfed.is_empty() {
        return Outcome::Failed(format!("imported although inputs are not f32: {}", unfed.join(", ")));
    }
    let mut exec = match Executor::from_graph(&g) {
        Ok(x) => x,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let feed_refs: Vec<(&str, &[f32])> = feeds.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let ours = match exec.run(&feed_refs) {
        Ok(o) => o,
        Err(e) => return Outcome::Failed(format!("run: {e}")),
    };
    if ours.len() != graph_outputs.len() || outputs.len() != graph_outputs.len() {
        return Outcome::Failed(format!("{} outputs, {} in the graph, {} references", ours.len(), graph_outputs.len(), outputs.len()));
    }
    for ((name, shape, got), (want_name, reference)) in ours.iter().zip(graph_outputs.iter().zip(&outputs)) {
        if name != want_name {
            return Outcome::Failed(format!("output '{name}' where the graph has '{want_name}'"));
        }
        let Some(want) = f32_values(reference) else {
            return Outcome::Failed(format!("output '{name}' is f32, the reference is {}", type_name(reference)));
        };
        if *shape != dims(reference) {
            return Outcome::Failed(format!("output '{name}' has shape {shape:?}, the reference {:?}", dims(reference)));
        }
        let worst = got
            .iter()
            .zip(&want)
            .enumerate()
            .map(|(i, (&o, &r))| (i, o, r, (o - r).abs() - (atol + rtol * r.abs())))
            .filter(|&(_, o, r, excess)| excess > 0.0 || o.is_nan() != r.is_nan())
            .max_by(|a, b| a.3.total_cmp(&b.3));
        if let Some((i, o, r, _)) = worst {
            return Outcome::Failed(format!("output '{name}'[{i}] = {o}, reference {r} (rtol {rtol}, atol {atol})"));
        }
    }
    Outcome::Passed
}

/// Runs every data set of a case; the first non-pass decides.
fn run_case_dir(dir: &Path, rtol: f32, atol: f32) -> Outcome {
    let bytes = std::fs::read(dir.join("model.onnx")).expect("model.onnx");
    let model = ModelProto::decode(bytes.as_slice()).expect("model.onnx decodes");
    let mut sets: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("case dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_")))
        .collect();
    sets.sort();
    assert!(!sets.is_empty(), "{}: no test data set", dir.display());
    for set in sets {
        match std::panic::catch_unwind(|| run_case(&model, &set, rtol, atol)) {
            Ok(Outcome::Passed) => {}
            Ok(other) => return other,
            Err(p) => {
                let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                return Outcome::Failed(format!("PANIC: {msg}"));
            }
        }
    }
    Outcome::Passed
}

#[derive(Default)]
struct Row {
    cases: usize,
    passed: usize,
    refused: Vec<String>,
    failed: usize,
}

/// The table as Markdown: op, cases, passed, refused (with reasons), failed.
fn table(rows: &BTreeMap<String, Row>) -> String {
    let mut s = String::from("| op | cases | passed | refused (reason) | failed |\n| --- | ---: | ---: | --- | ---: |\n");
    let (mut c, mut p, mut r, mut f) = (0, 0, 0, 0);
    for (op, row) in rows {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for why in &row.refused {
            *reasons.entry(why.as_str()).or_default() += 1;
        }
        let refused = if row.refused.is_empty() {
            "0".to_string()
        } else {
            format!("{} ({})", row.refused.len(), reasons.iter().map(|(w, n)| format!("{n}: {w}")).collect::<Vec<_>>().join("; "))
        };
        s += &format!("| {op} | {} | {} | {refused} | {} |\n", row.cases, row.passed, row.failed);
        (c, p, r, f) = (c + row.cases, p + row.passed, r + row.refused.len(), f + row.failed);
    }
    s += &format!("| **total** | {c} | {p} | {r} | {f} |\n");
    s
}

/// Runs every case of a suite; `row_of` names a case's table row and `base` its name in the
/// claimed suite (for [`KNOWN_LIMITATIONS`]). Returns the table and the problems.
fn run_suite(dir: &Path, cases: &[serde_json::Value], row_of: impl Fn(&serde_json::Value) -> String, base: impl Fn(&serde_json::Value) -> String) -> (String, Vec<String>) {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut problems = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let op = case["op"].as_str().unwrap();
        assert!(CLAIMED.contains(&op), "{name}: op {op} is not claimed");
        let (rtol, atol) = (case["rtol"].as_f64().unwrap() as f32, case["atol"].as_f64().unwrap() as f32);
        let outcome = run_case_dir(&dir.join(name), rtol, atol);
        let base = base(case);
        let known = KNOWN_LIMITATIONS.iter().find(|(n, _, _)| *n == base);
        let row = rows.entry(row_of(case)).or_default();
        row.cases += 1;
        match (outcome, known) {
            (Outcome::Passed, None) => row.passed += 1,
            (Outcome::Passed, Some(_)) => {
                row.passed += 1;
                problems.push(format!("{name}: passes now; remove it from KNOWN_LIMITATIONS"));
            }
            (Outcome::Refused(e), Some((_, word, reason))) if e.contains(word) => row.refused.push(reason.to_string()),
            (Outcome::Refused(e), known) => {
                row.failed += 1;
                let why = known.map(|(_, w, _)| format!(" (listed, but the error lacks '{w}')")).unwrap_or_default();
                problems.push(format!("{name}: refused{why}: {e}"));
            }
            (Outcome::Failed(e), _) => {
                row.failed += 1;
                problems.push(format!("{name}: {e}"));
            }
        }
    }
    (table(&rows), problems)
}

#[test]
fn onnx_node_tests_of_claimed_ops_pass_or_are_known_limitations() {
    let (dir, manifest) = claimed_cases();
    let cases = manifest["cases"].as_array().expect("cases");
    let (table, mut problems) = run_suite(dir, cases, |c| c["op"].as_str().unwrap().to_string(), |c| c["name"].as_str().unwrap().to_string());
    for (name, _, _) in KNOWN_LIMITATIONS {
        if !cases.iter().any(|c| c["name"] == *name) {
            problems.push(format!("{name}: listed in KNOWN_LIMITATIONS but not generated"));
        }
    }
    let onnx_version = manifest["onnx_version"].as_str().unwrap_or("?");
    let report = format!("ONNX {onnx_version} backend node tests, {} cases:\n\n{table}", cases.len());
    eprintln!("{report}");
    let _ = std::fs::write(workspace_root().join("target/conformance/table.md"), &report);
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    assert!(cases.len() >= 170, "only {} cases generated", cases.len());
}

/// The same cases converted to every older opset of their op that onnx.version_converter
/// reaches (down to 7), with onnxruntime's outputs as the reference (it implements each
/// opset's own semantics, e.g. Softmax-11's coercion to 2-D).
#[test]
fn older_opsets_of_claimed_ops_pass_or_are_known_limitations() {
    let (claimed, _) = claimed_cases();
    let dir = cases_dir("older");
    let manifest = generated("older_opsets.py", &dir, &[claimed.as_os_str(), dir.as_os_str()]);
    let cases = manifest["cases"].as_array().expect("cases");
    let (table, problems) = run_suite(
        &dir,
        cases,
        |c| format!("{}-{}", c["op"].as_str().unwrap(), c["opset"]),
        |c| c["base"].as_str().unwrap().to_string(),
    );
    let report = format!(
        "Older opsets (onnx.version_converter; reference onnxruntime {}), {} cases:\n\n{table}",
        manifest["onnxruntime_version"].as_str().unwrap_or("?"),
        cases.len()
    );
    eprintln!("{report}");
    let _ = std::fs::write(workspace_root().join("target/conformance/table_older.md"), &report);
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    assert!(cases.iter().any(|c| c["op"] == "Softmax" && c["opset"] == 11), "no Softmax-11 case");
}

/// Ops we do not claim are refused at import with an error naming the op, the node and the
/// opset (real node-test models of the same suite).
#[test]
fn unclaimed_ops_are_refused_naming_op_node_and_opset() {
    let names = ["test_sigmoid", "test_leakyrelu", "test_tanh", "test_exp"];
    let dir = cases_dir("unclaimed");
    let mut args = vec![dir.as_os_str()];
    args.extend(names.iter().map(std::ffi::OsStr::new));
    let manifest = generated("generate.py", &dir, &args);
    let cases = manifest["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), names.len(), "{manifest}");
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (op, opset) = (case["op"].as_str().unwrap(), case["opset"].as_i64().unwrap());
        let bytes = std::fs::read(dir.join(name).join("model.onnx")).unwrap();
        let model = ModelProto::decode(bytes.as_slice()).unwrap();
        // An unnamed node is named by its first output.
        let n = &model.graph.as_ref().unwrap().node[0];
        let node = n.name.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| n.output[0].clone());
        let e = import_model(&model, &ImportOptions::default()).expect_err(name).to_string();
        assert!(e.contains(op), "{name}: the error does not name the op {op}: {e}");
        assert!(e.contains(&opset.to_string()), "{name}: the error does not name opset {opset}: {e}");
        assert!(e.contains(&format!("'{node}'")), "{name}: the error does not name the node '{node}': {e}");
        eprintln!("{name}: {e}");
    }
}
