//! Shared helpers of the end-to-end tests: the Python reference peers (onnxruntime,
//! onnx.checker), exporter-style ONNX fixtures, and tensor comparison.
//!
//! The peers run in the project's venv (`./scripts/setup-venv.sh`). A missing venv is a test
//! *failure*, not a skip: a CI that silently skipped every comparison would prove nothing.
//! Data crosses the process boundary as `.npy` files in a temporary directory.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use mobilenetc_runtime::npy;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The directory of the helper scripts (`tests/py`).
pub fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py")
}

/// The Python interpreter with onnx, onnxruntime and numpy: `$MOBILENETC_PYTHON`, else the
/// workspace's `.venv/bin/python`. Panics (failing the test) when neither exists.
pub fn python() -> PathBuf {
    let p = match std::env::var_os("MOBILENETC_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv/bin/python"),
    };
    if !p.exists() {
        panic!(
            "no Python reference peer at {} (MOBILENETC_PYTHON unset or wrong): \
             run ./scripts/setup-venv.sh",
            p.display()
        );
    }
    p
}

/// Runs a script of `tests/py` (or a script at an absolute path) with `args`.
/// Ok: its stdout. Err: the exit status, stderr and stdout, for the test's failure message.
pub fn run_python<S: AsRef<OsStr>>(script: &str, args: &[S]) -> Result<String, String> {
    let path = if Path::new(script).is_absolute() { PathBuf::from(script) } else { py_dir().join(script) };
    let out = Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| format!("could not start {} {}: {e}", python().display(), path.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{} failed ({}):\n--- stderr ---\n{}\n--- stdout ---\n{}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end(),
            stdout.trim_end()
        ))
    }
}

/// A named tensor: (name, shape, row-major data).
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Runs `model` in onnxruntime (one thread, all graph optimizations) on `inputs`
/// (name, shape, data) and returns every graph output in graph order. Panics with the peer's
/// message on failure.
pub fn onnxruntime_run(model: &Path, inputs: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<NamedTensor> {
    try_onnxruntime_run(model, inputs).unwrap_or_else(|e| panic!("onnxruntime on {}: {e}", model.display()))
}

/// [`onnxruntime_run`] returning the failure instead of panicking (for tests that expect the
/// peer to refuse a model).
pub fn try_onnxruntime_run(model: &Path, inputs: &[(&str, Vec<usize>, Vec<f32>)]) -> Result<Vec<NamedTensor>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    for (i, (name, shape, data)) in inputs.iter().enumerate() {
        npy::write(&dir.path().join(format!("in{i}.npy")), shape, data)
            .map_err(|e| format!("input {name}: {e}"))?;
    }
    let mut args: Vec<&OsStr> = vec![model.as_os_str(), dir.path().as_os_str()];
    args.extend(inputs.iter().map(|(n, _, _)| OsStr::new(*n)));
    let stdout = run_python("ort_run.py", &args)?;
    let names: Vec<String> = serde_json::from_str(stdout.trim())
        .map_err(|e| format!("ort_run.py printed {stdout:?}, not a JSON list of names: {e}"))?;
    names
        .into_iter()
        .enumerate()
        .map(|(j, name)| {
            let a = npy::read(&dir.path().join(format!("out{j}.npy"))).map_err(|e| format!("output {name}: {e}"))?;
            Ok((name, a.shape, a.data))
        })
        .collect()
}

/// `onnx.checker.check_model(model, full_check=True)`; Err carries the checker's reason.
pub fn onnx_check(model: &Path) -> Result<(), String> {
    run_python("onnx_check.py", &[model]).map(|_| ())
}

/// Where generated fixtures are cached: `<target>/fixtures` (honours `CARGO_TARGET_DIR`).
pub fn fixture_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if !t.is_empty() => {
            let t = PathBuf::from(t);
            if t.is_absolute() { t } else { workspace_root().join(t) }
        }
        _ => workspace_root().join("target"),
    };
    target.join("fixtures")
}

/// FNV-1a: a hash that is the same in every build, for cache keys that outlive a toolchain.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.iter().chain([0xffu8].iter()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// An ONNX model written by `tests/py/make_fixture.py STYLE OUT ARGS...` (`name` is the style:
/// pytorch, tf2onnx, clip-attr, relu6-sub, functions, constant-nodes), e.g.
/// `fixture("tf2onnx", &["--alpha", "0.25", "--resolution", "128"])`.
///
/// Generated once into [`fixture_dir`], keyed by name, args and the script's own text (so an
/// edited script regenerates). Safe under parallel tests: one generation per key per process,
/// and the script writes a temporary file then renames it, so concurrent processes each see
/// either nothing or a whole file. Beside the model is `<file>.json` ([`fixture_meta`]).
/// Panics with the script's message if it fails (it checks the model with onnx.checker and
/// onnxruntime itself).
pub fn fixture(name: &str, args: &[&str]) -> PathBuf {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<Mutex<()>>>>> = OnceLock::new();
    let script = py_dir().join("make_fixture.py");
    let text = std::fs::read(&script).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let mut parts: Vec<&[u8]> = vec![&text, name.as_bytes()];
    parts.extend(args.iter().map(|a| a.as_bytes()));
    let key = format!("{name}-{:016x}", fnv1a(&parts));
    let path = fixture_dir().join(format!("{key}.onnx"));

    let lock = {
        let mut locks = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(key.clone()).or_default().clone()
    };
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(fixture_dir()).unwrap_or_else(|e| panic!("{}: {e}", fixture_dir().display()));
    let mut full: Vec<&OsStr> = vec![OsStr::new(name), path.as_os_str()];
    full.extend(args.iter().map(OsStr::new));
    if let Err(e) = run_python("make_fixture.py", &full) {
        panic!("fixture {name} {args:?}: {e}");
    }
    assert!(path.exists(), "make_fixture.py succeeded but wrote no {}", path.display());
    path
}

/// The metadata `make_fixture.py` writes beside a fixture (input/output names and shapes,
/// layout, conv/BN layer counts, folded BN channels).
pub fn fixture_meta(model: &Path) -> serde_json::Value {
    let p = PathBuf::from(format!("{}.json", model.display()));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Deterministic test data in [-1, 1) (xorshift), so failures reproduce without a seed file.
pub fn test_input(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// The outcome of comparing two tensors element by element.
#[derive(Clone, Debug, PartialEq)]
pub struct Closeness {
    /// Elements outside `atol + rtol * |reference|` (NaN on either side counts as outside).
    pub violations: usize,
    /// The element whose error exceeds its tolerance the most (or, when none does, the one
    /// closest to its tolerance): (index, ours, reference).
    pub worst: Option<(usize, f32, f32)>,
    pub max_abs_err: f32,
}

/// Compares without panicking; see [`assert_close`].
pub fn closeness(ours: &[f32], reference: &[f32], rtol: f32, atol: f32) -> Closeness {
    let mut c = Closeness { violations: 0, worst: None, max_abs_err: 0.0 };
    let mut worst_ratio = f32::NEG_INFINITY;
    for (i, (&a, &b)) in ours.iter().zip(reference).enumerate() {
        let err = (a - b).abs();
        let tol = atol + rtol * b.abs();
        // Equal infinities (or equal values) are exact; any NaN is the worst possible.
        let ratio = if a == b {
            0.0
        } else if err.is_nan() {
            f32::INFINITY
        } else {
            err / tol.max(f32::MIN_POSITIVE)
        };
        // An infinite tolerance (reference ±inf) must not accept the opposite infinity.
        if !(a == b || (err.is_finite() && err <= tol)) {
            c.violations += 1;
        }
        if err.is_finite() {
            c.max_abs_err = c.max_abs_err.max(err);
        } else if a != b {
            c.max_abs_err = f32::INFINITY;
        }
        if ratio > worst_ratio {
            worst_ratio = ratio;
            c.worst = Some((i, a, b));
        }
    }
    c
}

/// Asserts `|ours - reference| <= atol + rtol * |reference|` for every element (and equal
/// lengths); the failure names the worst element, its index, both values and the count of
/// elements out of tolerance.
#[track_caller]
pub fn assert_close(ours: &[f32], reference: &[f32], rtol: f32, atol: f32) {
    assert_eq!(ours.len(), reference.len(), "length differs: ours {} vs reference {}", ours.len(), reference.len());
    let c = closeness(ours, reference, rtol, atol);
    if c.violations > 0 {
        let (i, a, b) = c.worst.expect("a violation has a worst element");
        panic!(
            "{} of {} elements differ beyond atol {atol:e} + rtol {rtol:e}·|ref|; worst at index {i}: \
             ours {a:e} vs reference {b:e} (|diff| {:e}, allowed {:e}); max |diff| {:e}",
            c.violations,
            ours.len(),
            (a - b).abs(),
            atol + rtol * b.abs(),
            c.max_abs_err
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closeness_finds_the_worst_element() {
        let r = [1.0, 2.0, 3.0, 100.0];
        let o = [1.0, 2.001, 3.1, 100.05];
        let c = closeness(&o, &r, 1e-3, 1e-3);
        // 3.1 vs 3.0 exceeds 0.004 by far; 100.05 is within 0.101; 2.001 within 0.003.
        assert_eq!(c.violations, 1);
        assert_eq!(c.worst, Some((2, 3.1, 3.0)));
        assert!((c.max_abs_err - 0.1).abs() < 1e-5);
        assert_close(&r, &r, 0.0, 0.0);
    }

    #[test]
    fn nan_and_infinities() {
        assert_eq!(closeness(&[f32::NAN], &[1.0], 1.0, 1.0).violations, 1);
        assert_eq!(closeness(&[1.0], &[f32::NAN], 1.0, 1.0).violations, 1);
        assert_eq!(closeness(&[f32::INFINITY], &[f32::INFINITY], 0.0, 0.0).violations, 0);
        assert_eq!(closeness(&[f32::INFINITY], &[f32::NEG_INFINITY], 1.0, 1.0).violations, 1);
    }

    #[test]
    #[should_panic(expected = "worst at index 1")]
    fn assert_close_reports_index() {
        assert_close(&[0.0, 5.0, 0.1], &[0.0, 1.0, 0.0], 0.0, 0.5);
    }

    #[test]
    #[should_panic(expected = "length differs")]
    fn assert_close_checks_length() {
        assert_close(&[0.0], &[0.0, 1.0], 0.0, 0.5);
    }

    #[test]
    fn test_input_is_deterministic_and_spread() {
        let a = test_input(1000, 3);
        assert_eq!(a, test_input(1000, 3));
        assert_ne!(a, test_input(1000, 4));
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
        let mean = a.iter().sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.1, "mean {mean}");
    }

    #[test]
    fn fnv_is_stable() {
        // Fixed value: a changed hash would silently orphan every cached fixture.
        assert_eq!(fnv1a(&[b"a"]), fnv1a(&[b"a"]));
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
    }

    /// The peer round trip: our .npy in, onnxruntime, numpy's .npy back. The pytorch-style
    /// seed network at 32×32 with 10 classes gives logits [2, 10] that depend on the input.
    #[test]
    fn onnxruntime_runs_a_fixture() {
        let model = fixture("pytorch", &["--resolution", "32", "--classes", "10", "--seed", "7"]);
        let meta = fixture_meta(&model);
        assert_eq!(meta["input"]["name"], "input");
        assert_eq!(meta["conv_layers"], 27);
        let x = test_input(2 * 3 * 32 * 32, 1);
        let out = onnxruntime_run(&model, &[("input", vec![2, 3, 32, 32], x.clone())]);
        assert_eq!(out.len(), 1);
        let (name, shape, y) = &out[0];
        assert_eq!((name.as_str(), shape.as_slice()), ("output", &[2usize, 10][..]));
        assert!(y.iter().all(|v| v.is_finite()));
        assert!(closeness(&y[..10], &y[10..], 0.0, 1e-4).violations > 0, "output ignores the input: {y:?}");
        // Same input, same answer (one thread, deterministic).
        let again = onnxruntime_run(&model, &[("input", vec![2, 3, 32, 32], x)]);
        assert_eq!(&again[0].2, y);
        // A cached fixture is not regenerated.
        let t0 = std::fs::metadata(&model).unwrap().modified().unwrap();
        let model2 = fixture("pytorch", &["--resolution", "32", "--classes", "10", "--seed", "7"]);
        assert_eq!(model, model2);
        assert_eq!(std::fs::metadata(&model2).unwrap().modified().unwrap(), t0);
    }

    #[test]
    fn peers_refuse_bad_models_and_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.onnx");
        std::fs::write(&bad, b"not a protobuf").unwrap();
        let e = onnx_check(&bad).unwrap_err();
        assert!(e.contains("bad.onnx"), "{e}");
        let model = fixture("pytorch", &["--resolution", "32", "--classes", "10", "--seed", "7"]);
        onnx_check(&model).unwrap();
        let e = try_onnxruntime_run(&model, &[("wrong_name", vec![1, 3, 32, 32], vec![0.0; 3 * 32 * 32])]).unwrap_err();
        assert!(e.contains("wrong_name"), "{e}");
    }

    #[test]
    fn fixtures_run_in_parallel() {
        // Several threads asking for the same new fixture get one whole file.
        let seed = format!("{}", std::process::id() % 1000 + 1000);
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3)
                .map(|_| s.spawn(|| fixture("relu6-sub", &["--resolution", "32", "--classes", "3", "--seed", &seed, "--alpha", "0.25"])))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(paths.windows(2).all(|w| w[0] == w[1]));
        onnx_check(&paths[0]).unwrap();
        // The seed makes this key new on every run; do not let them pile up in target/.
        let _ = std::fs::remove_file(format!("{}.json", paths[0].display()));
        let _ = std::fs::remove_file(&paths[0]);
    }
}
