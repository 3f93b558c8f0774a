//! The trainer on MobileNets written by other exporters (tests/py/make_fixture.py, checked
//! there by onnx.checker and onnxruntime): PyTorch-style (Conv → BatchNorm → Clip, Flatten,
//! Gemm transB) and tf2onnx-style graphs import, lower to a training schedule, and learn (a
//! fixed batch's loss falls by half within 60 Adam steps). Models the trainer cannot
//! differentiate give an error naming the ops.

use std::path::{Path, PathBuf};
use std::process::Command;

use mobilenetc::onnx::import::{import_file, ImportOptions};
use mobilenetc::runtime::optim::{Adam, AdamConfig, LrSchedule};
use mobilenetc::train::{TrainConfig, Trainer};

fn python() -> PathBuf {
    std::env::var_os("MOBILENETC_PYTHON").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
}

fn fixture(style: &str, extra: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap().keep();
    let out = dir.join(format!("{style}.onnx"));
    let status = Command::new(python())
        .arg(root.join("tests/py/make_fixture.py"))
        .args([style, out.to_str().unwrap(), "--alpha", "0.25", "--resolution", "32", "--classes", "10", "--seed", "3"])
        .args(extra)
        .status()
        .expect("python for make_fixture.py (set MOBILENETC_PYTHON)");
    assert!(status.success(), "make_fixture.py {style} failed");
    out
}

fn learns(path: &Path) -> Result<(f32, f32), String> {
    let batch = 4;
    let opts = ImportOptions { batch, ..ImportOptions::default() };
    let g = import_file(path, &opts).map_err(|e| format!("import: {e}"))?;
    let mut t = Trainer::new(&g, TrainConfig { batch, threads: 2 }).map_err(|e| e.to_string())?;
    let [c, h, w] = t.image_shape();
    let images: Vec<f32> = (0..batch * c * h * w).map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0).collect();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i * 3 % 10).collect();
    let mut opt = Adam::new(AdamConfig::default(), LrSchedule::constant(3e-3)).unwrap();
    let first = t.train_step(&images, &labels, &mut opt).map_err(|e| e.to_string())?.loss;
    let mut last = first;
    for _ in 0..60 {
        last = t.train_step(&images, &labels, &mut opt).map_err(|e| e.to_string())?.loss;
    }
    Ok((first, last))
}

#[test]
fn pytorch_style_trains() {
    let (first, last) = learns(&fixture("pytorch", &[])).unwrap();
    assert!(last < 0.5 * first, "loss {first} → {last}");
}

#[test]
fn tf2onnx_style_trains_or_names_what_it_cannot() {
    match learns(&fixture("tf2onnx", &["--bn", "keep"])) {
        Ok((first, last)) => {
            eprintln!("tf2onnx style: loss {first} → {last}");
            assert!(last < 0.5 * first, "loss {first} → {last}")
        }
        // tf2onnx's layout glue (an NHWC input transposed, explicit Pad before stride-2 convs)
        // is not differentiated yet: every such op must be named at once.
        Err(e) => {
            eprintln!("tf2onnx style: {e}");
            assert!(e.contains("unsupported op") && e.contains("Pad"), "{e}")
        }
    }
}
