//! A process killed while exporting leaves the previous model intact.
//!
//! The test binary re-runs itself as the exporting process (the test `child_export` does
//! `mobilenetc export CHECKPOINT -o model.onnx`'s work, `cli::export::run`, when
//! `EXPORT_CHILD_CHECKPOINT` is set), with one of the write hooks of `checkpoint::write_file`:
//!
//! - `MOBILENETC_PAUSE_WHILE_WRITING=model.onnx`: the child writes half of the new model to its
//!   temporary file, says so on stderr and waits; the test checks the target is still the old
//!   file at that moment, then kills the child with SIGKILL (`Child::kill`);
//! - `MOBILENETC_CRASH_WHILE_WRITING=model.onnx`: the child aborts at the same point.
//!
//! After either, model.onnx must be byte-identical to the previous export, still load, and
//! the only trace of the dead writer is a hidden `.model.onnx.tmp.<pid>.<n>` file (never a file
//! at or named like the target). A later export then replaces the file as usual. A writer that
//! fails (an I/O error instead of a kill) leaves the target intact and no temporary file.

mod export_common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mobilenetc::checkpoint::{Checkpoint, ModelSource, CRASH_ENV, PAUSE_ENV, PAUSE_MARKER};
use mobilenetc::cli::export::{run as export_cli, Args as ExportArgs};
use mobilenetc::graph::mobilenet::MobileNetConfig;
use mobilenetc::onnx::import::import_file;
use mobilenetc::runtime::optim::Optimizer;

use export_common::{fine_tune_with, small_mobilenet};

const CHILD_CHECKPOINT: &str = "EXPORT_CHILD_CHECKPOINT";
const CHILD_OUTPUT: &str = "EXPORT_CHILD_OUTPUT";

/// The exporting process (does nothing in a normal test run).
#[test]
fn child_export() {
    let (Some(ckpt), Some(out)) = (std::env::var_os(CHILD_CHECKPOINT), std::env::var_os(CHILD_OUTPUT)) else { return };
    export_cli(ExportArgs { checkpoint: ckpt.into(), output: out.into(), fold_bn: false }).unwrap();
}

/// Spawns this test binary as the exporting process with `hook` set to `model.onnx`.
fn spawn_child(ckpt: &Path, out: &Path, hook: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child_export", "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_CHECKPOINT, ckpt)
        .env(CHILD_OUTPUT, out)
        .env(hook, "model.onnx")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A checkpoint of the small MobileNet after `steps` training steps.
fn checkpoint(steps: usize) -> Checkpoint {
    let (trainer, opt) = fine_tune_with(&small_mobilenet(), steps);
    Checkpoint {
        model: ModelSource::MobileNet(MobileNetConfig { alpha: 0.25, resolution: 32, classes: 10, ..MobileNetConfig::default() }),
        tensors: trainer.parameters(),
        trainable: trainer.slot_names().len(),
        optimizer: Some(opt.state()),
        epoch: steps as u64,
        seed: 0,
        config: serde_json::json!({}),
        history: vec![],
    }
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// The files of `dir` besides the checkpoints and model.onnx: every one must be a hidden
/// temporary file of model.onnx.
fn assert_only_hidden_temporaries(dir: &Path) -> Vec<PathBuf> {
    let others: Vec<String> = dir_entries(dir).into_iter().filter(|n| !n.ends_with(".safetensors") && n != "model.onnx").collect();
    for n in &others {
        assert!(n.starts_with(".model.onnx.tmp."), "unexpected file {n} beside the target");
    }
    others.iter().map(|n| dir.join(n)).collect()
}

#[test]
fn killed_or_crashed_export_leaves_the_previous_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (old_ckpt, new_ckpt) = (dir.join("old.safetensors"), dir.join("new.safetensors"));
    checkpoint(1).save(&old_ckpt).unwrap();
    checkpoint(2).save(&new_ckpt).unwrap();
    let model = dir.join("model.onnx");
    export_cli(ExportArgs { checkpoint: old_ckpt.clone(), output: model.clone(), fold_bn: false }).unwrap();
    let before = std::fs::read(&model).unwrap();

    for hook in [PAUSE_ENV, CRASH_ENV] {
        let mut child = spawn_child(&new_ckpt, &model, hook);
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        if hook == PAUSE_ENV {
            // Wait until the child is halfway through writing, check, then kill it.
            let mut seen = String::new();
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap() > 0 && !line.contains(PAUSE_MARKER) {
                seen.push_str(&line);
                line.clear();
            }
            assert!(line.contains(PAUSE_MARKER), "the child never paused; its stderr:\n{seen}");
            assert_eq!(std::fs::read(&model).unwrap(), before, "the target changed before the rename");
            let temps = assert_only_hidden_temporaries(dir);
            assert_eq!(temps.len(), 1, "{temps:?}");
            let half = std::fs::metadata(&temps[0]).unwrap().len();
            assert!(half > 0, "the paused child wrote nothing yet");
            child.kill().unwrap();
        }
        let status = child.wait().unwrap();
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        assert!(!status.success(), "{hook}: the child finished the export: {rest}");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            let want = if hook == PAUSE_ENV { 9 } else { 6 }; // SIGKILL, SIGABRT
            assert_eq!(status.signal(), Some(want), "{hook}: {status:?} {rest}");
        }
        assert_eq!(std::fs::read(&model).unwrap(), before, "{hook}: model.onnx changed by a killed export");
        import_file(&model, &Default::default()).expect("the previous model still loads");
        // What the dead writer leaves: one hidden temporary, half of a model.
        let temps = assert_only_hidden_temporaries(dir);
        assert_eq!(temps.len(), 1, "{hook}: {temps:?}");
        assert!(mobilenetc::onnx::import::import_file(&temps[0], &Default::default()).is_err(), "the temporary holds half a model");
        std::fs::remove_file(&temps[0]).unwrap();
    }

    // The next export replaces the file, and leaves nothing else.
    export_cli(ExportArgs { checkpoint: new_ckpt.clone(), output: model.clone(), fold_bn: false }).unwrap();
    let after = std::fs::read(&model).unwrap();
    assert_ne!(after, before, "two checkpoints a training step apart export the same bytes");
    let expected = mobilenetc::export::to_onnx(&Checkpoint::load(&new_ckpt).unwrap().graph().unwrap(), &Default::default()).unwrap();
    assert_eq!(after, prost::Message::encode_to_vec(&expected));
    assert!(assert_only_hidden_temporaries(dir).is_empty());
}

#[test]
fn failing_writer_leaves_the_target_and_no_temporary() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("model.onnx");
    std::fs::write(&target, b"previous model").unwrap();
    let e = mobilenetc::runtime::atomic::write_atomic_with(&target, |f| {
        std::io::Write::write_all(f, b"half of a new")?;
        Err(std::io::Error::other("disk full"))
    })
    .unwrap_err();
    assert_eq!(e.to_string(), "disk full");
    assert_eq!(std::fs::read(&target).unwrap(), b"previous model");
    assert_eq!(dir_entries(tmp.path()), ["model.onnx"]);

    // An export into a directory that does not exist is an error naming the path, not a panic.
    let nowhere = tmp.path().join("no/such/dir/model.onnx");
    let e = mobilenetc::export::export_onnx(&small_mobilenet(), &nowhere, &Default::default()).unwrap_err();
    assert!(e.to_string().contains("no/such/dir"), "{e}");
}
