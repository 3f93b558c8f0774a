//! Micro-benchmark of the pointwise (matrix product) and depthwise kernels on MobileNet v1
//! 1.0-224's shapes, per ISA. Ignored by default; run in release mode:
//! `cargo test --release -p mobilenetc-runtime --test kernels_bench -- --ignored --nocapture`

mod common;

use std::time::Instant;

use common::*;
use mobilenetc_runtime::kernels::{Act, Conv2d};

/// (best, median) seconds per run of `f` over `reps` timed runs (after a warm-up). The machine
/// is shared, so the best run is the kernel's speed and the median shows the contention.
fn time_secs(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (t[0], t[reps / 2])
}

fn bench_conv(label: &str, cv: Conv2d, threads: usize) {
    let mut r = rng(1);
    let x = rand_vec(&mut r, cv.input_len());
    let packed = cv.pack_weights(&rand_vec(&mut r, cv.weights_len()));
    let bias = rand_vec(&mut r, cv.c_out);
    let mut out = vec![0.0; cv.output_len()];
    let flops = 2.0 * cv.mult_adds() as f64;
    let reps = ((2e9 / flops) as usize).clamp(5, 400);
    for_each_isa(|isa| {
        let (best, median) = time_secs(reps, || cv.run_threads(&x, &packed, &bias, &mut out, threads));
        println!(
            "{label:<28} {isa:<9?} threads {threads}  best {:>8.1} µs {:>6.1} GFLOP/s   median {:>8.1} µs {:>6.1} GFLOP/s",
            best * 1e6,
            flops / best / 1e9,
            median * 1e6,
            flops / median / 1e9
        );
    });
}

#[test]
#[ignore]
fn bench_mobilenet_kernels() {
    let relu6 = Act::RELU6;
    for threads in [1, 2] {
        for (hw, ci, co) in [(112, 32, 64), (56, 64, 128), (56, 128, 128), (28, 128, 256), (28, 256, 256), (14, 256, 512), (14, 512, 512), (7, 512, 1024), (7, 1024, 1024)] {
            let cv = Conv2d::new(1, hw, hw, ci, co, 1, [1, 1], [1, 1], [1, 1], [0; 4], relu6);
            bench_conv(&format!("pw M={} K={ci} N={co}", hw * hw), cv, threads);
        }
        for (hw, c, s) in [(112, 32, 1), (112, 64, 2), (56, 128, 1), (28, 256, 1), (14, 512, 1), (7, 1024, 1)] {
            let cv = Conv2d::new(1, hw, hw, c, c, c, [3, 3], [s, s], [1, 1], [1, 1, 1, 1], relu6);
            bench_conv(&format!("dw {hw}x{hw}x{c} s{s}"), cv, threads);
        }
        let first = Conv2d::new(1, 224, 224, 3, 32, 1, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1], relu6);
        bench_conv("conv1 224x224x3->32 s2", first, threads);
    }
}

/// The few-pixel pointwise layers of a MobileNet at batch 1 (the seed's 2×2 and 1×1 blocks,
/// 1.0-224's 7×7 ones), at 1 and 2 threads (2: split by column panels). Eight copies of the
/// weights are cycled so each run streams its weights from memory, as in a whole inference.
#[test]
#[ignore]
fn bench_few_pixel_pointwise() {
    for (hw, ci, co) in [(1, 1024, 1024), (2, 512, 512), (7, 1024, 1024)] {
        let cv = Conv2d::new(1, hw, hw, ci, co, 1, [1, 1], [1, 1], [1, 1], [0; 4], Act::RELU6);
        let mut r = rng(2);
        let x = rand_vec(&mut r, cv.input_len());
        let packs: Vec<Vec<f32>> = (0..8).map(|_| cv.pack_weights(&rand_vec(&mut r, cv.weights_len()))).collect();
        let bias = rand_vec(&mut r, cv.c_out);
        let mut out = vec![0.0; cv.output_len()];
        for threads in [1, 2, 1, 2] {
            let mut i = 0;
            let (best, median) = time_secs(400, || {
                cv.run_threads(&x, &packs[i % 8], &bias, &mut out, threads);
                i += 1;
            });
            let gbs = (4 * cv.packed_weights_len()) as f64 / 1e9;
            println!("pw {hw}x{hw} {ci}->{co} threads {threads}: best {:>7.1} µs ({:>5.1} GB/s of weights), median {:>7.1} µs ({:>5.1} GB/s)", best * 1e6, gbs / best, median * 1e6, gbs / median);
        }
    }
}
