//! Every backward kernel against central finite differences of an independent f64 reference
//! forward (naive loops), on small shapes chosen to hit the fast paths and their tails.
//!
//! The scalar checked is `L = Σ r ⊙ y` with a fixed random `r`, so `dL/dy = r` is fed to the
//! backward kernel and `dL/dθ` from it is compared, element by element over whole tensors,
//! with `(L(θ + h) − L(θ − h)) / 2h` in f64 (h = 1e-4). Tolerance: |kernel − fd| ≤ 2e-4 ·
//! max(1, max |fd|) (the kernels compute in f32; the f64 difference quotient is exact to
//! ~1e-8 here). Every ISA this CPU supports is checked.

use mobilenetc_runtime::kernels::backward::{activation, batchnorm::BatchNormTrain, conv, dense, matmul, pool};
use mobilenetc_runtime::kernels::isa::{with_isa, Isa};
use mobilenetc_runtime::kernels::{Act, Conv2d, Dense};
use mobilenetc_runtime::loss::softmax_cross_entropy;

/// Deterministic pseudo-random values in [-1, 1).
fn rand_vec(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Rounds a vector to f32 precision (so the f64 reference and the kernels see the same data).
fn r32(v: Vec<f64>) -> Vec<f64> {
    v.iter().map(|&x| x as f32 as f64).collect()
}

const H: f64 = 1e-4;
const TOL: f64 = 2e-4;

/// Finite-difference gradient of `loss` with respect to every element of `theta`.
fn fd(theta: &[f64], mut loss: impl FnMut(&[f64]) -> f64) -> Vec<f64> {
    let mut t = theta.to_vec();
    (0..t.len())
        .map(|i| {
            let orig = t[i];
            t[i] = orig + H;
            let lp = loss(&t);
            t[i] = orig - H;
            let lm = loss(&t);
            t[i] = orig;
            (lp - lm) / (2.0 * H)
        })
        .collect()
}

fn assert_close(what: &str, got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1.0f64, |m, &v| m.max(v.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() <= TOL * scale, "{what}[{i}]: kernel {g} vs finite difference {w} (scale {scale})");
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Naive f64 conv: NHWC x, OIHW w, bias.
fn conv_ref(cv: &Conv2d, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let (cig, cog) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let mut y = vec![0.0; cv.output_len()];
    for n in 0..cv.n {
        for oy in 0..cv.oh {
            for ox in 0..cv.ow {
                for co in 0..cv.c_out {
                    let g = co / cog;
                    let mut s = b[co];
                    for ci in 0..cig {
                        for ky in 0..cv.kh {
                            for kx in 0..cv.kw {
                                let iy = (oy * cv.sh + ky * cv.dh) as isize - cv.pad_top as isize;
                                let ix = (ox * cv.sw + kx * cv.dw) as isize - cv.pad_left as isize;
                                if iy < 0 || ix < 0 || iy as usize >= cv.h || ix as usize >= cv.w {
                                    continue;
                                }
                                let xv = x[((n * cv.h + iy as usize) * cv.w + ix as usize) * cv.c_in + g * cig + ci];
                                s += xv * w[((co * cig + ci) * cv.kh + ky) * cv.kw + kx];
                            }
                        }
                    }
                    y[((n * cv.oh + oy) * cv.ow + ox) * cv.c_out + co] = s;
                }
            }
        }
    }
    y
}

fn check_conv(cv: Conv2d, seed: u64) {
    cv.check().unwrap();
    let x = r32(rand_vec(cv.input_len(), seed));
    let w = r32(rand_vec(cv.weights_len(), seed + 1));
    let b = r32(rand_vec(cv.c_out, seed + 2));
    let r = r32(rand_vec(cv.output_len(), seed + 3));
    let want_dx = fd(&x, |x| dot(&conv_ref(&cv, x, &w, &b), &r));
    let want_dw = fd(&w, |w| dot(&conv_ref(&cv, &x, w, &b), &r));
    let want_db = fd(&b, |b| dot(&conv_ref(&cv, &x, &w, b), &r));
    let (xf, wf, rf) = (f32s(&x), f32s(&w), f32s(&r));
    for isa in Isa::ALL {
        for threads in [1, 3] {
            with_isa(isa, || {
                let what = format!("{:?} path, {isa:?}, {threads} threads", cv.path());
                let mut dx = vec![f32::NAN; cv.input_len()];
                conv::input_grad(&cv, &rf, &wf, &mut dx, threads);
                assert_close(&format!("conv dx ({what})"), &dx, &want_dx);
                let mut dw = vec![f32::NAN; cv.weights_len()];
                conv::weight_grad(&cv, &xf, &rf, &mut dw, threads);
                assert_close(&format!("conv dw ({what})"), &dw, &want_dw);
                let mut db = vec![f32::NAN; cv.c_out];
                conv::bias_grad(&rf, cv.c_out, &mut db);
                assert_close(&format!("conv db ({what})"), &db, &want_db);
            });
        }
    }
}

#[test]
fn conv_pointwise() {
    check_conv(Conv2d::new(2, 3, 4, 5, 7, 1, [1, 1], [1, 1], [1, 1], [0; 4], Act::None), 10);
    // Wide enough for full 12×32 register tiles (k chunks: see at_b_matches_naive_over_chunks).
    check_conv(Conv2d::new(2, 5, 5, 33, 40, 1, [1, 1], [1, 1], [1, 1], [0; 4], Act::None), 11);
}

#[test]
fn conv_depthwise_3x3() {
    check_conv(Conv2d::new(2, 5, 6, 19, 19, 19, [3, 3], [1, 1], [1, 1], [1; 4], Act::None), 20);
    check_conv(Conv2d::new(2, 7, 6, 32, 32, 32, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1], Act::None), 21);
    check_conv(Conv2d::new(1, 6, 7, 17, 17, 17, [3, 3], [2, 2], [1, 1], [0, 1, 1, 0], Act::None), 22);
}

/// Depthwise and pointwise gradients give the same bits for any thread count (disjoint
/// outputs, or fixed blocks of images added in order), on every ISA.
#[test]
fn conv_gradients_independent_of_threads() {
    for cv in [Conv2d::new(19, 6, 5, 35, 35, 35, [3, 3], [1, 1], [1, 1], [1; 4], Act::None), Conv2d::new(19, 4, 3, 40, 70, 1, [1, 1], [1, 1], [1, 1], [0; 4], Act::None)] {
        let x = f32s(&rand_vec(cv.input_len(), 70));
        let w = f32s(&rand_vec(cv.weights_len(), 71));
        let r = f32s(&rand_vec(cv.output_len(), 72));
        for isa in Isa::ALL {
            with_isa(isa, || {
                let run = |threads: usize| {
                    let (mut dx, mut dw) = (vec![0.0; cv.input_len()], vec![0.0; cv.weights_len()]);
                    conv::input_grad(&cv, &r, &w, &mut dx, threads);
                    conv::weight_grad(&cv, &x, &r, &mut dw, threads);
                    dx.into_iter().chain(dw).map(f32::to_bits).collect::<Vec<_>>()
                };
                let one = run(1);
                for threads in [2, 3] {
                    assert!(run(threads) == one, "{:?} path, {isa:?}: {threads} threads differ from 1", cv.path());
                }
            });
        }
    }
}

#[test]
fn conv_general() {
    // The stem: 3×3 stride 2, 3 → 8 channels.
    check_conv(Conv2d::new(2, 8, 7, 3, 8, 1, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1], Act::None), 30);
    // Grouped, rectangular kernel, asymmetric pads, dilation.
    check_conv(Conv2d::new(2, 6, 7, 6, 4, 2, [3, 2], [1, 2], [2, 1], [1, 0, 2, 1], Act::None), 31);
    // Depthwise with a channel multiplier goes through the general path.
    check_conv(Conv2d::new(1, 5, 5, 3, 6, 3, [3, 3], [1, 1], [1, 1], [1; 4], Act::None), 32);
    // Pointwise with stride 2.
    check_conv(Conv2d::new(2, 5, 5, 4, 6, 1, [1, 1], [2, 2], [1, 1], [0; 4], Act::None), 33);
}

fn bn_ref(pixels: usize, c: usize, eps: f64, act: Act, x: &[f64], scale: &[f64], bias: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for ch in 0..c {
        let m = (0..pixels).map(|p| x[p * c + ch]).sum::<f64>() / pixels as f64;
        let v = (0..pixels).map(|p| (x[p * c + ch] - m).powi(2)).sum::<f64>() / pixels as f64;
        for p in 0..pixels {
            let z = (x[p * c + ch] - m) / (v + eps).sqrt() * scale[ch] + bias[ch];
            y[p * c + ch] = match act {
                Act::None => z,
                Act::Relu => z.max(0.0),
                Act::Clip { min, max } => z.max(min as f64).min(max as f64),
            };
        }
    }
    y
}

#[test]
fn batchnorm_training() {
    // 16-channel blocks with and without a tail; several 256-row statistics blocks with a tail.
    for (pixels, c, act, seed) in [(37, 5, Act::None, 40), (600, 19, Act::RELU6, 41), (50, 16, Act::Relu, 42), (700, 35, Act::RELU6, 43)] {
        // (With these spreads about a third of the ReLU6 outputs are clamped, so the mask is
        // exercised on both sides.)
        let eps = 1e-3;
        // Spread the inputs so the clamp at 6 is reached, and shift them off zero mean.
        let x = r32(rand_vec(pixels * c, seed).iter().map(|v| v * 3.0 + 0.5).collect());
        let scale = r32(rand_vec(c, seed + 1).iter().map(|v| v * 4.0).collect());
        let bias = r32(rand_vec(c, seed + 2).iter().map(|v| v * 3.0 + 1.0).collect());
        let bn = BatchNormTrain { pixels, c, eps: eps as f32, act };
        let want_y = bn_ref(pixels, c, eps, act, &x, &scale, &bias);
        // Pre-activations within 1e-3 of a clamp bound get no upstream gradient: there f32 and f64 may
        // disagree on the side of the kink, and a difference step may cross it.
        let near_kink = |y: f64| match act {
            Act::None => false,
            Act::Relu => y.abs() < 1e-3,
            Act::Clip { min, max } => (y - min as f64).abs() < 1e-3 || (y - max as f64).abs() < 1e-3,
        };
        let pre = bn_ref(pixels, c, eps, Act::None, &x, &scale, &bias);
        let r: Vec<f64> = r32(rand_vec(pixels * c, seed + 3)).iter().zip(&pre).map(|(&r, &y)| if near_kink(y) { 0.0 } else { r }).collect();
        let want_dx = fd(&x, |x| dot(&bn_ref(pixels, c, eps, act, x, &scale, &bias), &r));
        let want_ds = fd(&scale, |s| dot(&bn_ref(pixels, c, eps, act, &x, s, &bias), &r));
        let want_db = fd(&bias, |b| dot(&bn_ref(pixels, c, eps, act, &x, &scale, b), &r));
        for isa in Isa::ALL {
            let mut first: Option<Vec<Vec<f32>>> = None;
            for threads in [1, 2, 3] {
                with_isa(isa, || {
                    let (xf, sf, bf) = (f32s(&x), f32s(&scale), f32s(&bias));
                    let mut y = vec![0.0; pixels * c];
                    let (mut mean, mut invstd, mut var) = (vec![0.0; c], vec![0.0; c], vec![0.0; c]);
                    bn.forward(&xf, &sf, &bf, &mut y, &mut mean, &mut invstd, &mut var, threads);
                    let scale_y = want_y.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                    for (i, (&g, &w)) in y.iter().zip(&want_y).enumerate() {
                        assert!((g as f64 - w).abs() <= 1e-5 * scale_y, "bn y[{i}] {g} vs {w} ({isa:?})");
                    }
                    let mut d = f32s(&r);
                    let (mut ds, mut db) = (vec![0.0; c], vec![0.0; c]);
                    bn.backward(&xf, &sf, &bf, &mean, &invstd, &mut d, &mut ds, &mut db, threads);
                    assert_close(&format!("bn dx {act:?} {isa:?}"), &d, &want_dx);
                    assert_close(&format!("bn dscale {act:?} {isa:?}"), &ds, &want_ds);
                    assert_close(&format!("bn dbias {act:?} {isa:?}"), &db, &want_db);
                    // Fixed statistics blocks: the same bits for any thread count.
                    let all = vec![y.clone(), mean.clone(), invstd.clone(), var.clone(), d.clone(), ds.clone(), db.clone()];
                    match &first {
                        None => first = Some(all),
                        Some(f) => assert!(f.iter().flatten().zip(all.iter().flatten()).all(|(a, b)| a.to_bits() == b.to_bits()), "bn {pixels}×{c}: {threads} threads differ from 1 ({isa:?})"),
                    }
                    // Running statistics: ONNX momentum, unbiased variance.
                    let (mut rm, mut rv) = (vec![1.0f32; c], vec![2.0f32; c]);
                    bn.update_running(&mut rm, &mut rv, &mean, &var, 0.9);
                    for ch in 0..c {
                        let m = (0..pixels).map(|p| x[p * c + ch]).sum::<f64>() / pixels as f64;
                        let v = (0..pixels).map(|p| (x[p * c + ch] - m).powi(2)).sum::<f64>() / (pixels - 1) as f64;
                        assert!((rm[ch] as f64 - (0.9 + 0.1 * m)).abs() < 1e-5, "running mean");
                        assert!((rv[ch] as f64 - (1.8 + 0.1 * v)).abs() < 1e-4 * (1.0 + v), "running var {} vs {}", rv[ch], 1.8 + 0.1 * v);
                    }
                });
            }
        }
    }
}

#[test]
fn activations_mask_from_the_output() {
    let x = r32(rand_vec(300, 50).iter().map(|v| v * 8.0).collect());
    let r = r32(rand_vec(300, 51));
    for act in [Act::Relu, Act::RELU6, Act::Clip { min: -1.0, max: 2.5 }] {
        let f = |x: &[f64]| -> Vec<f64> { x.iter().map(|&v| act.apply(v as f32) as f64).collect::<Vec<_>>() };
        // f32 apply is exact for these inputs; the kinks are far from every sample.
        let want = fd(&x, |x| dot(&x.iter().map(|&v| match act { Act::Relu => v.max(0.0), Act::Clip { min, max } => v.max(min as f64).min(max as f64), Act::None => v }).collect::<Vec<_>>(), &r));
        let y = f32s(&f(&x));
        let mut d = f32s(&r);
        activation::act_backward(act, &y, &mut d);
        assert_close(&format!("{act:?}"), &d, &want);
    }
}

#[test]
fn global_average_pool() {
    let (n, hw, c) = (3, 7, 5);
    let x = r32(rand_vec(n * hw * c, 60));
    let r = r32(rand_vec(n * c, 61));
    let gap = |x: &[f64]| -> Vec<f64> {
        let mut y = vec![0.0; n * c];
        for b in 0..n {
            for p in 0..hw {
                for ch in 0..c {
                    y[b * c + ch] += x[(b * hw + p) * c + ch] / hw as f64;
                }
            }
        }
        y
    };
    let want = fd(&x, |x| dot(&gap(x), &r));
    let mut dx = vec![0.0; n * hw * c];
    pool::global_avg_pool_backward(n, hw, c, &f32s(&r), &mut dx);
    assert_close("global average pool dx", &dx, &want);
}

#[test]
fn dense_both_layouts() {
    let (m, k, n) = (4, 37, 11);
    let x = r32(rand_vec(m * k, 70));
    let w = r32(rand_vec(k * n, 71));
    let b = r32(rand_vec(n, 72));
    let r = r32(rand_vec(m * n, 73));
    for trans in [false, true] {
        let fwd = |x: &[f64], w: &[f64], b: &[f64]| -> Vec<f64> {
            let mut y = vec![0.0; m * n];
            for i in 0..m {
                for j in 0..n {
                    y[i * n + j] = b[j] + (0..k).map(|kk| x[i * k + kk] * if trans { w[j * k + kk] } else { w[kk * n + j] }).sum::<f64>();
                }
            }
            y
        };
        let want_dx = fd(&x, |x| dot(&fwd(x, &w, &b), &r));
        let want_dw = fd(&w, |w| dot(&fwd(&x, w, &b), &r));
        let want_db = fd(&b, |b| dot(&fwd(&x, &w, b), &r));
        let d = Dense { m, k, n, act: Act::None };
        for isa in Isa::ALL {
            with_isa(isa, || {
                let mut dx = vec![0.0; m * k];
                dense::input_grad(&d, &f32s(&r), &f32s(&w), trans, &mut dx, 2);
                assert_close(&format!("dense dx trans={trans} {isa:?}"), &dx, &want_dx);
                let mut dw = vec![0.0; k * n];
                dense::weight_grad(&d, &f32s(&x), &f32s(&r), trans, &mut dw, 2);
                assert_close(&format!("dense dw trans={trans} {isa:?}"), &dw, &want_dw);
                let mut db = vec![0.0; n];
                conv::bias_grad(&f32s(&r), n, &mut db);
                assert_close("dense db", &db, &want_db);
            });
        }
    }
}

#[test]
fn at_b_matches_naive_over_chunks() {
    // Several k chunks (with a tail), full 12-row panels and a tail panel, full 32-column tiles,
    // a 16-column tile and a tail; row strides wider than the rows (as for a group's slice).
    for (k, m, n, lda, ldb) in [(matmul::KC * 2 + 37, 13, 35, 13, 35), (matmul::chunk_rows(70) * 3 + 5, 37, 70, 41, 77), (9, 5, 3, 5, 3)] {
        let a = r32(rand_vec(k * lda, 80));
        let b = r32(rand_vec(k * ldb, 81));
        let mut want = vec![0.0; m * n];
        for kk in 0..k {
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] += a[kk * lda + i] * b[kk * ldb + j];
                }
            }
        }
        for isa in Isa::ALL {
            with_isa(isa, || {
                let mut first: Option<Vec<f32>> = None;
                for threads in [1, 2, 5] {
                    let mut c = vec![f32::NAN; m * n];
                    matmul::at_b(k, m, n, &f32s(&a), lda, &f32s(&b), ldb, &mut c, threads);
                    // f32 sums of up to ~600 products of magnitude ≤ 1: |error| ≤ ~k·2⁻²⁴·Σ|terms|.
                    for (i, (&g, &w)) in c.iter().zip(&want).enumerate() {
                        assert!((g as f64 - w).abs() < 1e-3 * (1.0 + w.abs()), "at_b {k}×{m}×{n} [{i}] {g} vs {w} ({isa:?}, {threads} threads)");
                    }
                    // Row blocks per thread: the same bits for any thread count.
                    match &first {
                        None => first = Some(c),
                        Some(f) => assert!(f.iter().zip(&c).all(|(x, y)| x.to_bits() == y.to_bits()), "at_b {k}×{m}×{n}: {threads} threads differ from 1 ({isa:?})"),
                    }
                }
            });
        }
    }
}

#[test]
fn softmax_cross_entropy_loss_and_gradient() {
    let (batch, classes) = (5, 7);
    let logits = r32(rand_vec(batch * classes, 90).iter().map(|v| v * 5.0).collect());
    let labels: Vec<u32> = vec![0, 6, 3, 3, 1];
    let loss = |z: &[f64]| -> f64 {
        (0..batch)
            .map(|b| {
                let row = &z[b * classes..(b + 1) * classes];
                let m = row.iter().cloned().fold(f64::MIN, f64::max);
                let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                lse - row[labels[b] as usize]
            })
            .sum::<f64>()
            / batch as f64
    };
    let want = fd(&logits, loss);
    let mut d = vec![0.0; batch * classes];
    let stats = softmax_cross_entropy(&f32s(&logits), &labels, classes, Some(&mut d)).unwrap();
    assert!((stats.loss as f64 - loss(&logits)).abs() < 1e-6 * loss(&logits).abs().max(1.0), "loss {} vs {}", stats.loss, loss(&logits));
    assert_close("softmax cross-entropy dlogits", &d, &want);
    let argmax_correct = (0..batch)
        .filter(|&b| {
            let row = &logits[b * classes..(b + 1) * classes];
            let arg = (0..classes).fold(0, |a, j| if row[j] > row[a] { j } else { a });
            arg == labels[b] as usize
        })
        .count();
    assert_eq!(stats.correct, argmax_correct);
    // Large logits neither overflow nor lose the loss.
    let big = [1000.0f32, 0.0, -1000.0];
    let s = softmax_cross_entropy(&big, &[1], 3, None).unwrap();
    assert!((s.loss - 1000.0).abs() < 1e-3 && s.correct == 0, "{s:?}");
    // Bad labels and lengths are errors, not panics.
    assert!(softmax_cross_entropy(&big, &[3], 3, None).is_err());
    assert!(softmax_cross_entropy(&big, &[0, 1], 3, None).is_err());
}

#[test]
fn fast_packing_matches_the_gemm_packing() {
    use mobilenetc_runtime::kernels::gemm;
    // The block-copying packer against the element-wise one, at tight and padded strides.
    for (k, n) in [(1, 1), (5, 16), (17, 33), (40, 7)] {
        for trans in [false, true] {
            for pad in [0, 3] {
                let ld = if trans { k } else { n } + pad;
                let b = f32s(&rand_vec(if trans { n * ld } else { k * ld }, 95));
                let mut out = vec![f32::NAN; gemm::packed_len(k, n)];
                gemm::pack_strided(k, n, &b, ld, trans, &mut out);
                let mut want = vec![f32::NAN; gemm::packed_len(k, n)];
                gemm::pack_into(k, n, |kk, j| if trans { b[j * ld + kk] } else { b[kk * ld + j] }, &mut want);
                assert_eq!(out, want, "k {k} n {n} trans {trans} ld {ld}");
            }
        }
    }
    // The pointwise forward packing equals the conv's own.
    let cv = Conv2d::new(1, 2, 2, 21, 35, 1, [1, 1], [1, 1], [1, 1], [0; 4], Act::None);
    let w = f32s(&rand_vec(cv.weights_len(), 96));
    assert_eq!(conv::pack_forward_weights(&cv, &w), cv.pack_weights(&w));
}
