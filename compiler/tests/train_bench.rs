//! Training speed of the seed network (MobileNet v1 α 1.0, 32×32×3, 10 classes) at batch 128:
//! `cargo test --release -p mobilenetc --test train_bench -- --ignored --nocapture`
//! (MOBILENETC_BENCH_THREADS, default 2; MOBILENETC_BENCH_STEPS, default 10).
//! Prints images per second and the time per step split by op kind.

use std::time::Instant;

use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::runtime::optim::{Adam, AdamConfig, LrSchedule};
use mobilenetc::train::{TrainConfig, Trainer};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
#[ignore = "benchmark: run in release"]
fn seed_network_batch_128() {
    let batch = 128;
    let threads = env("MOBILENETC_BENCH_THREADS", 2);
    let steps = env("MOBILENETC_BENCH_STEPS", 10);
    let g = mobilenet_v1(&MobileNetConfig { alpha: 1.0, resolution: 32, classes: 10, channels: 3, seed: 0, batch, ..Default::default() }).unwrap();
    let mut t = Trainer::new(&g, TrainConfig { batch, threads }).unwrap();
    let images: Vec<f32> = (0..batch * 3 * 32 * 32).map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5).collect();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let mut opt = Adam::new(AdamConfig::default(), LrSchedule::constant(1e-3)).unwrap();
    for _ in 0..2 {
        t.train_step(&images, &labels, &mut opt).unwrap();
    }
    t.set_profiling(true);
    let mut times = Vec::new();
    for _ in 0..steps {
        let t0 = Instant::now();
        let s = t.train_step(&images, &labels, &mut opt).unwrap();
        times.push(t0.elapsed().as_secs_f64());
        assert!(s.loss.is_finite());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mem = t.memory(batch).unwrap();
    println!("seed network, batch {batch}, {threads} threads: median step {:.1} ms, {:.0} images/s (best {:.0})", median * 1e3, batch as f64 / median, batch as f64 / times[0]);
    println!("arena {:.1} MB (lower bound {:.1} MB, one buffer per tensor {:.1} MB), parameters+gradients+statistics {:.1} MB",
        mem.arena_bytes as f64 / 1e6, mem.lower_bound_bytes as f64 / 1e6, mem.naive_bytes as f64 / 1e6, mem.parameter_bytes as f64 / 1e6);
    println!("{}", t.profile_report());
}
