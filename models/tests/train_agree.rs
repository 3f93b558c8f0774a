//! Generated training code (`include_model!(.., train = true)`) against the training executor
//! (`mobilenetc::train::Trainer`) on the same network, data and optimizer.
//!
//! Both run the same training schedule over the same runtime kernels in the same order with
//! the same thread count, so they must agree bit for bit: losses and correct counts at every
//! step, every parameter, gradient and running statistic after 20 steps, and the evaluation
//! loss. The tolerance is therefore zero (compared as f32 bits); any divergence — a step out of
//! order, a wrong offset, a constant baked wrongly — shows at once.

use mobilenetc::checkpoint::Checkpoint;
use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::train::{TrainConfig, Trainer};
use mobilenetc_runtime::optim::{Adam, AdamConfig, LrSchedule, Optimizer, Sgd, SgdConfig};

mod common;
use common::{assert_bits, labelled};

const BATCH: usize = 8;

mobilenetc_macros::include_model!(Tiny, mobilenet_v1(alpha = 0.25, resolution = 32, classes = 10, seed = 0), batch = 8, train = true);

fn config() -> MobileNetConfig {
    MobileNetConfig { alpha: 0.25, resolution: 32, classes: 10, seed: 0, batch: BATCH, ..MobileNetConfig::default() }
}

/// Deterministic images in [-1, 1) and labels.
fn batch(step: u64) -> (Vec<f32>, Vec<u32>) {
    labelled(step.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1), TinyTrainer::IMAGES_LEN, BATCH, 10)
}

fn executor(threads: usize) -> Trainer {
    Trainer::new(&mobilenet_v1(&config()).unwrap(), TrainConfig { batch: BATCH, threads }).unwrap()
}

/// 20 steps of both with fresh optimizers from `make`; returns both for further checks.
fn run_both(make: &dyn Fn() -> Box<dyn Optimizer>, threads: usize) -> (TinyTrainer, Trainer) {
    let mut gen = TinyTrainer::new();
    gen.set_threads(threads);
    let mut exec = executor(threads);
    // Same start: the source model's initializers, by name and shape.
    let start: Vec<_> = exec.parameters();
    assert_eq!(gen.parameters().len(), start.len());
    for ((gn, gs, gd), (en, et)) in gen.parameters().into_iter().zip(&start) {
        assert_eq!((gn, gs), (en.as_str(), &et.shape[..]));
        assert_bits(gd, &et.data, gn);
    }
    let (mut og, mut oe) = (make(), make());
    let mut losses = Vec::new();
    for step in 0..20 {
        let (x, y) = batch(step);
        let sg = gen.train_step(x.as_slice().try_into().unwrap(), y.as_slice().try_into().unwrap(), &mut og).unwrap();
        let se = exec.train_step(&x, &y, &mut oe).unwrap();
        assert_eq!(sg.loss.to_bits(), se.loss.to_bits(), "step {step}: loss generated {} vs executor {}", sg.loss, se.loss);
        assert_eq!(sg.correct, se.correct, "step {step}: correct");
        assert!(sg.loss.is_finite());
        losses.push(sg.loss);
    }
    // Training does something: the loss on a fixed batch moves (not a frozen model).
    assert!(losses.iter().any(|&l| l != losses[0]), "losses never changed: {losses:?}");
    for ((gn, _, gd), (en, et)) in gen.parameters().into_iter().zip(exec.parameters()) {
        assert_eq!(gn, en);
        assert_bits(gd, &et.data, &format!("after 20 steps: {gn}"));
    }
    for ((gn, gg), (en, eg)) in gen.gradients().into_iter().zip(exec.gradients()) {
        assert_eq!(gn, en);
        assert_bits(gg, eg, &format!("last gradient of {gn}"));
    }
    assert_eq!(og.state(), oe.state(), "optimizer states");
    (gen, exec)
}

fn adam() -> Box<dyn Optimizer> {
    Box::new(Adam::new(AdamConfig::default(), LrSchedule::constant(1e-3)).unwrap())
}

fn sgd() -> Box<dyn Optimizer> {
    Box::new(Sgd::new(SgdConfig { momentum: 0.9, ..SgdConfig::default() }, LrSchedule::constant(0.05)).unwrap())
}

fn eval_agrees(gen: &mut TinyTrainer, exec: &mut Trainer) {
    for step in 100..103 {
        let (x, y) = batch(step);
        let before: Vec<Vec<f32>> = gen.parameters().iter().map(|p| p.2.to_vec()).collect();
        let sg = gen.eval_step(x.as_slice().try_into().unwrap(), y.as_slice().try_into().unwrap()).unwrap();
        let se = exec.eval_step(&x, &y).unwrap();
        assert_eq!((sg.loss.to_bits(), sg.correct), (se.loss.to_bits(), se.correct), "eval: generated {sg:?} vs executor {se:?}");
        let after: Vec<Vec<f32>> = gen.parameters().iter().map(|p| p.2.to_vec()).collect();
        assert!(before == after, "eval_step changed the parameters or running statistics");
    }
}

#[test]
fn adam_steps_agree_bit_for_bit() {
    let (mut gen, mut exec) = run_both(&adam, 1);
    eval_agrees(&mut gen, &mut exec);
}

#[test]
fn sgd_momentum_steps_agree_bit_for_bit_on_two_threads() {
    let (mut gen, mut exec) = run_both(&sgd, 2);
    eval_agrees(&mut gen, &mut exec);
}

#[test]
fn bad_labels_are_errors_that_change_nothing() {
    let mut gen = TinyTrainer::new();
    let (x, mut y) = batch(0);
    y[3] = 10;
    let before: Vec<Vec<f32>> = gen.parameters().iter().map(|p| p.2.to_vec()).collect();
    let mut opt = adam();
    let e = gen.train_step(x.as_slice().try_into().unwrap(), y.as_slice().try_into().unwrap(), &mut opt).unwrap_err();
    assert!(e.to_string().contains("label 10 of image 3"), "{e}");
    assert!(gen.eval_step(x.as_slice().try_into().unwrap(), y.as_slice().try_into().unwrap()).is_err());
    let after: Vec<Vec<f32>> = gen.parameters().iter().map(|p| p.2.to_vec()).collect();
    assert!(before == after);
    assert_eq!(opt.steps(), 0);
}

/// Save → load restores the weights and the optimizer exactly (training goes on identically);
/// the file is a `mobilenetc train` checkpoint that the compiler reads (and so `export`), and a
/// checkpoint written by the compiler loads into generated code.
#[test]
fn checkpoints_round_trip_and_match_the_compiler_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.safetensors");
    let mut gen = TinyTrainer::new();
    let mut opt = adam();
    for step in 0..3 {
        let (x, y) = batch(step);
        gen.train_step(x.as_slice().try_into().unwrap(), y.as_slice().try_into().unwrap(), &mut opt).unwrap();
    }
    gen.save(&path, Some(&opt)).unwrap();

    // Resume in a fresh trainer and optimizer: the next step is the same bits.
    let mut back = TinyTrainer::new();
    let state = back.load(&path).unwrap().expect("optimizer state saved");
    let mut opt2 = adam();
    opt2.load_state(&state, &TinyTrainer::slot_sizes()).unwrap();
    let (x, y) = batch(3);
    let a = gen.train_step(x.as_slice().try_into().unwrap(), y.as_slice().try_into().unwrap(), &mut opt).unwrap();
    let b = back.train_step(x.as_slice().try_into().unwrap(), y.as_slice().try_into().unwrap(), &mut opt2).unwrap();
    assert_eq!(a.loss.to_bits(), b.loss.to_bits());
    for ((n, _, p), (_, _, q)) in gen.parameters().into_iter().zip(back.parameters()) {
        assert_bits(p, q, n);
    }

    // The compiler's reader: same tensors, the optimizer state, and a graph for export.
    let c = Checkpoint::load(&path).unwrap();
    let saved = TinyTrainer::new();
    let mut saved = saved;
    saved.load(&path).unwrap();
    assert_eq!(c.tensors.len(), saved.parameters().len());
    assert_eq!(c.trainable, TinyTrainer::PARAMETERS.len());
    for ((cn, ct), (n, shape, data)) in c.tensors.iter().zip(saved.parameters()) {
        assert_eq!((cn.as_str(), &ct.shape[..]), (n, shape));
        assert_bits(&ct.data, data, n);
    }
    assert_eq!(c.optimizer.as_ref().map(|o| o.step), Some(3));
    let mut exec = Trainer::new(&c.graph().unwrap(), TrainConfig { batch: BATCH, threads: 1 }).unwrap();
    let (x, y) = batch(50);
    let se = exec.eval_step(&x, &y).unwrap();
    let sg = saved.eval_step(x.as_slice().try_into().unwrap(), y.as_slice().try_into().unwrap()).unwrap();
    assert_eq!(se.loss.to_bits(), sg.loss.to_bits(), "executor on the checkpoint's graph vs generated code");

    // A checkpoint the compiler writes (from the executor's weights) loads into generated code.
    let mut c2 = c.clone();
    c2.tensors = exec.parameters();
    c2.optimizer = None;
    let path2 = dir.path().join("from_compiler.safetensors");
    c2.save(&path2).unwrap();
    let mut fresh = TinyTrainer::new();
    assert_eq!(fresh.load(&path2).unwrap(), None);
    for ((n, _, p), (_, t)) in fresh.parameters().into_iter().zip(&c2.tensors) {
        assert_bits(p, &t.data, n);
    }

    // Another model's file is an error that changes nothing.
    let mut other = c2.clone();
    other.tensors[0].1.shape = vec![other.tensors[0].1.data.len()];
    let path3 = dir.path().join("other.safetensors");
    other.save(&path3).unwrap();
    let e = fresh.load(&path3).unwrap_err().to_string();
    assert!(e.contains("shape"), "{e}");
    let mut renamed = c2.clone();
    renamed.tensors[1].0 = "not_in_the_model".into();
    renamed.save(&path3).unwrap();
    let e = fresh.load(&path3).unwrap_err().to_string();
    assert!(e.contains("has no tensor"), "{e}");
    assert!(fresh.load(dir.path().join("missing.safetensors")).unwrap_err().to_string().contains("missing.safetensors"));
}
