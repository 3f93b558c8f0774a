//! Time of MobileNet v1 1.0-224's depthwise + pointwise blocks, one thread: the depthwise conv
//! alone, the pointwise conv alone, and the fused pair on one and on two threads, alternating,
//! best of many runs (µs).
//!   cargo run --release -p mobilenetc-runtime --example dwpw_rate [runs]

use std::time::Instant;

use mobilenetc_runtime::kernels::{Act, Conv2d, DwPw};

fn best(runs: usize, mut f: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e6
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let runs = std::env::args().nth(1).map_or(50, |s| s.parse().expect("runs"));
    // Optional: only block `i`, only the fused run (for profiling).
    let only: Option<usize> = std::env::args().nth(2).map(|s| s.parse().expect("block index"));
    // (spatial input size, channels in, channels out, depthwise stride)
    let blocks = [(112, 32, 64, 1), (112, 64, 128, 2), (56, 128, 128, 1), (56, 128, 256, 2), (28, 256, 256, 1), (28, 256, 512, 2), (14, 512, 512, 1), (14, 512, 1024, 2), (7, 1024, 1024, 1)];
    println!("{:<18} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}", "block", "dw µs", "pw µs", "fused µs", "2T µs", "pw GF/s", "fused GF/s");
    for (i, (h, ci, co, s)) in blocks.into_iter().enumerate() {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let dw = Conv2d::new(1, h, h, ci, ci, ci, [3, 3], [s, s], [1, 1], [1, 1, 1, 1], Act::RELU6);
        let pw = Conv2d::new(1, dw.oh, dw.ow, ci, co, 1, [1, 1], [1, 1], [1, 1], [0, 0, 0, 0], Act::RELU6);
        let x: Vec<f32> = (0..dw.input_len()).map(|i| ((i * 7) % 13) as f32 * 0.1 - 0.6).collect();
        let dww = dw.pack_weights(&(0..dw.weights_len()).map(|i| (i % 5) as f32 * 0.1 - 0.2).collect::<Vec<_>>());
        let pww = pw.pack_weights(&(0..pw.weights_len()).map(|i| (i % 11) as f32 * 0.01 - 0.05).collect::<Vec<_>>());
        let (dwb, pwb) = (vec![0.1; ci], vec![0.05; co]);
        let mut mid = vec![0.0; dw.output_len()];
        let mut out = vec![0.0; pw.output_len()];
        let (mut t_dw, mut t_pw, mut t_f, mut t_f2) = (f64::INFINITY, f64::INFINITY, f64::INFINITY, f64::INFINITY);
        let f = DwPw { dw, pw };
        if only.is_some() {
            t_f = best(runs, || f.run_threads(&x, &dww, &dwb, &pww, &pwb, &mut out, 1));
            println!("{h}² {ci}→{co} s{s}: fused {t_f:.1} µs");
            continue;
        }
        for _ in 0..5 {
            t_dw = t_dw.min(best(runs / 5 + 1, || dw.run(&x, &dww, &dwb, &mut mid)));
            t_pw = t_pw.min(best(runs / 5 + 1, || pw.run(&mid, &pww, &pwb, &mut out)));
            t_f = t_f.min(best(runs / 5 + 1, || f.run_threads(&x, &dww, &dwb, &pww, &pwb, &mut out, 1)));
            t_f2 = t_f2.min(best(runs / 5 + 1, || f.run_threads(&x, &dww, &dwb, &pww, &pwb, &mut out, 2)));
        }
        let flops = 2.0 * (pw.mult_adds() + dw.mult_adds()) as f64;
        println!("{:<18} {t_dw:>8.1} {t_pw:>8.1} {t_f:>8.1} {t_f2:>8.1} {:>8.1} {:>9.1}", format!("{h}² {ci}→{co} s{s}"), 2.0 * pw.mult_adds() as f64 / t_pw / 1e3, flops / t_f / 1e3);
    }
}
