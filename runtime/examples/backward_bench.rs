//! Per-layer timing of the training kernels on the seed network's shapes (MobileNet v1 α 1.0,
//! 32×32 input, batch 128): forward pointwise conv, its input and weight gradients, and
//! training-mode BatchNorm forward / backward.
//! `cargo run --release -p mobilenetc-runtime --example backward_bench -- [threads] [reps]`
//! (on one thread the times are the thread's CPU time, steadier on a shared machine).

use std::time::Instant;

use mobilenetc_runtime::kernels::backward::batchnorm::BatchNormTrain;
use mobilenetc_runtime::kernels::backward::conv as conv_bwd;
use mobilenetc_runtime::kernels::{Act, Conv2d};

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::thread_cpu;

/// Best of `reps` runs in ms: thread CPU time on one thread, wall time otherwise.
fn time(reps: usize, cpu: bool, mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let (w0, c0) = (Instant::now(), thread_cpu());
        f();
        let t = if cpu { thread_cpu() - c0 } else { w0.elapsed().as_secs_f64() };
        best = best.min(t);
    }
    best * 1e3
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let threads = args.first().copied().unwrap_or(2);
    let reps = args.get(1).copied().unwrap_or(5);
    let n = 128;
    let cpu = threads == 1;
    // (spatial, c_in, c_out) of every pointwise conv.
    let layers = [(16, 32, 64), (8, 64, 128), (8, 128, 128), (4, 128, 256), (4, 256, 256), (2, 256, 512), (2, 512, 512), (1, 512, 1024), (1, 1024, 1024)];
    let counts = [1, 1, 1, 1, 1, 1, 5, 1, 1];
    let mut tot = [0.0f64; 5];
    println!("{:>14} {:>9} {:>9} {:>9} {:>9} {:>9}", "layer", "fwd ms", "dx ms", "dw ms", "bn f ms", "bn b ms");
    for (&(s, ci, co), &cnt) in layers.iter().zip(&counts) {
        let cv = Conv2d::new(n, s, s, ci, co, 1, [1, 1], [1, 1], [1, 1], [0; 4], Act::None);
        let x: Vec<f32> = (0..cv.input_len()).map(|i| ((i * 7919) % 255) as f32 / 255.0 - 0.5).collect();
        let w: Vec<f32> = (0..cv.weights_len()).map(|i| ((i * 104_729) % 255) as f32 / 2550.0 - 0.05).collect();
        let dy: Vec<f32> = (0..cv.output_len()).map(|i| ((i * 31) % 255) as f32 / 255.0 - 0.5).collect();
        let packed = conv_bwd::pack_forward_weights(&cv, &w);
        let bias = vec![0.0; co];
        let mut y = vec![0.0; cv.output_len()];
        let mut dx = vec![0.0; cv.input_len()];
        let mut dw = vec![0.0; cv.weights_len()];
        let f = time(reps, cpu, || cv.run_threads(&x, &packed, &bias, &mut y, threads));
        let gx = time(reps, cpu, || conv_bwd::input_grad(&cv, &dy, &w, &mut dx, threads));
        let gw = time(reps, cpu, || conv_bwd::weight_grad(&cv, &x, &dy, &mut dw, threads));
        let bn = BatchNormTrain { pixels: n * s * s, c: co, eps: 1e-3, act: Act::Clip { min: 0.0, max: 6.0 } };
        let (sc, bi) = (vec![1.0; co], vec![0.1; co]);
        let (mut mean, mut invstd, mut var) = (vec![0.0; co], vec![0.0; co], vec![0.0; co]);
        let bf = time(reps, cpu, || bn.forward(&dy, &sc, &bi, &mut y, &mut mean, &mut invstd, &mut var, threads));
        let mut d = dy.clone();
        let (mut ds, mut db) = (vec![0.0; co], vec![0.0; co]);
        let bb = time(reps, cpu, || {
            d.copy_from_slice(&dy);
            bn.backward(&dy, &sc, &bi, &mean, &invstd, &mut d, &mut ds, &mut db, threads)
        });
        let row = [f, gx, gw, bf, bb];
        for (t, r) in tot.iter_mut().zip(row) {
            *t += r * cnt as f64;
        }
        println!("{:>14} {f:>9.3} {gx:>9.3} {gw:>9.3} {bf:>9.3} {bb:>9.3}", format!("{s}x{s} {ci}>{co} x{cnt}"));
    }
    println!("{:>14} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}", "total", tot[0], tot[1], tot[2], tot[3], tot[4]);
}
