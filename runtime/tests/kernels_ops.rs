//! Pools, softmax, element-wise ops, transpose, pad, concat, batch norm and the fused head
//! against plain f64 references (NCHW semantics where the op is spatial).

mod common;

use common::*;
use mobilenetc_runtime::kernels::elementwise::{activation, broadcast_shape};
use mobilenetc_runtime::kernels::layout::{nchw_to_nhwc, nhwc_to_nchw};
use mobilenetc_runtime::kernels::{
    Act, BatchNorm, BinOp, Binary, Concat, GlobalAvgPool, Head, Pad, Pool2d, PoolKind, Softmax, Transpose,
};
use rand::Rng;

fn pool_ref(p: &Pool2d, x: &[f32]) -> Vec<f64> {
    let mut out = vec![0.0; p.output_len()];
    for b in 0..p.n {
        for ch in 0..p.c {
            for oy in 0..p.oh {
                for ox in 0..p.ow {
                    let (mut mx, mut sum, mut valid, mut padded) = (f64::NEG_INFINITY, 0.0, 0, 0);
                    for ky in 0..p.kh {
                        for kx in 0..p.kw {
                            let iy = (oy * p.sh + ky * p.dh) as isize - p.pad_top as isize;
                            let ix = (ox * p.sw + kx * p.dw) as isize - p.pad_left as isize;
                            if iy < (p.h + p.pad_bottom) as isize && ix < (p.w + p.pad_right) as isize {
                                padded += 1;
                            }
                            if iy >= 0 && ix >= 0 && iy < p.h as isize && ix < p.w as isize {
                                let v = x[((b * p.c + ch) * p.h + iy as usize) * p.w + ix as usize] as f64;
                                mx = mx.max(v);
                                sum += v;
                                valid += 1;
                            }
                        }
                    }
                    out[((b * p.c + ch) * p.oh + oy) * p.ow + ox] = match p.kind {
                        PoolKind::Max => mx,
                        PoolKind::Avg { count_include_pad: true } => sum / padded as f64,
                        PoolKind::Avg { count_include_pad: false } => sum / valid as f64,
                    };
                }
            }
        }
    }
    out
}

#[test]
fn pools_random() {
    let mut r = rng(31);
    for case in 0..150 {
        let (kh, kw) = (r.random_range(1..4), r.random_range(1..4));
        let (dh, dw) = (r.random_range(1..3), r.random_range(1..3));
        let pads = [r.random_range(0..kh), r.random_range(0..kw), r.random_range(0..kh), r.random_range(0..kw)];
        let kind = match r.random_range(0..3) {
            0 => PoolKind::Max,
            1 => PoolKind::Avg { count_include_pad: true },
            _ => PoolKind::Avg { count_include_pad: false },
        };
        let (n, c, h, w) = (r.random_range(1..3), r.random_range(1..6), r.random_range(1..10), r.random_range(1..10));
        let p = Pool2d::new(n, h, w, c, [kh, kw], [r.random_range(1..4), r.random_range(1..4)], [dh, dw], pads, r.random_bool(0.5), kind);
        if p.oh == 0 || p.ow == 0 {
            continue;
        }
        p.check().unwrap();
        let x = rand_vec(&mut r, p.input_len());
        let reference = pool_ref(&p, &x);
        let mut out = vec![f32::NAN; p.output_len()];
        p.run(&to_nhwc(&x, n, c, h, w), &mut out);
        assert_close(&format!("case {case} {p:?}"), &to_nchw(&out, n, c, p.oh, p.ow), &reference, kh * kw);
    }
}

#[test]
fn pool_ceil_mode_sizes() {
    // ONNX ceil_mode examples: 4×4, kernel 3, stride 2 → 2 (ceil) vs 1 (floor).
    let p = Pool2d::new(1, 4, 4, 1, [3, 3], [2, 2], [1, 1], [0; 4], true, PoolKind::Max);
    assert_eq!((p.oh, p.ow), (2, 2));
    let p = Pool2d::new(1, 4, 4, 1, [3, 3], [2, 2], [1, 1], [0; 4], false, PoolKind::Max);
    assert_eq!((p.oh, p.ow), (1, 1));
    // A last window starting in the end padding is dropped: 5, k2 s2, pad end 1 → 3 both ways.
    let p = Pool2d::new(1, 5, 5, 1, [2, 2], [2, 2], [1, 1], [0, 0, 1, 1], true, PoolKind::Max);
    assert_eq!((p.oh, p.ow), (3, 3));
}

#[test]
fn global_average_pool() {
    let mut r = rng(32);
    for &(n, h, w, c) in &[(1, 7, 7, 1024), (3, 1, 1, 5), (2, 4, 3, 17)] {
        let x = rand_vec(&mut r, n * c * h * w);
        let mut reference = vec![0.0; n * c];
        for b in 0..n {
            for ch in 0..c {
                let s: f64 = (0..h * w).map(|p| x[(b * c + ch) * h * w + p] as f64).sum();
                reference[b * c + ch] = s / (h * w) as f64;
            }
        }
        let g = GlobalAvgPool { n, hw: h * w, c };
        let mut out = vec![0.0; n * c];
        g.run(&to_nhwc(&x, n, c, h, w), &mut out);
        assert_close("global avg pool", &out, &reference, h * w);
    }
}

#[test]
fn softmax_any_axis() {
    let mut r = rng(33);
    for &(shape, axis) in &[(&[2usize, 3, 4][..], 1isize), (&[5, 1000][..], -1), (&[3, 4, 5, 2][..], 0), (&[7][..], 0), (&[2, 3, 4][..], 2)] {
        for log in [false, true] {
            let sm = Softmax::for_shape(shape, axis, log).unwrap();
            let x: Vec<f32> = rand_vec(&mut r, sm.len()).iter().map(|v| v * 20.0).collect();
            let mut reference = vec![0.0; sm.len()];
            for o in 0..sm.outer {
                for i in 0..sm.inner {
                    let at = |j: usize| (o * sm.axis + j) * sm.inner + i;
                    let mx = (0..sm.axis).map(|j| x[at(j)] as f64).fold(f64::NEG_INFINITY, f64::max);
                    let s: f64 = (0..sm.axis).map(|j| (x[at(j)] as f64 - mx).exp()).sum();
                    for j in 0..sm.axis {
                        let v = x[at(j)] as f64 - mx;
                        reference[at(j)] = if log { v - s.ln() } else { v.exp() / s };
                    }
                }
            }
            let mut out = vec![0.0; sm.len()];
            sm.run(&x, &mut out);
            assert_close(&format!("softmax {shape:?} axis {axis} log {log}"), &out, &reference, sm.axis);
        }
    }
    assert!(Softmax::for_shape(&[2, 3], 2, false).is_none());
}

/// Reference broadcasting by index arithmetic on the output coordinates.
fn binary_ref(op: BinOp, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], act: Act) -> (Vec<usize>, Vec<f64>) {
    let so = broadcast_shape(sa, sb).unwrap();
    let r = so.len();
    let total: usize = so.iter().product();
    let flat = |s: &[usize], coord: &[usize]| -> usize {
        let off = r - s.len();
        s.iter().enumerate().fold(0, |acc, (d, &n)| acc * n + if n == 1 { 0 } else { coord[d + off] })
    };
    let mut out = vec![0.0; total];
    let mut coord = vec![0; r];
    for (t, o) in out.iter_mut().enumerate() {
        let mut rem = t;
        for d in (0..r).rev() {
            coord[d] = rem % so[d];
            rem /= so[d];
        }
        let (x, y) = (a[flat(sa, &coord)] as f64, b[flat(sb, &coord)] as f64);
        let v = match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            BinOp::Div => x / y,
        };
        *o = act64(act, v);
    }
    (so, out)
}

#[test]
fn binary_broadcasting() {
    let mut r = rng(34);
    let shapes: [(&[usize], &[usize]); 9] = [
        (&[2, 3, 4], &[2, 3, 4]),
        (&[2, 3, 4], &[4]),
        (&[2, 3, 4], &[]),
        (&[1], &[5, 2]),
        (&[2, 1, 4], &[3, 1]),
        (&[1, 3, 1, 5], &[2, 1, 4, 1]),
        (&[1, 8, 5, 5], &[1, 8, 1, 1]),
        (&[3, 1], &[1, 6]),
        (&[4, 2, 3, 2], &[2, 1, 2]),
    ];
    for (sa, sb) in shapes {
        for op in [BinOp::Add, BinOp::Sub, BinOp::Mul, BinOp::Div] {
            let act = rand_act(&mut r);
            let a = rand_vec(&mut r, sa.iter().product());
            let b: Vec<f32> = rand_vec(&mut r, sb.iter().product()).iter().map(|v| if op == BinOp::Div { v.abs() + 0.5 } else { *v }).collect();
            let (so, reference) = binary_ref(op, &a, sa, &b, sb, act);
            let k = Binary { op, a_shape: sa, b_shape: sb, act };
            assert_eq!(k.out_shape().unwrap(), so);
            let mut out = vec![f32::NAN; reference.len()];
            k.run(&a, &b, &mut out);
            assert_close(&format!("{op:?} {sa:?} {sb:?}"), &out, &reference, 1);
            if so.as_slice() == sa {
                let mut inplace = a.clone();
                k.run_inplace(&mut inplace, &b);
                assert_eq!(inplace, out, "in place {op:?} {sa:?} {sb:?}");
            }
        }
    }
    assert!(Binary { op: BinOp::Add, a_shape: &[2, 3], b_shape: &[4], act: Act::None }.out_shape().is_err());
}

#[test]
fn standalone_activations() {
    let x = [-7.0f32, -1.0, -0.0, 0.5, 5.9, 6.0, 6.5, 100.0];
    let mut out = [0.0; 8];
    activation(Act::Relu, &x, &mut out);
    assert_eq!(out, [0.0, 0.0, 0.0, 0.5, 5.9, 6.0, 6.5, 100.0]);
    activation(Act::RELU6, &x, &mut out);
    assert_eq!(out, [0.0, 0.0, 0.0, 0.5, 5.9, 6.0, 6.0, 6.0]);
    activation(Act::Clip { min: -1.0, max: f32::INFINITY }, &x, &mut out);
    assert_eq!(out, [-1.0, -1.0, -0.0, 0.5, 5.9, 6.0, 6.5, 100.0]);
}

#[test]
fn transpose_random_perms() {
    let mut r = rng(35);
    for _ in 0..60 {
        let rank = r.random_range(1..6);
        let shape: Vec<usize> = (0..rank).map(|_| r.random_range(1..5)).collect();
        let mut perm: Vec<usize> = (0..rank).collect();
        for i in (1..rank).rev() {
            perm.swap(i, r.random_range(0..=i));
        }
        let x = rand_vec(&mut r, shape.iter().product());
        let t = Transpose { shape: &shape, perm: &perm };
        let os = t.out_shape();
        let mut reference = vec![0.0; x.len()];
        let mut coord = vec![0; rank];
        for (i, &v) in x.iter().enumerate() {
            let mut rem = i;
            for d in (0..rank).rev() {
                coord[d] = rem % shape[d];
                rem /= shape[d];
            }
            let o = (0..rank).fold(0, |acc, d| acc * os[d] + coord[perm[d]]);
            reference[o] = v;
        }
        let mut out = vec![f32::NAN; x.len()];
        t.run(&x, &mut out);
        assert_eq!(out, reference, "{shape:?} perm {perm:?}");
    }
    assert!(Transpose { shape: &[2, 3], perm: &[0, 0] }.check().is_err());
    // NCHW ↔ NHWC round trip against the test's own converter.
    let (n, c, h, w) = (2, 3, 4, 5);
    let x = rand_vec(&mut r, n * c * h * w);
    let mut nhwc = vec![0.0; x.len()];
    nchw_to_nhwc(n, c, h, w, &x, &mut nhwc);
    assert_eq!(nhwc, to_nhwc(&x, n, c, h, w));
    let mut back = vec![0.0; x.len()];
    nhwc_to_nchw(n, c, h, w, &nhwc, &mut back);
    assert_eq!(back, x);
}

#[test]
fn pad_constant_nd() {
    let mut r = rng(36);
    for _ in 0..60 {
        let rank = r.random_range(1..5);
        let shape: Vec<usize> = (0..rank).map(|_| r.random_range(1..5)).collect();
        let pads: Vec<isize> = (0..2 * rank).map(|i| r.random_range(-(shape[i % rank] as i64) / 2..3) as isize).collect();
        let x = rand_vec(&mut r, shape.iter().product());
        let p = Pad { shape: &shape, pads: &pads, value: 0.25 };
        let os = p.out_shape().unwrap();
        let total: usize = os.iter().product();
        let mut reference = vec![0.0; total];
        let mut coord = vec![0isize; rank];
        for (o, rv) in reference.iter_mut().enumerate() {
            let mut rem = o;
            for d in (0..rank).rev() {
                coord[d] = (rem % os[d]) as isize - pads[d];
                rem /= os[d];
            }
            let inside = (0..rank).all(|d| coord[d] >= 0 && coord[d] < shape[d] as isize);
            *rv = if inside { x[(0..rank).fold(0, |acc, d| acc * shape[d] + coord[d] as usize)] } else { 0.25 };
        }
        let mut out = vec![f32::NAN; total];
        p.run(&x, &mut out);
        assert_eq!(out, reference, "{shape:?} pads {pads:?}");
    }
    assert!(Pad { shape: &[2], pads: &[0], value: 0.0 }.out_shape().is_err());
}

#[test]
fn concat_any_axis() {
    let mut r = rng(37);
    let shapes = [[2usize, 3, 4], [2, 5, 4], [2, 1, 4]];
    for axis in 0..3 {
        let ins: Vec<Vec<usize>> = shapes.iter().map(|s| (0..3).map(|d| if d == axis { s[1] } else { [2, 9, 4][d] }).collect()).collect();
        let data: Vec<Vec<f32>> = ins.iter().map(|s| rand_vec(&mut r, s.iter().product())).collect();
        let outer: usize = ins[0][..axis].iter().product();
        let inner: usize = ins[0][axis + 1..].iter().product();
        let lens: Vec<usize> = ins.iter().map(|s| s[axis]).collect();
        let c = Concat { outer, inner, axis_lens: &lens };
        let mut out = vec![f32::NAN; c.output_len()];
        c.run(&data.iter().map(|v| &v[..]).collect::<Vec<_>>(), &mut out);
        // Reference: walk output coordinates.
        let mut os = ins[0].clone();
        os[axis] = lens.iter().sum();
        let mut reference = Vec::new();
        for i0 in 0..os[0] {
            for i1 in 0..os[1] {
                for i2 in 0..os[2] {
                    let mut idx = [i0, i1, i2];
                    let mut which = 0;
                    while idx[axis] >= lens[which] {
                        idx[axis] -= lens[which];
                        which += 1;
                    }
                    let s = &ins[which];
                    reference.push(data[which][(idx[0] * s[1] + idx[1]) * s[2] + idx[2]]);
                }
            }
        }
        assert_eq!(out, reference, "axis {axis}");
    }
}

#[test]
fn batchnorm_nhwc_and_nchw() {
    let mut r = rng(38);
    let (n, c, h, w) = (2, 5, 3, 4);
    let x = rand_vec(&mut r, n * c * h * w);
    let scale = rand_vec(&mut r, c);
    let bias = rand_vec(&mut r, c);
    let mean = rand_vec(&mut r, c);
    let var: Vec<f32> = rand_vec(&mut r, c).iter().map(|v| v.abs() + 0.1).collect();
    let eps = 1e-5;
    let act = Act::RELU6;
    let reference: Vec<f64> = (0..x.len())
        .map(|i| {
            let ch = (i / (h * w)) % c;
            let v = (x[i] as f64 - mean[ch] as f64) / (var[ch] as f64 + eps as f64).sqrt() * scale[ch] as f64 + bias[ch] as f64;
            act64(act, v)
        })
        .collect();
    let nchw = BatchNorm { outer: n, c, inner: h * w, eps, act };
    let packed = nchw.pack(&scale, &bias, &mean, &var);
    let mut out = vec![0.0; x.len()];
    nchw.run(&x, &packed, &mut out);
    assert_close("batchnorm NCHW", &out, &reference, 4);
    let nhwc = BatchNorm { outer: n * h * w, c, inner: 1, eps, act };
    let mut out = vec![0.0; x.len()];
    nhwc.run(&to_nhwc(&x, n, c, h, w), &packed, &mut out);
    assert_close("batchnorm NHWC", &to_nchw(&out, n, c, h, w), &reference, 4);
}

#[test]
fn fused_head() {
    let mut r = rng(39);
    for &(n, hw, c, classes, softmax) in &[(1, 49, 1024, 1000, true), (3, 4, 256, 10, true), (2, 1, 7, 3, false), (5, 9, 5000, 4, true)] {
        let x = rand_vec(&mut r, n * hw * c); // NHWC
        let w = rand_vec(&mut r, c * classes); // [c, classes]
        let bias = rand_vec(&mut r, classes);
        let mut reference = vec![0.0f64; n * classes];
        for b in 0..n {
            let pooled: Vec<f64> = (0..c).map(|ch| (0..hw).map(|p| x[(b * hw + p) * c + ch] as f64).sum::<f64>() / hw as f64).collect();
            let row = &mut reference[b * classes..(b + 1) * classes];
            for (j, o) in row.iter_mut().enumerate() {
                *o = bias[j] as f64 + (0..c).map(|ch| pooled[ch] * w[ch * classes + j] as f64).sum::<f64>();
            }
            if softmax {
                let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let s: f64 = row.iter().map(|v| (v - mx).exp()).sum();
                row.iter_mut().for_each(|v| *v = (*v - mx).exp() / s);
            }
        }
        let head = Head { n, hw, c, classes, softmax };
        let packed = head.pack_weights(&w, false);
        for_each_isa(|isa| {
            let mut out = vec![0.0; n * classes];
            head.run(&x, &packed, &bias, &mut out);
            assert_close(&format!("head {head:?} {isa:?}"), &out, &reference, c);
        });
    }
}
