//! The speed paths against a plain f64 reference on every ISA variant: the direct first-conv
//! kernel (small patches), the AVX-512 depthwise 3×3 register blocks (wide rows so full blocks,
//! partial blocks and borders all run; channel counts with masked tails), and the thread pool
//! (bit-identical for every thread count, concurrent callers, split by rows or by column panels),
//! the first conv reading NCHW, and the fused depthwise + pointwise kernel.

mod common;

use common::*;
use mobilenetc_runtime::kernels::{gemm, Act, Conv2d, ConvPath, DwPw, Head};
use rand::Rng;

/// Reference convolution, NCHW input / OIHW weights / NCHW output, in f64.
fn conv_ref(cv: &Conv2d, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f64> {
    let (cig, cog) = (cv.c_in / cv.groups, cv.c_out / cv.groups);
    let mut out = vec![0.0f64; cv.output_len()];
    for b in 0..cv.n {
        for o in 0..cv.c_out {
            let g = o / cog;
            for oy in 0..cv.oh {
                for ox in 0..cv.ow {
                    let mut s = bias[o] as f64;
                    for i in 0..cig {
                        for ky in 0..cv.kh {
                            for kx in 0..cv.kw {
                                let iy = (oy * cv.sh + ky * cv.dh) as isize - cv.pad_top as isize;
                                let ix = (ox * cv.sw + kx * cv.dw) as isize - cv.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= cv.h as isize || ix >= cv.w as isize {
                                    continue;
                                }
                                let xv = x[((b * cv.c_in + g * cig + i) * cv.h + iy as usize) * cv.w + ix as usize] as f64;
                                s += xv * w[((o * cig + i) * cv.kh + ky) * cv.kw + kx] as f64;
                            }
                        }
                    }
                    out[((b * cv.c_out + o) * cv.oh + oy) * cv.ow + ox] = act64(cv.act, s);
                }
            }
        }
    }
    out
}

/// One conv on every ISA against the reference, and with 2, 3 and 5 threads bit-identical to
/// one thread.
fn check(cv: Conv2d, seed: u64) {
    cv.check().unwrap_or_else(|e| panic!("{e}"));
    let mut r = rng(seed);
    let x = rand_vec(&mut r, cv.input_len());
    let w = rand_vec(&mut r, cv.weights_len());
    let bias = rand_vec(&mut r, cv.c_out);
    let reference = conv_ref(&cv, &x, &w, &bias);
    let xh = to_nhwc(&x, cv.n, cv.c_in, cv.h, cv.w);
    let packed = cv.pack_weights(&w);
    let k = cv.c_in / cv.groups * cv.kh * cv.kw;
    for_each_isa(|isa| {
        let mut out = vec![f32::NAN; cv.output_len()];
        cv.run(&xh, &packed, &bias, &mut out);
        let ours = to_nchw(&out, cv.n, cv.c_out, cv.oh, cv.ow);
        assert_close(&format!("{cv:?} on {isa:?}"), &ours, &reference, k);
        for threads in [2, 3, 5] {
            let mut out_t = vec![f32::NAN; cv.output_len()];
            cv.run_threads(&xh, &packed, &bias, &mut out_t, threads);
            assert!(out_t.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()), "{cv:?} on {isa:?}: {threads} threads differ from one");
        }
        // A first conv also reads NCHW in place: the same taps in the same order, so the same
        // bits as after a transpose (and so within the reference's tolerance).
        if cv.reads_nchw() {
            for threads in [1, 2, 3] {
                let mut out_n = vec![f32::NAN; cv.output_len()];
                cv.run_nchw_threads(&x, &packed, &bias, &mut out_n, threads);
                assert_close(&format!("{cv:?} NCHW on {isa:?}"), &to_nchw(&out_n, cv.n, cv.c_out, cv.oh, cv.ow), &reference, k);
                assert!(out_n.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()), "{cv:?} on {isa:?}: NCHW input, {threads} threads differ from NHWC");
            }
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn conv(n: usize, hw: [usize; 2], c: [usize; 2], groups: usize, k: [usize; 2], s: [usize; 2], pads: [usize; 4], act: Act) -> Conv2d {
    Conv2d::new(n, hw[0], hw[1], c[0], c[1], groups, k, s, [1, 1], pads, act)
}

#[test]
fn first_conv_mobilenet_shapes() {
    // MobileNet v1 1.0/0.5/0.25-224's first conv, symmetric and Keras 'same' padding.
    for (i, co) in [32, 16, 8].into_iter().enumerate() {
        check(conv(1, [224, 224], [3, co], 1, [3, 3], [2, 2], [1, 1, 1, 1], Act::RELU6), 10 + i as u64);
    }
    check(conv(1, [224, 224], [3, 32], 1, [3, 3], [2, 2], [0, 0, 1, 1], Act::RELU6), 13);
    // The seed's 32×32 network.
    check(conv(2, [32, 32], [3, 32], 1, [3, 3], [2, 2], [0, 0, 1, 1], Act::RELU6), 14);
}

#[test]
fn first_conv_reads_nchw_only_when_it_applies() {
    assert!(conv(1, [224, 224], [3, 32], 1, [3, 3], [2, 2], [1, 1, 1, 1], Act::RELU6).check_nchw().is_ok());
    // A 3×3 conv on 32 channels is im2col's: its patch is too long for the direct kernel.
    let wide = conv(1, [16, 16], [32, 32], 1, [3, 3], [1, 1], [1, 1, 1, 1], Act::RELU6);
    assert!(!wide.reads_nchw() && wide.check_nchw().is_err());
    let dilated = Conv2d::new(1, 16, 16, 3, 8, 1, [3, 3], [1, 1], [2, 2], [2, 2, 2, 2], Act::None);
    assert!(dilated.check_nchw().is_err());
}

/// Pointwise convs with few pixels and many output channels (a MobileNet's late layers at batch 1,
/// 7×7 down to 1×1) split over threads by column panels: against the reference, and
/// bit-identical to one thread (in `check`), including partial last panels.
#[test]
fn pointwise_few_pixels_split_by_panels() {
    for (i, (n, hw, ci, co)) in [(1, 1, 1024, 1024), (1, 2, 512, 512), (1, 1, 512, 1000), (2, 1, 300, 520), (1, 7, 1024, 1024), (1, 4, 256, 250), (1, 3, 700, 90)].into_iter().enumerate() {
        check(conv(n, [hw, hw], [ci, co], 1, [1, 1], [1, 1], [0; 4], Act::RELU6), 400 + i as u64);
    }
}

#[test]
fn first_conv_odd_shapes() {
    let mut r = rng(20);
    // Channel counts around panel boundaries, odd sizes, 1-4 input channels, other strides and
    // kernel sizes, every activation.
    for case in 0..40 {
        let ci = r.random_range(1..5);
        let co = [1, 5, 15, 16, 17, 31, 33, 48, 50][r.random_range(0..9)];
        let (kh, kw) = (r.random_range(1..6), r.random_range(2..5));
        let s = [r.random_range(1..4), r.random_range(1..4)];
        let pads = [r.random_range(0..kh), r.random_range(0..kw), r.random_range(0..kh), r.random_range(0..kw)];
        let (h, w) = (r.random_range(kh..30), r.random_range(kw..30));
        let cv = conv(r.random_range(1..3), [h, w], [ci, co], 1, [kh, kw], s, pads, rand_act(&mut r));
        assert_eq!(cv.path(), ConvPath::General);
        check(cv, 100 + case);
    }
}

#[test]
fn depthwise_wide_rows_and_channel_tails() {
    let mut r = rng(30);
    let mut i = 0;
    for c in [3, 16, 17, 32, 50, 64] {
        for (s, pads) in [(1, [1, 1, 1, 1]), (2, [1, 1, 1, 1]), (2, [0, 0, 1, 1]), (1, [0, 0, 0, 0]), (2, [0, 1, 1, 0]), (1, [2, 2, 2, 2]), (2, [2, 2, 2, 2])] {
            // Full blocks of 12 (stride 1) or 6 (stride 2), with and without edge taps (one column
            // off an end with padding 1, two with padding 2), and
            // partial blocks of 1, 6, 9, 11 (stride 1) and of every size (stride 2).
            for (h, w) in [(4, 25), (7, 18), (3, 11), (3, 33)] {
                check(conv(1, [h, w], [c, c], c, [3, 3], [s, s], pads, rand_act(&mut r)), 200 + i);
                i += 1;
            }
        }
    }
}

#[test]
fn depthwise_mobilenet_shapes() {
    for (i, (hw, c, s)) in [(112, 32, 1), (112, 64, 2), (56, 128, 1), (28, 256, 2), (14, 512, 1), (7, 1024, 1)].into_iter().enumerate() {
        check(conv(1, [hw, hw], [c, c], c, [3, 3], [s, s], [1, 1, 1, 1], Act::RELU6), 300 + i as u64);
    }
}

#[test]
fn pool_many_thread_counts_and_concurrent_callers() {
    let cv = conv(1, [28, 28], [64, 96], 1, [1, 1], [1, 1], [0; 4], Act::RELU6);
    let mut r = rng(40);
    let x = rand_vec(&mut r, cv.input_len());
    let packed = cv.pack_weights(&rand_vec(&mut r, cv.weights_len()));
    let bias = rand_vec(&mut r, cv.c_out);
    let mut one = vec![0.0; cv.output_len()];
    cv.run(&x, &packed, &bias, &mut one);
    for threads in 1..=9 {
        let mut out = vec![f32::NAN; cv.output_len()];
        cv.run_threads(&x, &packed, &bias, &mut out, threads);
        assert!(out.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()), "{threads} threads");
    }
    // Several callers at once: one gets the pool, the others scoped threads; all correct.
    std::thread::scope(|s| {
        for t in 0..4 {
            let (x, packed, bias, one) = (&x, &packed, &bias, &one);
            s.spawn(move || {
                for _ in 0..20 {
                    let mut out = vec![f32::NAN; cv.output_len()];
                    cv.run_threads(x, packed, bias, &mut out, 2 + t % 2);
                    assert!(out.iter().zip(one).all(|(a, b)| a.to_bits() == b.to_bits()));
                }
            });
        }
    });
    // The matrix product on the pool: bit-identical for 1 and 3 threads.
    let (m, k, n) = (40, 30, 20);
    let a = rand_vec(&mut r, m * k);
    let b = gemm::pack(k, n, &rand_vec(&mut r, k * n), false);
    let mut c1 = vec![0.0; m * n];
    gemm::matmul(m, k, n, &a, k, &b, None, Act::None, &mut c1, n, 1);
    let mut c3 = vec![0.0; m * n];
    gemm::matmul(m, k, n, &a, k, &b, None, Act::None, &mut c3, n, 3);
    assert!(c1.iter().zip(&c3).all(|(a, b)| a.to_bits() == b.to_bits()));
}

/// The fused depthwise + pointwise kernel: bit-identical to the two convs run one after the
/// other (themselves checked against the f64 reference above and in kernels_conv), on every ISA
/// and thread count; bands of one to many rows.
#[test]
fn dwpw_matches_the_unfused_pair() {
    let mut r = rng(50);
    // 7×7 and the two 2×2 ones split by column panels at 2 and 3 threads (the seed's 2×2 and
    // 1×1 blocks, one with a partial last panel); 14×14 by rows.
    let cases = [(1, 112, 32, 64, 1), (1, 112, 64, 128, 2), (2, 9, 20, 33, 1), (1, 14, 512, 512, 1), (1, 7, 1024, 1024, 1), (1, 2, 512, 512, 1), (1, 2, 512, 1000, 2), (3, 5, 7, 3, 2)];
    for (i, (n, hw, c, co, s)) in cases.into_iter().enumerate() {
        let dw = conv(n, [hw, hw], [c, c], c, [3, 3], [s, s], [1, 1, 1, 1], rand_act(&mut r));
        let pw = conv(n, [dw.oh, dw.ow], [c, co], 1, [1, 1], [1, 1], [0; 4], rand_act(&mut r));
        let f = DwPw { dw, pw };
        f.check().unwrap_or_else(|e| panic!("{e}"));
        let x = rand_vec(&mut r, dw.input_len());
        let (dw_w, dw_b) = (dw.pack_weights(&rand_vec(&mut r, dw.weights_len())), rand_vec(&mut r, c));
        let (pw_w, pw_b) = (pw.pack_weights(&rand_vec(&mut r, pw.weights_len())), rand_vec(&mut r, co));
        for_each_isa(|isa| {
            let mut mid = vec![0.0; dw.output_len()];
            dw.run(&x, &dw_w, &dw_b, &mut mid);
            let mut want = vec![0.0; pw.output_len()];
            pw.run(&mid, &pw_w, &pw_b, &mut want);
            for threads in [1, 2, 3] {
                let mut got = vec![f32::NAN; f.output_len()];
                f.run_threads(&x, &dw_w, &dw_b, &pw_w, &pw_b, &mut got, threads);
                assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "case {i} on {isa:?}, {threads} threads");
            }
        });
    }
}

#[test]
fn dwpw_rejects_mismatched_convs() {
    let dw = conv(1, [8, 8], [16, 16], 16, [3, 3], [2, 2], [1, 1, 1, 1], Act::RELU6);
    let pw_wrong_size = conv(1, [8, 8], [16, 32], 1, [1, 1], [1, 1], [0; 4], Act::RELU6);
    assert!(DwPw { dw, pw: pw_wrong_size }.check().is_err());
    let not_dw = conv(1, [8, 8], [16, 16], 1, [3, 3], [1, 1], [1, 1, 1, 1], Act::RELU6);
    let pw = conv(1, [8, 8], [16, 32], 1, [1, 1], [1, 1], [0; 4], Act::RELU6);
    assert!(DwPw { dw: not_dw, pw }.check().is_err());
}

/// The head with its dense layer split over threads: against an f64 reference (pool, dense,
/// softmax) and bit-identical for every thread count.
#[test]
fn head_threads() {
    let mut r = rng(60);
    for (n, hw, c, classes, softmax) in [(1, 49, 1024, 1000, true), (2, 4, 300, 37, false), (3, 1, 16, 10, true)] {
        let h = Head { n, hw, c, classes, softmax };
        let x = rand_vec(&mut r, h.input_len());
        let w = rand_vec(&mut r, classes * c);
        let bias = rand_vec(&mut r, classes);
        let packed = h.pack_weights(&w, true);
        let mut reference = vec![0.0f64; n * classes];
        for b in 0..n {
            let pooled: Vec<f64> = (0..c).map(|ch| (0..hw).map(|p| x[(b * hw + p) * c + ch] as f64).sum::<f64>() / hw as f64).collect();
            let row = &mut reference[b * classes..(b + 1) * classes];
            for (j, o) in row.iter_mut().enumerate() {
                *o = bias[j] as f64 + (0..c).map(|ch| pooled[ch] * w[j * c + ch] as f64).sum::<f64>();
            }
            if softmax {
                let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
                row.iter_mut().for_each(|v| *v = (*v - m).exp() / s);
            }
        }
        for_each_isa(|isa| {
            let mut one = vec![f32::NAN; h.output_len()];
            h.run(&x, &packed, &bias, &mut one);
            assert_close(&format!("head {n}x{hw}x{c}->{classes} on {isa:?}"), &one, &reference, c);
            for threads in [2, 3, 4] {
                let mut out = vec![f32::NAN; h.output_len()];
                h.run_threads(&x, &packed, &bias, &mut out, threads);
                assert!(out.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()), "head: {threads} threads on {isa:?}");
            }
        });
    }
}
