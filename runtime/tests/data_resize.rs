//! The bilinear resizer against independent formulas: PyTorch's `align_corners=False`
//! bilinear interpolation when enlarging, the 2× triangle filter's (1, 3, 3, 1)/8 weights
//! when shrinking. Tolerance 1e-6 (f32 accumulation of ≤ 4 terms of size ≤ 1).

use mobilenetc_runtime::data::{resize_bilinear, SplitMix64};

fn image(c: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
    let mut r = SplitMix64::new(seed);
    (0..c * h * w).map(|_| r.unit_f64() as f32).collect()
}

/// PyTorch `F.interpolate(x, size, mode="bilinear", align_corners=False)` in f64.
fn torch_bilinear(
    x: &[f32],
    c: usize,
    (h, w): (usize, usize),
    (h2, w2): (usize, usize),
) -> Vec<f64> {
    let coord = |i: usize, n_in: usize, n_out: usize| -> (usize, usize, f64) {
        let s = n_in as f64 / n_out as f64;
        let src = ((i as f64 + 0.5) * s - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n_in - 1);
        let i1 = (i0 + 1).min(n_in - 1);
        (i0, i1, src - i0 as f64)
    };
    let mut out = Vec::new();
    for ch in 0..c {
        for y in 0..h2 {
            let (y0, y1, ly) = coord(y, h, h2);
            for xo in 0..w2 {
                let (x0, x1, lx) = coord(xo, w, w2);
                let at = |yy: usize, xx: usize| x[(ch * h + yy) * w + xx] as f64;
                let top = at(y0, x0) * (1.0 - lx) + at(y0, x1) * lx;
                let bot = at(y1, x0) * (1.0 - lx) + at(y1, x1) * lx;
                out.push(top * (1.0 - ly) + bot * ly);
            }
        }
    }
    out
}

fn assert_close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g as f64 - w).abs() < 1e-6, "[{i}] got {g}, want {w}");
    }
}

#[test]
fn enlarging_matches_pytorch_bilinear() {
    for &(from, to) in &[
        ((5, 3), (11, 7)),
        ((28, 28), (32, 32)),
        ((32, 32), (224, 224)),
        ((4, 6), (4, 15)),
    ] {
        let x = image(3, from.0, from.1, 5);
        let got = resize_bilinear(&x, 3, from, to);
        assert_close(&got, &torch_bilinear(&x, 3, from, to));
    }
}

/// One axis of the 2× triangle filter: output i has taps 2i−1 .. 2i+2 with weights
/// (1, 3, 3, 1)/8, those outside the image dropped and the rest renormalized.
fn shrink2_axis(v: &[f64]) -> Vec<f64> {
    let n = v.len();
    (0..n / 2)
        .map(|i| {
            let taps = [
                (2 * i as isize - 1, 1.0),
                (2 * i as isize, 3.0),
                (2 * i as isize + 1, 3.0),
                (2 * i as isize + 2, 1.0),
            ];
            let (mut s, mut wsum) = (0.0, 0.0);
            for (j, w) in taps {
                if j >= 0 && (j as usize) < n {
                    s += w * v[j as usize];
                    wsum += w;
                }
            }
            s / wsum
        })
        .collect()
}

#[test]
fn shrinking_by_two_uses_the_wide_triangle_filter() {
    let (h, w) = (8, 10);
    let x = image(2, h, w, 9);
    let got = resize_bilinear(&x, 2, (h, w), (h / 2, w / 2));
    let mut want = Vec::new();
    for c in 0..2 {
        let rows: Vec<Vec<f64>> = (0..h)
            .map(|y| {
                shrink2_axis(
                    &x[(c * h + y) * w..][..w]
                        .iter()
                        .map(|&v| v as f64)
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let cols: Vec<Vec<f64>> = (0..w / 2)
            .map(|xo| shrink2_axis(&rows.iter().map(|r| r[xo]).collect::<Vec<_>>()))
            .collect();
        for y in 0..h / 2 {
            want.extend(cols.iter().map(|col| col[y]));
        }
    }
    assert_close(&got, &want);
}

#[test]
fn same_size_is_identity_and_constants_stay_constant() {
    let x = image(1, 7, 9, 3);
    assert_eq!(resize_bilinear(&x, 1, (7, 9), (7, 9)), x);
    let flat = vec![0.25f32; 3 * 37 * 23];
    for to in [(5, 5), (100, 3), (37, 23), (224, 224)] {
        let y = resize_bilinear(&flat, 3, (37, 23), to);
        assert!(y.iter().all(|&v| (v - 0.25).abs() < 1e-6), "{to:?}");
    }
}
