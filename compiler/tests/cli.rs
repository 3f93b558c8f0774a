//! The `mobilenetc` binary: `new`, `inspect` (table and JSON), `--help`, and errors as one line
//! with the right exit code.

use std::path::Path;
use std::process::{Command, Output};

fn mobilenetc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mobilenetc"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exactly one line on stderr, starting with `error: `.
fn assert_one_error_line(o: &Output, code: i32, contains: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err}");
    for c in contains {
        assert!(err.contains(c), "{err:?} lacks {c:?}");
    }
}

#[test]
fn new_then_inspect_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.onnx");
    let f = file.to_str().unwrap();
    let o = mobilenetc(&[
        "new",
        "--alpha",
        "0.25",
        "--resolution",
        "128",
        "--classes",
        "10",
        "--seed",
        "3",
        "-o",
        f,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("m.onnx") && line.contains("mult-adds") && line.contains("params"),
        "{line}"
    );
    assert!(file.is_file());

    let o = mobilenetc(&["inspect", f, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&o)).expect("inspect --json prints JSON");
    // The same network counted in-process.
    let cfg = mobilenetc::graph::mobilenet::MobileNetConfig {
        alpha: 0.25,
        resolution: 128,
        classes: 10,
        seed: 3,
        ..Default::default()
    };
    let r = mobilenetc::inspect::count(&mobilenetc::graph::mobilenet::mobilenet_v1(&cfg).unwrap())
        .unwrap();
    assert_eq!(v["mult_adds"].as_u64(), Some(r.mult_adds));
    assert_eq!(v["params"].as_u64(), Some(r.params));
    assert_eq!(v["bn_params"].as_u64(), Some(r.bn_params));
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), r.layers.len());
    for l in layers {
        for k in ["name", "op", "output_shape", "mult_adds", "params"] {
            assert!(l.get(k).is_some(), "{l} lacks {k}");
        }
    }
    assert_eq!(
        layers.last().unwrap()["output_shape"],
        serde_json::json!([1, 10])
    );

    // The table names every layer and ends with the totals.
    let o = mobilenetc(&["inspect", f, "--dim", "batch=2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(
        table.contains("block13_pw_relu6") && table.lines().last().unwrap().starts_with("total:"),
        "{table}"
    );
}

#[test]
fn inspect_without_a_file_counts_a_constructed_model() {
    let o = mobilenetc(&["inspect", "--json", "--variant", "shallow"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let m = v["mult_adds"].as_u64().unwrap() as f64 / 1e6;
    assert!((m - 307.0).abs() < 1.5, "{m}");
}

#[test]
fn help_on_every_command() {
    for args in [
        &["--help"][..],
        &["new", "--help"],
        &["inspect", "--help"],
        &["help", "new"],
    ] {
        let o = mobilenetc(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let h = stdout(&o);
        assert!(h.contains("Usage:"), "{args:?}: {h}");
    }
    let h = stdout(&mobilenetc(&["new", "--help"]));
    for flag in [
        "--alpha",
        "--resolution",
        "--classes",
        "--channels",
        "--variant",
        "--seed",
        "--batch",
        "--output",
    ] {
        assert!(h.contains(flag), "new --help lacks {flag}");
    }
    assert!(h.contains("full-conv") && h.contains("shallow"));
    let h = stdout(&mobilenetc(&["inspect", "--help"]));
    for flag in ["--json", "--dim", "--batch"] {
        assert!(h.contains(flag), "inspect --help lacks {flag}");
    }
}

#[test]
fn errors_are_one_line_with_exit_codes() {
    // A missing file: exit 1, the file named.
    let o = mobilenetc(&["inspect", "/no/such/model.onnx"]);
    assert_one_error_line(&o, 1, &["/no/such/model.onnx"]);
    // Not an ONNX file.
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, [0xffu8; 64]).unwrap();
    let o = mobilenetc(&["inspect", junk.to_str().unwrap()]);
    assert_one_error_line(&o, 1, &["junk.onnx"]);
    // A bad constructor value: a usage error.
    let out = dir.path().join("x.onnx");
    let o = mobilenetc(&["new", "--alpha", "1.5", "-o", out.to_str().unwrap()]);
    assert_one_error_line(&o, 2, &["alpha"]);
    assert!(!out.exists());
    let o = mobilenetc(&["new", "--resolution", "100", "-o", out.to_str().unwrap()]);
    assert_one_error_line(&o, 2, &["multiple of 32"]);
    // Unwritable output: exit 1, the path named.
    let o = mobilenetc(&[
        "new",
        "--alpha",
        "0.25",
        "--resolution",
        "32",
        "-o",
        "/no/such/dir/m.onnx",
    ]);
    assert_one_error_line(&o, 1, &["/no/such/dir/m.onnx"]);
    // clap usage errors: one line, exit 2.
    assert_one_error_line(&mobilenetc(&["new"]), 2, &["--output"]);
    assert_one_error_line(&mobilenetc(&["new", "--bogus", "-o", "x"]), 2, &["--bogus"]);
    assert_one_error_line(&mobilenetc(&["inspect", "--dim", "batch"]), 2, &["NAME=N"]);
    assert_one_error_line(
        &mobilenetc(&["inspect", "m.onnx", "--alpha", "0.5"]),
        2,
        &["FILE"],
    );
    assert_one_error_line(&mobilenetc(&["frobnicate"]), 2, &["frobnicate"]);
    assert!(!Path::new("x").exists());
}
