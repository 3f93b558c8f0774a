//! Training throughput: generated training code (`include_model!(.., train = true)`) against
//! the training executor (`mobilenetc::train::Trainer`) on the seed network (MobileNet v1
//! α = 1.0, 32×32×3, 10 classes) at batch 128, Adam, same data, same thread count.
//!
//! ```text
//! cargo run --release -p mobilenetc-models --example train_bench [-- STEPS [THREADS]]
//! ```
//!
//! Prints images/s of each (median of the per-step times after one warm-up step; the two
//! alternate step by step, each going first every other step, so that load on the machine and
//! cache warmth hit both alike) and their ratio, and
//! checks that both computed the same losses.

use std::time::Instant;

use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::train::{TrainConfig, Trainer};
use mobilenetc_runtime::optim::{Adam, AdamConfig, LrSchedule};

mobilenetc_macros::include_model!(Seed, mobilenet_v1(alpha = 1.0, resolution = 32, classes = 10, seed = 0), batch = 128, train = true);

const BATCH: usize = 128;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let steps: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let threads: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);

    let cfg = MobileNetConfig { alpha: 1.0, resolution: 32, classes: 10, seed: 0, batch: BATCH, ..MobileNetConfig::default() };
    let mut exec = Trainer::new(&mobilenet_v1(&cfg).expect("constructor"), TrainConfig { batch: BATCH, threads }).expect("trainer");
    let mut gen = SeedTrainer::new();
    gen.set_threads(threads);
    let adam = || Adam::new(AdamConfig::default(), LrSchedule::constant(1e-3)).expect("adam");
    let (mut og, mut oe) = (adam(), adam());

    let mut s = 1u64;
    let images: Vec<f32> = (0..SeedTrainer::IMAGES_LEN)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let labels: Vec<u32> = (0..BATCH as u32).map(|i| i * 7 % 10).collect();
    let x: &[f32; SeedTrainer::IMAGES_LEN] = images.as_slice().try_into().expect("length");
    let y: &[u32; BATCH] = labels.as_slice().try_into().expect("length");

    println!("seed network (MobileNet v1 α 1.0, 32×32×3, 10 classes), batch {BATCH}, Adam, {threads} thread(s), {steps} timed steps each");
    let (mut tg, mut te) = (Vec::new(), Vec::new());
    for step in 0..=steps {
        // Which one goes first alternates, so neither always runs on the other's warm caches.
        let mut run_gen = || {
            let t = Instant::now();
            let a = gen.train_step(x, y, &mut og).expect("generated step");
            (a, t.elapsed().as_secs_f64())
        };
        let mut run_exec = || {
            let t = Instant::now();
            let b = exec.train_step(&images, &labels, &mut oe).expect("executor step");
            (b, t.elapsed().as_secs_f64())
        };
        let ((a, g), (b, e)) = if step % 2 == 0 {
            let a = run_gen();
            (a, run_exec())
        } else {
            let b = run_exec();
            (run_gen(), b)
        };
        assert_eq!(a.loss.to_bits(), b.loss.to_bits(), "step {step}: generated loss {} vs executor {}", a.loss, b.loss);
        if step > 0 {
            tg.push(g);
            te.push(e);
        }
    }
    let (g, e) = (BATCH as f64 / median(tg), BATCH as f64 / median(te));
    println!("generated code : {g:8.1} img/s");
    println!("executor       : {e:8.1} img/s");
    println!("ratio generated/executor: {:.3} (losses equal bit for bit at every step)", g / e);
}
