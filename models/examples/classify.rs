//! Runs the models compiled into this crate on a deterministic test pattern and prints the
//! top-5 classes and the time per inference.
//!
//! `cargo run --release -p mobilenetc-models --example classify`

use std::time::Instant;

use mobilenetc_models::{MobileNet224, SeedNet};

/// A smooth pattern in [0, 1] (no image needed): the same input every run.
fn pattern(len: usize) -> Vec<f32> {
    (0..len).map(|i| (i as f32 * 0.011).sin() * 0.5 + 0.5).collect()
}

fn top5(scores: &[f32]) -> String {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.iter().take(5).map(|&c| format!("{c} ({:.4})", scores[c])).collect::<Vec<_>>().join(", ")
}

fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let runs = 5;
    let start = Instant::now();
    for _ in 0..runs {
        f();
    }
    start.elapsed().as_secs_f64() * 1e3 / runs as f64
}

fn main() {
    let mut seed = SeedNet::new();
    let x = pattern(SeedNet::INPUT_LEN);
    let input: &[f32; SeedNet::INPUT_LEN] = x.as_slice().try_into().expect("INPUT_LEN values");
    println!(
        "SeedNet {:?} -> {:?}: {:.1} M mult-adds, {:.2} M params, arena {} KiB, weights in place: {}",
        SeedNet::INPUT_SHAPE,
        SeedNet::OUTPUT_SHAPE,
        SeedNet::MULT_ADDS as f64 / 1e6,
        SeedNet::PARAMS as f64 / 1e6,
        SeedNet::ARENA_BYTES / 1024,
        seed.weights().is_static()
    );
    println!("  top-5: {}", top5(seed.infer(input)));
    println!("  {:.3} ms per inference", time(|| {
        seed.infer(input);
    }));

    let mut big = MobileNet224::new();
    let x = pattern(MobileNet224::INPUT_LEN);
    println!(
        "MobileNet224 {:?} -> {:?}: {:.1} M mult-adds, {:.2} M params, arena {} KiB",
        MobileNet224::INPUT_SHAPE,
        MobileNet224::OUTPUT_SHAPE,
        MobileNet224::MULT_ADDS as f64 / 1e6,
        MobileNet224::PARAMS as f64 / 1e6,
        MobileNet224::ARENA_BYTES / 1024
    );
    let out = big.try_infer(&x).expect("INPUT_LEN values");
    println!("  top-5: {}", top5(out));
    println!("  {:.2} ms per inference", time(|| {
        big.try_infer(&x).expect("INPUT_LEN values");
    }));
}
