//! Replays the fuzzers' corpus and every crasher they found (fuzz/corpus, fuzz/artifacts)
//! through the same harness the fuzz targets run (`fuzz/src/harness.rs`, included by path so
//! this runs on stable Rust in the normal test suite). Each input must end in `Ok` or a clear
//! `Err` at some stage: a panic fails the test, naming the file.

#[path = "../fuzz/src/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use harness::Reached;
use mobilenetc_e2e::workspace_root;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect()).unwrap_or_default();
    v.sort();
    v
}

/// Runs `f` on every file of the target's corpus and artifacts; returns how far they got.
fn replay(target: &str, f: fn(&[u8]) -> Reached) -> (BTreeMap<Reached, usize>, usize) {
    let fuzz = workspace_root().join("fuzz");
    let mut reached = BTreeMap::new();
    let mut panics = Vec::new();
    let mut crashers = 0;
    for dir in [fuzz.join("corpus").join(target), fuzz.join("artifacts").join(target)] {
        for file in files(&dir) {
            let bytes = std::fs::read(&file).unwrap();
            crashers += dir.ends_with(Path::new("artifacts").join(target)) as usize;
            match std::panic::catch_unwind(|| f(&bytes)) {
                Ok(r) => *reached.entry(r).or_default() += 1,
                Err(_) => panics.push(file.display().to_string()),
            }
        }
    }
    assert!(panics.is_empty(), "{target}: {} input(s) panic:\n{}", panics.len(), panics.join("\n"));
    eprintln!("{target}: {reached:?} ({crashers} former crashers)");
    (reached, crashers)
}

#[test]
fn import_bytes_corpus_and_crashers_replay_without_panic() {
    let (reached, _) = replay("import_bytes", harness::import_bytes);
    assert!(reached.values().sum::<usize>() >= 1, "the import_bytes corpus is empty");
}

#[test]
fn mutated_model_corpus_and_crashers_replay_without_panic() {
    let (reached, _) = replay("mutated_model", harness::mutated);
    // The corpus must reach past the importer, or the fuzzer was not testing the pipeline.
    assert!(reached.get(&Reached::Ran).copied().unwrap_or(0) >= 1, "{reached:?}");
}

#[test]
fn the_seed_model_runs_end_to_end() {
    assert_eq!(harness::mutated(&[]), Reached::Ran);
    assert_eq!(harness::import_bytes(&harness::seed_bytes()), Reached::Ran);
}

/// Writes the seed corpus (run by hand: `cargo test -p mobilenetc-e2e --test fuzz_replay --
/// --ignored write_seeds`): the seed model's bytes for import_bytes and a few mutation
/// programs for mutated_model, each touching one area.
#[test]
#[ignore]
fn write_seeds() {
    let fuzz = workspace_root().join("fuzz/corpus");
    let (bytes, muts) = (fuzz.join("import_bytes"), fuzz.join("mutated_model"));
    std::fs::create_dir_all(&bytes).unwrap();
    std::fs::create_dir_all(&muts).unwrap();
    std::fs::write(bytes.join("seed_mobilenet_like.onnx"), harness::seed_bytes()).unwrap();
    let programs: &[(&str, &[u8])] = &[
        ("seed", &[]),
        ("attr_group", &[0, 3, 4, 1, 2]),
        ("input_dim", &[5, 2, 9]),
        ("op_type", &[3, 4, 10]),
        ("rewire", &[4, 6, 1, 8]),
        ("drop_node", &[8, 5]),
        ("duplicate", &[9, 2]),
        ("cycle", &[10, 0, 5]),
        ("opset", &[12, 4]),
        ("init_dims", &[6, 0, 2, 8, 3]),
    ];
    for (name, p) in programs {
        std::fs::write(muts.join(name), p).unwrap();
    }
}
