//! The reference evaluator and the passes against the reference outputs shipped with the ONNX
//! test suites (libonnx-testdata: node tests, PyTorch-converted and -operator models, simple
//! nets). Every model that imports is evaluated on its test inputs: the evaluator must match
//! the reference outputs, and so must the graph after `optimize`. Tolerance 1e-5 of each
//! output's scale (the suites themselves allow 1e-3 relative). Skipped when not installed.

use std::path::{Path, PathBuf};

use mobilenetc::eval::{evaluate, max_rel_diff};
use mobilenetc::graph::{Graph, Tensor};
use mobilenetc::onnx::import::{import_file, ImportOptions};
use mobilenetc::passes::{optimize, PassOptions};
use mobilenetc_runtime::onnx::TensorProto;
use prost::Message;

const ROOT: &str = "/usr/share/libonnx-testdata/data";
const TOL: f64 = 1e-5;

/// A FLOAT TensorProto as a Tensor (None for other types).
fn read_tensor(path: &Path) -> Option<(Option<String>, Tensor)> {
    let p = TensorProto::decode(std::fs::read(path).ok()?.as_slice()).ok()?;
    if p.data_type != Some(1) {
        return None;
    }
    let shape: Vec<usize> = p.dims.iter().map(|&d| d as usize).collect();
    let data: Vec<f32> = match &p.raw_data {
        Some(raw) if !raw.is_empty() => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        _ => p.float_data.clone(),
    };
    (data.len() == shape.iter().product::<usize>()).then(|| (p.name.clone().filter(|n| !n.is_empty()), Tensor::new(shape, data)))
}

/// The test inputs bound to the graph's inputs (by name when the files carry one, else in
/// order) and the reference outputs; None when a file is not FLOAT.
fn test_data(g: &Graph, dir: &Path) -> Option<(Vec<(String, Tensor)>, Vec<Tensor>)> {
    let set = dir.join("test_data_set_0");
    let mut inputs = Vec::new();
    for (i, &t) in g.inputs.iter().enumerate() {
        let (name, value) = read_tensor(&set.join(format!("input_{i}.pb")))?;
        inputs.push((name.unwrap_or_else(|| g.tensor(t).name.clone()), value));
    }
    let outputs = (0..g.outputs.len()).map(|i| read_tensor(&set.join(format!("output_{i}.pb"))).map(|(_, t)| t)).collect::<Option<Vec<_>>>()?;
    Some((inputs, outputs))
}

fn compare(got: &[Tensor], want: &[Tensor]) -> Result<f64, String> {
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let d = max_rel_diff(g, w);
        if d > TOL {
            return Err(format!("output {i}: max rel diff {d:e} (shape {:?} vs {:?})", g.shape, w.shape));
        }
        worst = worst.max(d);
    }
    Ok(worst)
}

#[test]
fn imported_suite_models_match_their_reference_outputs_before_and_after_the_passes() {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for suite in ["node", "pytorch-converted", "pytorch-operator", "simple"] {
        let Ok(entries) = std::fs::read_dir(Path::new(ROOT).join(suite)) else { continue };
        dirs.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
    }
    if dirs.is_empty() {
        eprintln!("skipped: {ROOT} is not installed (apt-get install libonnx-testdata)");
        return;
    }
    dirs.sort();
    let (mut checked, mut rewritten, mut worst) = (Vec::new(), 0, 0.0f64);
    let mut failures = Vec::new();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let Ok(g) = import_file(&dir.join("model.onnx"), &ImportOptions::default()) else { continue };
        let Some((owned, want)) = test_data(&g, &dir) else { continue };
        let inputs: Vec<(&str, Tensor)> = owned.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        match evaluate(&g, &inputs).map_err(|e| e.to_string()).and_then(|got| compare(&got, &want)) {
            Ok(d) => worst = worst.max(d),
            Err(e) => {
                failures.push(format!("{name}: evaluator: {e}"));
                continue;
            }
        }
        let mut opt = g.clone();
        let result = optimize(&mut opt, &PassOptions::default()).map_err(|e| e.to_string()).and_then(|r| {
            let got = evaluate(&opt, &inputs).map_err(|e| e.to_string())?;
            compare(&got, &want).map(|_| r)
        });
        match result {
            Ok(r) => rewritten += (r.nodes_after != r.nodes_before || r.changed.iter().any(|(_, n)| *n > 0)) as usize,
            Err(e) => failures.push(format!("{name}: after the passes: {e}")),
        }
        checked.push(name);
    }
    eprintln!("checked {} models ({rewritten} changed by the passes), worst max rel diff {worst:.2e}", checked.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    for must in ["test_conv_with_strides_padding", "test_batchnorm_epsilon", "test_gemm_all_attributes", "test_Conv2d_depthwise_strided", "test_BatchNorm2d_eval", "test_Linear"] {
        assert!(checked.iter().any(|n| n == must), "{must} was not checked");
    }
}
