//! `mobilenetc train` and `mobilenetc export` end to end, as a user runs them: a short run on
//! the shipped Fashion-MNIST sample (α 0.25, 32×32, 256 images) leaves metrics.csv,
//! curves.png, a checkpoint and model.onnx; a run killed mid-write and resumed ends
//! bit-identical to an uninterrupted one; a crash while exporting leaves the old file intact.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mobilenetc::checkpoint::{Checkpoint, CRASH_ENV};
use mobilenetc::cli::train::METRICS_HEADER;

const TINY: &[&str] = &["--alpha", "0.25", "--limit", "256", "--batch-size", "64", "--threads", "2", "--seed", "7"];

fn mobilenetc(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mobilenetc"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("the mobilenetc binary runs")
}

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstderr:\n{err}", out.status.code());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn train(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["train", "--out", dir.to_str().unwrap()];
    args.extend(TINY);
    args.extend(extra);
    mobilenetc(&args, env)
}

/// The rows of metrics.csv without the timing columns (which differ between runs).
fn metric_rows(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    text.lines().skip(1).map(|l| l.split(',').take(5).collect::<Vec<_>>().join(",")).collect()
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().expect("curves.png is a PNG");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).expect("curves.png decodes");
    // Not blank: the figure has dots, lines and text.
    let dark = buf.iter().filter(|&&v| v < 100).count();
    assert!(dark > 1000, "curves.png looks blank ({dark} dark values)");
    (info.width, info.height)
}

fn weights(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let c = Checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
    c.tensors.iter().map(|(n, t)| (n.clone(), t.data.iter().map(|v| v.to_bits()).collect())).collect()
}

fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn short_run_leaves_metrics_curves_checkpoint_and_model() {
    let tmp = scratch();
    let dir = tmp.path().join("run");
    let out = ok(&train(&dir, &["--epochs", "2"], &[]));
    assert!(out.contains("validation accuracy"), "{out}");

    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], METRICS_HEADER);
    assert_eq!(lines[0], "epoch,train_loss,train_acc,val_loss,val_acc,seconds,images_per_second");
    assert_eq!(lines.len(), 3, "{csv}");
    for (i, line) in lines[1..].iter().enumerate() {
        let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        assert_eq!(v.len(), 7);
        assert_eq!(v[0], (i + 1) as f64);
        assert!(v[1] > 0.0 && v[1] < 10.0 && v[3] > 0.0 && v[3].is_finite(), "{line}");
        assert!((0.0..=1.0).contains(&v[2]) && (0.0..=1.0).contains(&v[4]), "{line}");
        assert!(v[5] > 0.0 && v[6] > 0.0, "{line}");
    }
    // It learns: 10 classes start near ln 10 = 2.30; after two epochs of 256 images the
    // training loss is lower than the first epoch's.
    let loss = |l: &str| l.split(',').nth(1).unwrap().parse::<f64>().unwrap();
    assert!(loss(lines[2]) < loss(lines[1]), "{csv}");

    assert_eq!(png_size(&dir.join("curves.png")), (1200, 600));
    let c = Checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!((c.epoch, c.seed, c.history.len()), (2, 7, 2));
    assert!(c.optimizer.as_ref().is_some_and(|o| o.kind == "adam" && o.step == 8), "256 images / 64 = 4 steps per epoch");
    let model = std::fs::read(dir.join("model.onnx")).unwrap();
    let g = mobilenetc::onnx::import::import_bytes(&model, &Default::default()).unwrap();
    // The exported initializers are the checkpoint's tensors.
    for (name, t) in &c.tensors {
        let id = g.tensors.iter().position(|x| &x.name == name).unwrap_or_else(|| panic!("{name} not exported"));
        assert_eq!(g.constants[&id].data, t.data, "{name}");
    }

    // `export` writes the same model from the checkpoint; `--fold-bn` removes every BatchNorm.
    let again = tmp.path().join("again.onnx");
    ok(&mobilenetc(&["export", dir.join("checkpoint.safetensors").to_str().unwrap(), "-o", again.to_str().unwrap()], &[]));
    assert_eq!(std::fs::read(&again).unwrap(), model);
    let folded = tmp.path().join("folded.onnx");
    ok(&mobilenetc(&["export", dir.join("checkpoint.safetensors").to_str().unwrap(), "-o", folded.to_str().unwrap(), "--fold-bn"], &[]));
    let g = mobilenetc::onnx::import::import_file(&folded, &Default::default()).unwrap();
    assert!(g.dag.node_weights().all(|n| n.op.name() != "BatchNormalization"));
}

#[test]
fn killed_run_resumes_bit_identical() {
    let tmp = scratch();
    let whole = tmp.path().join("whole");
    ok(&train(&whole, &["--epochs", "2"], &[]));

    // The same run killed while writing its second checkpoint (after epoch 2): the first
    // epoch's checkpoint must survive intact, and --resume redoes epoch 2.
    let cut = tmp.path().join("cut");
    let crashed = train(&cut, &["--epochs", "2"], &[(CRASH_ENV, "checkpoint.safetensors@2")]);
    assert!(!crashed.status.success(), "the crash hook did not fire");
    let c = Checkpoint::load(&cut.join("checkpoint.safetensors")).expect("the epoch-1 checkpoint is intact");
    assert_eq!(c.epoch, 1);
    assert!(!cut.join("model.onnx").exists());
    assert_eq!(metric_rows(&cut).len(), 1);

    let out = train(&cut, &["--epochs", "2", "--resume"], &[]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming after epoch 1"));
    assert_eq!(metric_rows(&cut), metric_rows(&whole));
    let (a, b) = (weights(&whole), weights(&cut));
    assert_eq!(a.len(), b.len());
    for ((na, wa), (nb, wb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(wa == wb, "{na}: weights differ after resuming");
    }
    assert_eq!(std::fs::read(whole.join("model.onnx")).unwrap(), std::fs::read(cut.join("model.onnx")).unwrap());

    // A finished run resumed with more epochs goes on; fewer or equal just re-exports.
    let out = ok(&train(&cut, &["--resume"], &[]));
    assert!(out.contains("2 epochs"), "{out}");
}

#[test]
fn crash_while_exporting_keeps_the_previous_model() {
    let tmp = scratch();
    let dir = tmp.path().join("run");
    ok(&train(&dir, &["--epochs", "1"], &[]));
    let model = dir.join("model.onnx");
    let before = std::fs::read(&model).unwrap();
    let ckpt = dir.join("checkpoint.safetensors");
    let out = mobilenetc(&["export", ckpt.to_str().unwrap(), "-o", model.to_str().unwrap(), "--fold-bn"], &[(CRASH_ENV, "model.onnx")]);
    assert!(!out.status.success(), "the crash hook did not fire");
    assert_eq!(std::fs::read(&model).unwrap(), before, "model.onnx changed by a crashed export");
    // The half-written temporary file is what a crash leaves; the target is untouched.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().contains(".tmp.")).collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn errors_are_one_line_with_exit_code() {
    let tmp = scratch();
    let dir = tmp.path().join("run");
    let d = dir.to_str().unwrap();
    let (nowhere, missing, none) = (tmp.path().join("nowhere"), tmp.path().join("missing.onnx"), tmp.path().join("none.safetensors"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "--data", nowhere.to_str().unwrap(), "--out", d], "not found"),
        (vec!["train", "--data", "cifar10", "--out", d], "cifar"),
        (vec!["train", "--alpha", "3", "--out", d], "alpha"),
        (vec!["train", "--classes", "5", "--limit", "64", "--out", d], "--classes 10"),
        (vec!["train", missing.to_str().unwrap(), "--out", d], "missing.onnx"),
        (vec!["export", none.to_str().unwrap(), "-o", "x.onnx"], "none.safetensors"),
    ];
    for (args, needle) in cases {
        let out = mobilenetc(&args, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(out.status.code(), Some(1 | 2)), "{args:?}: {:?} {err}", out.status.code());
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: not one line:\n{err}");
        assert!(err.starts_with("error: ") && err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("internal error"), "{args:?}: {err}");
    }
    // A non-checkpoint file.
    let junk = tmp.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint at all").unwrap();
    let out = mobilenetc(&["export", junk.to_str().unwrap(), "-o", tmp.path().join("x.onnx").to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a usable checkpoint"), "{err}");
    // An existing run without --resume.
    let run = tmp.path().join("existing");
    ok(&train(&run, &["--epochs", "1"], &[]));
    let out = train(&run, &["--epochs", "2"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let out = train(&run, &["--epochs", "2", "--resume", "--lr", "0.5"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--lr 0.5"), "{}", String::from_utf8_lossy(&out.stderr));
}
