//! The packed matrix product, Dense, ONNX Gemm and MatMul against plain f64 references, on
//! every ISA variant.

mod common;

use common::*;
use mobilenetc_runtime::kernels::gemm;
use mobilenetc_runtime::kernels::{Act, Dense, Gemm, GemmC, MatMul};
use rand::Rng;

/// Reference `act(A·B + bias)` with A `[m, k]` (row stride lda) and B `[k, n]`, in f64.
#[allow(clippy::too_many_arguments)]
fn mm_ref(m: usize, k: usize, n: usize, a: &[f32], lda: usize, b: &[f32], bias: Option<&[f32]>, act: Act) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = bias.map_or(0.0, |b| b[j] as f64);
            for kk in 0..k {
                s += a[i * lda + kk] as f64 * b[kk * n + j] as f64;
            }
            out[i * n + j] = act64(act, s);
        }
    }
    out
}

#[test]
fn matmul_random_shapes_strides_epilogues() {
    let mut r = rng(21);
    for case in 0..120 {
        let m = r.random_range(1..40);
        let k = r.random_range(1..70);
        let n = r.random_range(1..75);
        let lda = k + r.random_range(0..3);
        let ldc = n + r.random_range(0..3);
        let a = rand_vec(&mut r, (m - 1) * lda + k);
        let b = rand_vec(&mut r, k * n);
        let bias = rand_vec(&mut r, n);
        let use_bias = r.random_bool(0.7);
        let act = rand_act(&mut r);
        let packed = gemm::pack(k, n, &b, false);
        let reference = mm_ref(m, k, n, &a, lda, &b, use_bias.then_some(&bias[..]), act);
        for_each_isa(|isa| {
            for threads in [1, 2] {
                let mut c = vec![f32::NAN; (m - 1) * ldc + n];
                gemm::matmul(m, k, n, &a, lda, &packed, use_bias.then_some(&bias[..]), act, &mut c, ldc, threads);
                let ours: Vec<f32> = (0..m).flat_map(|i| c[i * ldc..i * ldc + n].to_vec()).collect();
                assert_close(&format!("case {case} m={m} k={k} n={n} {isa:?} threads {threads}"), &ours, &reference, k);
                // The gaps between C rows are never written.
                for i in 0..m.saturating_sub(1) {
                    assert!(c[i * ldc + n..(i + 1) * ldc].iter().all(|x| x.is_nan()), "wrote past a row");
                }
            }
        });
    }
}

/// Long rows run in k chunks (k = 600 → 256 + 256 + 88) with A rows at any stride, including
/// the 2 and 4 KiB strides whose rows share L1 sets; single rows (matrix-vector products, up
/// to eight panels at a time) across many panels and a partial last panel.
#[test]
fn matmul_packed_a_path() {
    let mut r = rng(26);
    let shapes = [(13, 600, 37, 1024), (49, 1024, 40, 1024), (14, 512, 64, 512), (12, 700, 33, 2048), (5, 512, 16, 515), (25, 700, 33, 1000), (1, 600, 1000, 600), (1, 37, 300, 40)];
    for &(m, k, n, lda) in &shapes {
        let a = rand_vec(&mut r, (m - 1) * lda + k);
        let b = rand_vec(&mut r, k * n);
        let bias = rand_vec(&mut r, n);
        let act = rand_act(&mut r);
        let packed = gemm::pack(k, n, &b, false);
        let reference = mm_ref(m, k, n, &a, lda, &b, Some(&bias), act);
        for_each_isa(|isa| {
            let mut c = vec![f32::NAN; m * n];
            gemm::matmul(m, k, n, &a, lda, &packed, Some(&bias), act, &mut c, n, 1);
            assert_close(&format!("packed m={m} k={k} n={n} lda={lda} {isa:?}"), &c, &reference, k);
        });
    }
}

#[test]
fn transposed_packing_matches() {
    let mut r = rng(22);
    let (k, n) = (37, 29);
    let b = rand_vec(&mut r, k * n);
    let mut bt = vec![0.0; k * n];
    for kk in 0..k {
        for j in 0..n {
            bt[j * k + kk] = b[kk * n + j];
        }
    }
    assert_eq!(gemm::pack(k, n, &b, false), gemm::pack(k, n, &bt, true));
}

#[test]
fn dense_fc_layers() {
    let mut r = rng(23);
    // Batch 1 and 2 with many classes run split by column panels on threads; many rows by rows.
    for (i, &(m, k, n)) in [(1, 1024, 1000), (3, 1024, 10), (128, 256, 10), (2, 5, 1), (7, 33, 17), (2, 700, 600), (1, 300, 1000), (300, 700, 40)].iter().enumerate() {
        let d = Dense { m, k, n, act: rand_act(&mut r) };
        let x = rand_vec(&mut r, m * k);
        let wt = rand_vec(&mut r, n * k); // PyTorch layout [n, k]
        let bias = rand_vec(&mut r, n);
        let mut w = vec![0.0; k * n];
        for j in 0..n {
            for kk in 0..k {
                w[kk * n + j] = wt[j * k + kk];
            }
        }
        let reference = mm_ref(m, k, n, &x, k, &w, Some(&bias), d.act);
        let packed = d.pack_weights(&wt, true);
        for_each_isa(|isa| {
            let mut out = vec![0.0; m * n];
            d.run(&x, &packed, &bias, &mut out);
            assert_close(&format!("dense {i} {isa:?}"), &out, &reference, k);
            for threads in [2, 3, 4] {
                let mut out_t = vec![f32::NAN; m * n];
                d.run_threads(&x, &packed, &bias, &mut out_t, threads);
                assert!(out_t.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()), "dense {i} {isa:?}: {threads} threads differ from one");
            }
        });
    }
}

#[test]
fn onnx_gemm_all_forms() {
    let mut r = rng(24);
    let (m, k, n) = (5, 13, 21);
    for trans_a in [false, true] {
        for trans_b in [false, true] {
            for c_kind in [GemmC::None, GemmC::Scalar, GemmC::Row, GemmC::Col, GemmC::Full] {
                for (alpha, beta) in [(1.0f32, 1.0f32), (0.5, -2.0), (1.5, 0.0)] {
                    let g = Gemm { m, k, n, trans_a, trans_b, alpha, beta, c: c_kind, act: rand_act(&mut r) };
                    let a = rand_vec(&mut r, m * k);
                    let b = rand_vec(&mut r, k * n);
                    let c = rand_vec(&mut r, g.c_len());
                    let mut reference = vec![0.0f64; m * n];
                    for i in 0..m {
                        for j in 0..n {
                            let mut s = 0.0;
                            for kk in 0..k {
                                let av = if trans_a { a[kk * m + i] } else { a[i * k + kk] } as f64;
                                let bv = if trans_b { b[j * k + kk] } else { b[kk * n + j] } as f64;
                                s += av * bv;
                            }
                            let cv = match c_kind {
                                GemmC::None => 0.0,
                                GemmC::Scalar => c[0],
                                GemmC::Row => c[j],
                                GemmC::Col => c[i],
                                GemmC::Full => c[i * n + j],
                            } as f64;
                            reference[i * n + j] = act64(g.act, alpha as f64 * s + beta as f64 * cv);
                        }
                    }
                    let packed = g.pack_b(&b);
                    for_each_isa(|isa| {
                        let mut out = vec![0.0; m * n];
                        g.run(&a, &packed, &c, &mut out);
                        assert_close(&format!("{g:?} {isa:?}"), &out, &reference, k);
                    });
                }
            }
        }
    }
    assert_eq!(GemmC::from_shape(&[1, 21], 5, 21), Ok(GemmC::Row));
    assert_eq!(GemmC::from_shape(&[5, 1], 5, 21), Ok(GemmC::Col));
    assert!(GemmC::from_shape(&[4, 21], 5, 21).is_err());
}

#[test]
fn matmul_broadcasting() {
    let mut r = rng(25);
    let cases: [(&[usize], &[usize], &[usize]); 6] = [
        (&[2, 3, 4], &[4, 5], &[2, 3, 5]),
        (&[4], &[2, 4, 3], &[2, 3]),
        (&[2, 1, 3, 4], &[5, 4, 2], &[2, 5, 3, 2]),
        (&[3], &[3], &[]),
        (&[6, 7], &[7], &[6]),
        (&[1, 2, 17], &[3, 17, 18], &[3, 2, 18]),
    ];
    for (sa, sb, so) in cases {
        let mm = MatMul { a_shape: sa, b_shape: sb };
        assert_eq!(mm.out_shape().unwrap(), so.to_vec(), "{sa:?} × {sb:?}");
        let a = rand_vec(&mut r, sa.iter().product());
        let b = rand_vec(&mut r, sb.iter().product());
        // Reference: promote to ≥ 2-D, broadcast batch dims by index arithmetic.
        let a2: Vec<usize> = if sa.len() == 1 { vec![1, sa[0]] } else { sa.to_vec() };
        let b2: Vec<usize> = if sb.len() == 1 { vec![sb[0], 1] } else { sb.to_vec() };
        let (m, k, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
        let ba = &a2[..a2.len() - 2];
        let bb = &b2[..b2.len() - 2];
        let rank = ba.len().max(bb.len());
        let pad = |s: &[usize]| -> Vec<usize> { std::iter::repeat_n(1, rank - s.len()).chain(s.iter().copied()).collect() };
        let (pa, pb) = (pad(ba), pad(bb));
        let batch: Vec<usize> = pa.iter().zip(&pb).map(|(x, y)| *x.max(y)).collect();
        let nb: usize = batch.iter().product();
        let mut reference = vec![0.0f64; nb * m * n];
        for t in 0..nb {
            let mut rem = t;
            let (mut ia, mut ib) = (0, 0);
            let (mut sa_, mut sb_) = (1, 1);
            for d in (0..rank).rev() {
                let i = rem % batch[d];
                rem /= batch[d];
                ia += if pa[d] == 1 { 0 } else { i * sa_ };
                ib += if pb[d] == 1 { 0 } else { i * sb_ };
                sa_ *= pa[d];
                sb_ *= pb[d];
            }
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0;
                    for kk in 0..k {
                        s += a[ia * m * k + i * k + kk] as f64 * b[ib * k * n + kk * n + j] as f64;
                    }
                    reference[(t * m + i) * n + j] = s;
                }
            }
        }
        for_each_isa(|isa| {
            let mut out = vec![0.0; reference.len()];
            mm.run(&a, &b, &mut out);
            assert_close(&format!("matmul {sa:?}×{sb:?} {isa:?}"), &out, &reference, k);
        });
    }
    assert!(MatMul { a_shape: &[2, 3], b_shape: &[4, 5] }.out_shape().is_err());
    assert!(MatMul { a_shape: &[2, 2, 3], b_shape: &[3, 3, 5] }.out_shape().is_err());
}
