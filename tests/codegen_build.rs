//! `mobilenetc build`: the generated crate (depending only on mobilenetc-runtime) compiles with
//! cargo, its generated main prints the top-5 classes, and the generated models agree with
//! onnxruntime on the PyTorch- and tf2onnx-style fixtures: |ours − ref| ≤ 1e-4 · max(1, |ref|).

use std::path::Path;
use std::process::Command;

use mobilenetc::cli::build;
use mobilenetc_e2e::{fixture, onnxruntime_run, test_input, workspace_root};
use mobilenetc_runtime::npy;

fn assert_within(ours: &[f32], reference: &[f32], what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}: lengths");
    for (i, (&o, &r)) in ours.iter().zip(reference).enumerate() {
        assert!((o - r).abs() <= 1e-4 * r.abs().max(1.0), "{what}: element {i}: generated {o} vs onnxruntime {r}");
    }
}

fn build(model: &Path, out: &Path, name: &str, batch: u64, krate: bool) {
    let args = build::Args {
        file: model.to_path_buf(),
        out: out.to_path_buf(),
        name: Some(name.into()),
        batch: Some(batch),
        krate,
        runtime_path: krate.then(|| workspace_root().join("runtime")),
        limit: Default::default(),
    };
    build::run(args).unwrap_or_else(|e| panic!("mobilenetc build {}: {e}", model.display()));
}

/// A binary beside the generated main that writes each model's whole output as .npy.
const FULL_RS: &str = r#"
#[path = "../tf_net.rs"]
mod tf_net;
#[path = "../torch_net.rs"]
mod torch_net;

use mobilenetc_runtime::npy;
use std::path::Path;

fn main() {
    let dir = std::env::args().nth(1).expect("directory");
    let dir = Path::new(&dir);
    let x = npy::read(&dir.join("tf_in.npy")).expect("tf input");
    let mut tf = tf_net::TfNet::new();
    let y = tf.try_infer(&x.data).expect("tf length");
    npy::write(&dir.join("tf_out.npy"), &tf_net::TfNet::OUTPUT_SHAPE, y).expect("write");
    let x = npy::read(&dir.join("torch_in.npy")).expect("torch input");
    let mut torch = torch_net::TorchNet::new();
    let y = torch.infer(x.data.as_slice().try_into().expect("torch length"));
    npy::write(&dir.join("torch_out.npy"), &torch_net::TorchNet::OUTPUT_SHAPE, y).expect("write");
}
"#;

#[test]
fn built_crate_compiles_runs_and_matches_onnxruntime() {
    let tf = fixture("tf2onnx", &["--alpha", "0.25", "--resolution", "128", "--classes", "10"]);
    let torch = fixture("pytorch", &["--alpha", "0.5", "--resolution", "96", "--classes", "12"]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let krate = tmp.path().join("tf-net");
    build(&tf, &krate, "TfNet", 1, true);
    // The same crate also gets the PyTorch-style model as a plain module, compiled for batch 2.
    build(&torch, &krate.join("src"), "TorchNet", 2, false);
    std::fs::create_dir_all(krate.join("src/bin")).expect("bin dir");
    std::fs::write(krate.join("src/bin/full.rs"), FULL_RS).expect("write full.rs");

    let tf_x = test_input(128 * 128 * 3, 5);
    let torch_x = test_input(2 * 3 * 96 * 96, 6);
    npy::write(&tmp.path().join("tf_in.npy"), &[1, 128, 128, 3], &tf_x).expect("npy");
    npy::write(&tmp.path().join("torch_in.npy"), &[2, 3, 96, 96], &torch_x).expect("npy");

    // A target directory of its own: the outer cargo holds the workspace's build lock.
    let target = workspace_root().join("target/codegen-crates");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--bins", "--manifest-path"])
        .arg(krate.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the generated crate does not compile");

    let main = Command::new(target.join("debug/tf-net")).arg(tmp.path().join("tf_in.npy")).output().expect("generated main runs");
    let stdout = String::from_utf8_lossy(&main.stdout);
    assert!(main.status.success() && stdout.starts_with("row 0: top-5: "), "generated main: {stdout} {}", String::from_utf8_lossy(&main.stderr));
    let full = Command::new(target.join("debug/full")).arg(tmp.path()).status().expect("full runs");
    assert!(full.success());

    let want = onnxruntime_run(&tf, &[("input_1", vec![1, 128, 128, 3], tf_x)]);
    let got = npy::read(&tmp.path().join("tf_out.npy")).expect("tf output");
    assert_eq!(got.shape, want[0].1);
    assert_within(&got.data, &want[0].2, "tf2onnx-style (generated)");
    // The main's top-1 is onnxruntime's top-1.
    let best = (0..want[0].2.len()).max_by(|&a, &b| want[0].2[a].total_cmp(&want[0].2[b])).expect("classes");
    assert!(stdout.starts_with(&format!("row 0: top-5: {best} (")), "{stdout}");

    let want = onnxruntime_run(&torch, &[("input", vec![2, 3, 96, 96], torch_x)]);
    let got = npy::read(&tmp.path().join("torch_out.npy")).expect("torch output");
    assert_eq!(got.shape, want[0].1);
    assert_within(&got.data, &want[0].2, "pytorch-style batch 2 (generated)");
}
