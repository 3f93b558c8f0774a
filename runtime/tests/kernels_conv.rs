//! Conv2d (pointwise, depthwise and general paths) against a plain f64 NCHW/OIHW reference,
//! on every ISA variant, random shapes and MobileNet v1's real layers.

mod common;

use common::*;
use mobilenetc_runtime::kernels::{Act, Conv2d, ConvPath};
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
                        let ci = g * cig + i;
                        for ky in 0..cv.kh {
                            for kx in 0..cv.kw {
                                let iy = (oy * cv.sh + ky * cv.dh) as isize - cv.pad_top as isize;
                                let ix = (ox * cv.sw + kx * cv.dw) as isize - cv.pad_left as isize;
                                if iy < 0 || ix < 0 || iy >= cv.h as isize || ix >= cv.w as isize {
                                    continue;
                                }
                                let xv = x[((b * cv.c_in + ci) * cv.h + iy as usize) * cv.w + ix as usize] as f64;
                                let wv = w[((o * cig + i) * cv.kh + ky) * cv.kw + kx] as f64;
                                s += xv * wv;
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

/// Checks one conv on every ISA (and with 2 and 3 threads: bit-identical to one thread).
fn check(cv: Conv2d, seed: u64) {
    cv.check().unwrap_or_else(|e| panic!("{e}"));
    let mut r = rng(seed);
    let x = rand_vec(&mut r, cv.input_len());
    let w = rand_vec(&mut r, cv.weights_len());
    let bias = if r.random_bool(0.8) { rand_vec(&mut r, cv.c_out) } else { vec![0.0; cv.c_out] };
    let reference = conv_ref(&cv, &x, &w, &bias);
    let xh = to_nhwc(&x, cv.n, cv.c_in, cv.h, cv.w);
    let packed = cv.pack_weights(&w);
    assert_eq!(packed.len(), cv.packed_weights_len());
    let k = cv.c_in / cv.groups * cv.kh * cv.kw;
    for_each_isa(|isa| {
        let mut out = vec![f32::NAN; cv.output_len()];
        cv.run(&xh, &packed, &bias, &mut out);
        let ours = to_nchw(&out, cv.n, cv.c_out, cv.oh, cv.ow);
        assert_close(&format!("{cv:?} on {isa:?} ({:?})", cv.path()), &ours, &reference, k);
        for threads in [2, 3] {
            let mut out_t = vec![f32::NAN; cv.output_len()];
            cv.run_threads(&xh, &packed, &bias, &mut out_t, threads);
            assert!(out_t.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()), "{cv:?}: {threads} threads differ from one");
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn conv(n: usize, hw: [usize; 2], c: [usize; 2], groups: usize, k: [usize; 2], s: [usize; 2], d: [usize; 2], pads: [usize; 4], act: Act) -> Conv2d {
    Conv2d::new(n, hw[0], hw[1], c[0], c[1], groups, k, s, d, pads, act)
}

#[test]
fn random_shapes_every_path() {
    let mut r = rng(7);
    let mut paths = [0usize; 3];
    for case in 0..150 {
        let groups = match r.random_range(0..4) {
            0 | 1 => 1,
            2 => r.random_range(2..4),
            _ => 0, // depthwise
        };
        let (c_in, c_out, groups) = if groups == 0 {
            let c = r.random_range(1..40);
            (c, c, c)
        } else {
            (groups * r.random_range(1..7), groups * r.random_range(1..21), groups)
        };
        let kh = r.random_range(1..5);
        let kw = r.random_range(1..5);
        let (sh, sw) = (r.random_range(1..4), r.random_range(1..4));
        let (dh, dw) = (r.random_range(1..3), r.random_range(1..3));
        let pads = [r.random_range(0..kh), r.random_range(0..kw), r.random_range(0..kh), r.random_range(0..kw)];
        let (h, w) = (r.random_range(1..13), r.random_range(1..13));
        let n = r.random_range(1..4);
        let cv = conv(n, [h, w], [c_in, c_out], groups, [kh, kw], [sh, sw], [dh, dw], pads, rand_act(&mut r));
        if cv.oh == 0 || cv.ow == 0 {
            continue;
        }
        paths[cv.path() as usize] += 1;
        check(cv, 1000 + case);
    }
    // The random mix must reach the general and depthwise paths often.
    assert!(paths[1] > 20 && paths[2] > 40, "path coverage {paths:?}");
}

#[test]
fn pointwise_odd_sizes() {
    let mut r = rng(11);
    for (i, &(n, h, w, ci, co)) in [(1, 1, 1, 1, 1), (2, 3, 5, 17, 33), (1, 7, 7, 13, 16), (3, 4, 3, 64, 47), (1, 5, 5, 100, 130), (1, 1, 13, 1024, 10)].iter().enumerate() {
        let cv = conv(n, [h, w], [ci, co], 1, [1, 1], [1, 1], [1, 1], [0; 4], rand_act(&mut r));
        assert_eq!(cv.path(), ConvPath::Pointwise);
        check(cv, 2000 + i as u64);
    }
}

#[test]
fn depthwise_3x3_edges_and_tails() {
    let mut r = rng(12);
    let mut i = 0;
    for c in [1, 8, 16, 24, 40] {
        for (s, pads) in [(1, [1, 1, 1, 1]), (2, [1, 1, 1, 1]), (2, [0, 0, 1, 1]), (1, [0, 0, 0, 0]), (2, [0, 0, 0, 0])] {
            for (h, w) in [(1, 1), (2, 3), (5, 6), (9, 8)] {
                let cv = conv(2, [h, w], [c, c], c, [3, 3], [s, s], [1, 1], pads, rand_act(&mut r));
                if cv.oh == 0 || cv.ow == 0 {
                    continue;
                }
                assert_eq!(cv.path(), ConvPath::Depthwise);
                check(cv, 3000 + i);
                i += 1;
            }
        }
    }
}

#[test]
fn grouped_and_channel_multiplier() {
    // Depthwise with channel multiplier 2 and a grouped conv take the general path.
    check(conv(1, [6, 7], [4, 8], 4, [3, 3], [1, 2], [1, 1], [1, 1, 1, 1], Act::RELU6), 4000);
    check(conv(2, [9, 5], [6, 9], 3, [3, 2], [2, 1], [2, 1], [2, 1, 0, 1], Act::Relu), 4001);
    // Long patches exercise the k-chunked im2col (k = 3·3·200 = 1800 > one chunk).
    check(conv(1, [4, 4], [200, 20], 1, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], Act::None), 4002);
}

/// MobileNet v1 1.0-224: the first conv, every distinct depthwise layer and a spread of
/// pointwise layers, at their real shapes.
#[test]
fn mobilenet_v1_224_layers() {
    let relu6 = Act::RELU6;
    let mut layers = vec![conv(1, [224, 224], [3, 32], 1, [3, 3], [2, 2], [1, 1], [1, 1, 1, 1], relu6)];
    // TF-style asymmetric SAME padding of the first conv.
    layers.push(conv(1, [224, 224], [3, 32], 1, [3, 3], [2, 2], [1, 1], [0, 0, 1, 1], relu6));
    for (hw, c, s) in [(112, 32, 1), (112, 64, 2), (56, 128, 1), (56, 128, 2), (28, 256, 1), (28, 256, 2), (14, 512, 1), (14, 512, 2), (7, 1024, 1)] {
        layers.push(conv(1, [hw, hw], [c, c], c, [3, 3], [s, s], [1, 1], [1, 1, 1, 1], relu6));
    }
    for (hw, ci, co) in [(112, 32, 64), (56, 64, 128), (56, 128, 128), (28, 256, 256), (14, 512, 512), (7, 512, 1024), (7, 1024, 1024)] {
        layers.push(conv(1, [hw, hw], [ci, co], 1, [1, 1], [1, 1], [1, 1], [0; 4], relu6));
    }
    for (i, cv) in layers.into_iter().enumerate() {
        check(cv, 5000 + i as u64);
    }
}

#[test]
fn check_rejects_bad_parameters() {
    let mut cv = conv(1, [8, 8], [6, 6], 3, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1], Act::None);
    assert!(cv.check().is_ok());
    cv.groups = 4;
    assert!(cv.check().is_err());
    cv.groups = 3;
    cv.oh = 9;
    assert!(cv.check().is_err());
}
