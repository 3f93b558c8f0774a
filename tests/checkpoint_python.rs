//! Checkpoints are plain safetensors files that other tools read: Python's `safetensors`
//! package and a hand parser of the documented layout (tests/py/read_checkpoint.py, which
//! asserts the two agree) read back every tensor bit for bit, with the names, shapes and
//! metadata docs/checkpoint.md documents.

mod export_common;

use std::collections::HashMap;

use mobilenetc::checkpoint::{Checkpoint, EpochRecord, ModelSource};
use mobilenetc::graph::mobilenet::MobileNetConfig;
use mobilenetc::runtime::npy;
use mobilenetc::runtime::optim::Optimizer;
use mobilenetc_e2e::{fixture, run_python};
use serde_json::Value;

use export_common::{fine_tune_with, small_mobilenet};

struct PyTensor {
    dtype: String,
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// The checkpoint as Python reads it: metadata and tensors by name.
fn read_in_python(path: &std::path::Path) -> (HashMap<String, String>, HashMap<String, PyTensor>) {
    let out = tempfile::tempdir().unwrap();
    let stdout = run_python("read_checkpoint.py", &[path.as_os_str(), out.path().as_os_str()]).unwrap_or_else(|e| panic!("{e}"));
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    let meta = v["metadata"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    let tensors = v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let a = npy::read(&out.path().join(t["file"].as_str().unwrap())).unwrap();
            let shape: Vec<usize> = t["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
            assert_eq!(a.shape, shape);
            (t["name"].as_str().unwrap().to_string(), PyTensor { dtype: t["dtype"].as_str().unwrap().to_string(), shape, data: a.data })
        })
        .collect();
    (meta, tensors)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn check(model: ModelSource, graph: &mobilenetc::graph::Graph) {
    let (trainer, opt) = fine_tune_with(graph, 2);
    let state = opt.state();
    let history = vec![EpochRecord { epoch: 1, train_loss: 2.25, train_acc: 0.125, val_loss: 2.5, val_acc: 0.1, seconds: 1.5, images_per_second: 21.0 }];
    let c = Checkpoint {
        model: model.clone(),
        tensors: trainer.parameters(),
        trainable: trainer.slot_names().len(),
        optimizer: Some(state.clone()),
        epoch: 3,
        seed: 1234567890123,
        config: serde_json::json!({"batch_size": 16, "optimizer": "adam"}),
        history,
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("checkpoint.safetensors");
    c.save(&path).unwrap();
    let (meta, tensors) = read_in_python(&path);

    assert_eq!(meta["format"], "mobilenetc-checkpoint");
    assert_eq!(meta["format_version"], "1");
    assert_eq!(meta["epoch"], "3");
    assert_eq!(meta["seed"], "1234567890123");
    let list = |k: &str| serde_json::from_str::<Vec<String>>(&meta[k]).unwrap();
    let names: Vec<String> = c.tensors.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(list("parameters"), names[..c.trainable]);
    assert_eq!(list("running_stats"), names[c.trainable..]);
    // 27 BatchNorms: each a running mean and a running variance.
    assert_eq!(list("running_stats").len(), 54);
    assert!(list("running_stats").iter().any(|n| n.contains("mean")) && list("running_stats").iter().any(|n| n.contains("var")));
    let o: Value = serde_json::from_str(&meta["optimizer"]).unwrap();
    assert_eq!((o["kind"].as_str(), o["step"].as_u64()), (Some("adam"), Some(2)));
    let hist: Value = serde_json::from_str(&meta["history"]).unwrap();
    assert_eq!(hist, serde_json::json!([[1, 2.25, 0.125, 2.5, 0.1, 1.5, 21.0]]));

    // Weights and running statistics under their ONNX names, bit for bit.
    for (name, t) in &c.tensors {
        let p = tensors.get(name).unwrap_or_else(|| panic!("Python sees no tensor '{name}'"));
        assert_eq!((p.dtype.as_str(), &p.shape), ("float32", &t.shape), "{name}");
        assert!(bits(&p.data) == bits(&t.data), "{name}: values differ");
    }
    // Adam's m and v of every parameter, as __optimizer__/<buffer>/<parameter>.
    assert_eq!(state.buffers.len(), 2 * c.trainable);
    for (key, data) in &state.buffers {
        let (slot, buffer) = key.split_once('.').unwrap();
        let name = &names[slot.parse::<usize>().unwrap()];
        let p = &tensors[&format!("__optimizer__/{buffer}/{name}")];
        assert!(bits(&p.data) == bits(data), "{key}: optimizer state differs");
        assert!(data.iter().any(|&v| v != 0.0), "{key}: all zero after 2 steps");
    }
    // The imported model's own bytes ride along as U8.
    let extra = tensors.len() - c.tensors.len() - state.buffers.len();
    match &model {
        ModelSource::Onnx { bytes, .. } => {
            assert_eq!(extra, 1);
            let p = &tensors["__model__/source.onnx"];
            assert_eq!((p.dtype.as_str(), p.shape.as_slice()), ("uint8", &[bytes.len()][..]));
            assert!(p.data.iter().zip(bytes).all(|(a, &b)| *a == b as f32));
            let m: Value = serde_json::from_str(&meta["model"]).unwrap();
            assert_eq!(m["kind"], "onnx");
        }
        ModelSource::MobileNet(_) => {
            assert_eq!(extra, 0);
            let m: Value = serde_json::from_str(&meta["model"]).unwrap();
            assert_eq!((m["kind"].as_str(), m["alpha"].as_f64(), m["resolution"].as_u64()), (Some("mobilenet_v1"), Some(0.25), Some(32)));
        }
    }
    // And we read back what we wrote.
    assert_eq!(Checkpoint::load(&path).unwrap(), c);
}

#[test]
fn constructed_model_checkpoint_reads_in_python() {
    let cfg = MobileNetConfig { alpha: 0.25, resolution: 32, classes: 10, ..MobileNetConfig::default() };
    check(ModelSource::MobileNet(cfg), &small_mobilenet());
}

#[test]
fn imported_model_checkpoint_reads_in_python() {
    let src = fixture("pytorch", &["--alpha", "0.25", "--resolution", "32", "--classes", "10"]);
    let bytes = std::fs::read(&src).unwrap();
    let graph = mobilenetc::onnx::import::import_bytes(&bytes, &Default::default()).unwrap();
    check(ModelSource::Onnx { name: "pytorch.onnx".into(), bytes }, &graph);
}
