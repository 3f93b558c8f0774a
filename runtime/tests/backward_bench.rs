//! Timing of the backward kernels against the forward conv on MobileNet's pointwise and
//! depthwise shapes at batch 128, 32×32 input:
//! `cargo test --release -p mobilenetc-runtime --test backward_bench -- --ignored --nocapture`.

use std::time::Instant;

use mobilenetc_runtime::kernels::backward::{batchnorm::BatchNormTrain, conv};
use mobilenetc_runtime::kernels::{Act, Conv2d};

fn time(mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

#[test]
#[ignore = "benchmark: run in release"]
fn pointwise_and_depthwise_shapes() {
    let threads = 2;
    for (hw, cin, cout, groups) in [(16, 32, 64, 1), (8, 128, 128, 1), (2, 512, 512, 1), (1, 1024, 1024, 1), (16, 32, 32, 32), (8, 128, 128, 128), (2, 512, 512, 512)] {
        let k = if groups == 1 { 1 } else { 3 };
        let cv = Conv2d::new(128, hw, hw, cin, cout, groups, [k, k], [1, 1], [1, 1], [k / 2; 4], Act::None);
        let x: Vec<f32> = (0..cv.input_len()).map(|i| (i % 13) as f32 * 0.1).collect();
        let w: Vec<f32> = (0..cv.weights_len()).map(|i| (i % 7) as f32 * 0.1).collect();
        let dy: Vec<f32> = (0..cv.output_len()).map(|i| (i % 5) as f32 * 0.1).collect();
        let packed = cv.pack_weights(&w);
        let bias = vec![0.0; cout];
        let mut y = vec![0.0; cv.output_len()];
        let mut dx = vec![0.0; cv.input_len()];
        let mut dw = vec![0.0; cv.weights_len()];
        let flop = 2.0 * cv.mult_adds() as f64;
        let f = time(|| cv.run_threads(&x, &packed, &bias, &mut y, threads));
        let bi = time(|| conv::input_grad(&cv, &dy, &w, &mut dx, threads));
        let bw = time(|| conv::weight_grad(&cv, &x, &dy, &mut dw, threads));
        let bn = BatchNormTrain { pixels: 128 * hw * hw, c: cout, eps: 1e-3, act: Act::RELU6 };
        let (mut m, mut s, mut v) = (vec![0.0; cout], vec![0.0; cout], vec![0.0; cout]);
        let sc = vec![1.0; cout];
        let bnf = time(|| bn.forward(&dy, &sc, &sc, &mut y, &mut m, &mut s, &mut v, threads));
        let mut d = dy.clone();
        let (mut g1, mut g2) = (vec![0.0; cout], vec![0.0; cout]);
        let bnb = time(|| bn.backward(&dy, &sc, &sc, &m, &s, &mut d, &mut g1, &mut g2, threads));
        println!(
            "{hw}x{hw} {cin}->{cout} g{groups}: forward {:.2} ms ({:.0} GFLOP/s), dx {:.2} ms ({:.0}), dw {:.2} ms ({:.0}); BN fwd {:.2} ms, bwd {:.2} ms",
            f * 1e3, flop / f / 1e9, bi * 1e3, flop / bi / 1e9, bw * 1e3, flop / bw / 1e9, bnf * 1e3, bnb * 1e3
        );
    }
}
