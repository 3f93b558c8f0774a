//! The trainer on whole networks: an end-to-end gradient check of MobileNet v1 α 0.25 at
//! 32×32 (every layer kind), an overfit run that drives the loss down, determinism, and the
//! parameter API (names, shapes, round trip through `to_graph`).

use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::graph::{Graph, Tensor};
use mobilenetc::runtime::optim::{Adam, AdamConfig, LrSchedule};
use mobilenetc::train::{TrainConfig, Trainer};

fn tiny(batch: usize, seed: u64) -> Graph {
    mobilenet_v1(&MobileNetConfig { alpha: 0.25, resolution: 32, classes: 10, channels: 3, seed, batch, ..Default::default() }).unwrap()
}

/// Deterministic pseudo-random values in [-1, 1).
fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0) as f32
        })
        .collect()
}

fn batch_of(n: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let images = rand_vec(n * 3 * 32 * 32, seed);
    let labels = (0..n as u32).map(|i| (i * 7 + seed as u32) % 10).collect();
    (images, labels)
}

fn param(t: &Trainer, name: &str) -> Tensor {
    t.parameters().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no parameter {name}")).1
}

/// dLoss/dw of sampled weights against central differences of the training-mode loss.
///
/// The loss is evaluated by the trainer's own f32 forward pass (batch statistics), so the
/// difference quotient carries f32 rounding noise of about 1e-6 / h. Per tensor we check
/// (a) the directional derivative along a random direction `d` (unit RMS per element),
/// `(L(w + h·d) − L(w − h·d)) / 2h` against `g·d`, within 2% of `|g|·|d|`, and (b) the three
/// elements with the largest |g|, each within 3% of that element's |g| + 1e-3 · max|g| (at h =
/// 1e-3, where the noise is ~1e-3 and ReLU6 kinks are rarely crossed).
#[test]
fn mobilenet_025_gradient_check_end_to_end() {
    let batch = 3;
    let g = tiny(batch, 1);
    let mut t = Trainer::new(&g, TrainConfig { batch, threads: 1 }).unwrap();
    let (images, labels) = batch_of(batch, 5);
    let base = t.compute_gradients(&images, &labels).unwrap();
    assert!(base.loss.is_finite() && base.loss > 0.0);
    let grads: Vec<(String, Vec<f32>)> = t.gradients().into_iter().map(|(n, g)| (n.to_string(), g.to_vec())).collect();
    // Every layer kind: the stem (general conv), depthwise and pointwise convs early and late,
    // BatchNorm scale and bias, the classifier's weight and bias.
    let names = [
        "conv0_w", "conv0_bn_scale", "conv0_bn_bias", "block1_dw_w", "block1_pw_w", "block2_dw_bn_scale", "block6_pw_w", "block12_dw_w",
        "block13_pw_w", "block13_pw_bn_bias", "fc_w", "fc_b",
    ];
    let h = 1e-3f32;
    for (k, name) in names.iter().enumerate() {
        let grad = &grads.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no gradient for {name}")).1;
        let w0 = param(&t, name);
        let gmax = grad.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        assert!(gmax > 0.0, "{name}: zero gradient");
        let mut loss_at = |w: Vec<f32>| -> f64 {
            t.set_parameters(&[(name.to_string(), Tensor::new(w0.shape.clone(), w))]).unwrap();
            t.train_loss(&images, &labels).unwrap().loss as f64
        };
        // (a) Directional derivative.
        let d = rand_vec(grad.len(), 100 + k as u64);
        let plus: Vec<f32> = w0.data.iter().zip(&d).map(|(w, d)| w + h * d).collect();
        let minus: Vec<f32> = w0.data.iter().zip(&d).map(|(w, d)| w - h * d).collect();
        let fd = (loss_at(plus) - loss_at(minus)) / (2.0 * h as f64);
        let gd: f64 = grad.iter().zip(&d).map(|(g, d)| *g as f64 * *d as f64).sum();
        let norm = grad.iter().map(|g| (*g as f64).powi(2)).sum::<f64>().sqrt() * d.iter().map(|d| (*d as f64).powi(2)).sum::<f64>().sqrt();
        assert!((fd - gd).abs() <= 0.02 * norm, "{name}: directional derivative {gd} vs finite difference {fd} (|g||d| = {norm})");
        // (b) The largest elements.
        let mut idx: Vec<usize> = (0..grad.len()).collect();
        idx.sort_by(|&a, &b| grad[b].abs().total_cmp(&grad[a].abs()));
        for &i in idx.iter().take(3) {
            let mut p = w0.data.clone();
            p[i] += h;
            let mut m = w0.data.clone();
            m[i] -= h;
            let fd = (loss_at(p) - loss_at(m)) / (2.0 * h as f64);
            let gi = grad[i] as f64;
            assert!((fd - gi).abs() <= 0.03 * gi.abs() + 1e-3 * gmax, "{name}[{i}]: gradient {gi} vs finite difference {fd}");
        }
        loss_at(w0.data.clone());
    }
}

fn adam(lr: f32) -> Adam {
    Adam::new(AdamConfig::default(), LrSchedule::constant(lr)).unwrap()
}

/// A few hundred steps on one small batch: the network memorizes it.
#[test]
fn overfits_a_small_batch() {
    let batch = 8;
    let g = tiny(batch, 2);
    let mut t = Trainer::new(&g, TrainConfig { batch, threads: 2 }).unwrap();
    let (images, labels) = batch_of(batch, 9);
    let mut opt = adam(3e-3);
    let first = t.train_step(&images, &labels, &mut opt).unwrap();
    let mut last = first;
    for _ in 0..150 {
        last = t.train_step(&images, &labels, &mut opt).unwrap();
    }
    assert!(first.loss > 1.5, "initial loss {} should be near ln 10", first.loss);
    assert!(last.loss < 0.05 && last.correct == batch, "after 150 steps: {last:?} (first {first:?})");
    // Inference mode (running statistics) agrees after this much training on one batch.
    let eval = t.eval_step(&images, &labels).unwrap();
    assert!(eval.loss.is_finite());
}

/// The same seed and data give bit-identical losses; a different thread count too (kernels
/// split work by output rows or reduce partial sums in a fixed order per thread count, so
/// this checks 1 vs 1 and 2 vs 2).
#[test]
fn same_seed_same_losses() {
    let batch = 4;
    let run = |threads: usize| -> Vec<f32> {
        let g = tiny(batch, 3);
        let mut t = Trainer::new(&g, TrainConfig { batch, threads }).unwrap();
        let mut opt = adam(1e-3);
        (0..5)
            .map(|s| {
                let (images, labels) = batch_of(batch, 20 + s);
                t.train_step(&images, &labels, &mut opt).unwrap().loss
            })
            .collect()
    };
    assert_eq!(run(1), run(1));
    let two = run(2);
    assert_eq!(two, run(2));
    let one = run(1);
    for (a, b) in one.iter().zip(&two) {
        assert!((a - b).abs() < 1e-4 * a.abs().max(1.0), "1 vs 2 threads: {one:?} vs {two:?}");
    }
}

#[test]
fn parameters_round_trip_and_errors() {
    let g = tiny(2, 4);
    let mut t = Trainer::new(&g, TrainConfig { batch: 2, threads: 1 }).unwrap();
    let params = t.parameters();
    // 27 convs (weights), 27 BatchNorms (scale, bias, mean, var), fc weight and bias.
    assert_eq!(t.slot_names().len(), 27 + 27 * 2 + 2);
    assert_eq!(params.len(), 27 + 27 * 4 + 2);
    for (name, tensor) in &params {
        let id = g.tensors.iter().position(|ti| &ti.name == name).unwrap();
        assert_eq!(g.constant(id).unwrap(), tensor, "{name} starts as the graph's initializer");
    }
    let (images, labels) = batch_of(2, 1);
    let mut opt = adam(1e-2);
    t.train_step(&images, &labels, &mut opt).unwrap();
    let trained = t.to_graph();
    let after = t.parameters();
    for (name, tensor) in &after {
        let id = trained.tensors.iter().position(|ti| &ti.name == name).unwrap();
        assert_eq!(trained.constant(id).unwrap(), tensor);
    }
    assert_ne!(param(&t, "conv0_w"), params.iter().find(|(n, _)| n == "conv0_w").unwrap().1, "a step changes the weights");
    assert_ne!(param(&t, "conv0_bn_mean"), params.iter().find(|(n, _)| n == "conv0_bn_mean").unwrap().1, "a training step moves the running mean");
    // A fresh trainer loaded from the trained graph evaluates identically.
    let mut t2 = Trainer::new(&trained, TrainConfig { batch: 2, threads: 1 }).unwrap();
    assert_eq!(t.eval_step(&images, &labels).unwrap(), t2.eval_step(&images, &labels).unwrap());
    // set_parameters: unknown names and wrong shapes are errors and change nothing.
    assert!(t2.set_parameters(&[("nope".into(), Tensor::zeros(vec![1]))]).is_err());
    assert!(t2.set_parameters(&[("fc_b".into(), Tensor::zeros(vec![11]))]).is_err());
    // Bad batches are errors.
    assert!(t.train_step(&images[..10], &labels, &mut opt).is_err());
    assert!(t.train_step(&images, &[0, 10], &mut opt).is_err());
    // A smaller last batch gets its own schedule.
    let s = t.train_step(&images[..3 * 32 * 32], &labels[..1], &mut opt).unwrap();
    assert!(s.loss.is_finite());
}

#[test]
fn memory_is_planned() {
    let g = tiny(8, 1);
    let mut t = Trainer::new(&g, TrainConfig { batch: 8, threads: 1 }).unwrap();
    let m = t.memory(8).unwrap();
    assert!(m.arena_bytes >= m.lower_bound_bytes && m.arena_bytes < m.naive_bytes, "{m:?}");
}
