//! `mobilenetc train --augment --lr-schedule …`: augmentation and the learning-rate schedule
//! change the run, the same seed gives the same run, and `--resume` refuses a flag that differs
//! from the run it continues.

use std::path::Path;
use std::process::{Command, Output};

const TINY: &[&str] = &["--alpha", "0.25", "--limit", "128", "--batch-size", "32", "--threads", "1", "--seed", "3"];

fn train(dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mobilenetc"))
        .args(["train", "--out", dir.to_str().unwrap()])
        .args(TINY)
        .args(extra)
        .output()
        .expect("the mobilenetc binary runs")
}

/// metrics.csv without the timing columns.
fn losses(dir: &Path, extra: &[&str]) -> String {
    let out = train(dir, &[extra, &["--epochs", "1"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    text.lines().skip(1).map(|l| l.split(',').take(5).collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join("\n")
}

#[test]
fn augmentation_and_schedule_change_the_run_and_repeat_exactly() {
    let t = tempfile::tempdir().unwrap();
    let plain = losses(&t.path().join("plain"), &[]);
    let aug = losses(&t.path().join("aug"), &["--augment"]);
    let aug_again = losses(&t.path().join("aug2"), &["--augment"]);
    let cosine = losses(&t.path().join("cos"), &["--lr-schedule", "cosine"]);
    assert_eq!(aug, aug_again, "the same seed must give the same augmented run");
    assert_ne!(plain, aug, "--augment did not change the training images");
    assert_ne!(plain, cosine, "--lr-schedule cosine did not change the run");
}

#[test]
fn resume_refuses_a_different_augmentation_or_schedule() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("run");
    losses(&dir, &["--augment"]);
    for extra in [&["--resume", "--epochs", "2", "--lr-schedule", "cosine"][..], &["--resume", "--epochs", "2", "--augment", "--lr-schedule", "step"][..]] {
        let out = train(&dir, extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("--lr-schedule"), "{extra:?}: {err}");
    }
}
