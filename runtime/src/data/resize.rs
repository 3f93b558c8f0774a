//! Bilinear resizing with half-pixel centers, antialiased when shrinking.
//!
//! Output pixel `i` samples the input at `(i + 0.5)·s − 0.5` with `s = in / out` (PyTorch's
//! `align_corners=False`). When enlarging this is plain bilinear interpolation with edge
//! clamping, identical to PyTorch's `interpolate(mode="bilinear")`. When shrinking, the triangle
//! filter is widened by `s` (as PIL's `BILINEAR` does), so every input pixel contributes and a
//! photo reduced to 32×32 does not alias. Weights are computed once per axis, in f64.

/// Filter taps of one axis: output `i` reads `count[i]` inputs from `start[i]` with
/// `weights[i * stride ..]`.
#[derive(Clone, Debug)]
struct Taps {
    start: Vec<usize>,
    count: Vec<usize>,
    stride: usize,
    weights: Vec<f32>,
}

impl Taps {
    fn new(n_in: usize, n_out: usize) -> Taps {
        let scale = n_in as f64 / n_out as f64;
        let support = scale.max(1.0);
        // Inputs within `support` of the center: at most ⌈2·support⌉ + 2 of them.
        let stride = (2.0 * support).ceil() as usize + 2;
        let mut t = Taps {
            start: Vec::new(),
            count: Vec::new(),
            stride,
            weights: vec![0.0; n_out * stride],
        };
        for i in 0..n_out {
            let center = (i as f64 + 0.5) * scale;
            let lo = ((center - support).floor().max(0.0)) as usize;
            let hi = ((center + support).ceil() as usize).min(n_in);
            let mut w: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 + 0.5 - center) / support).abs()).max(0.0))
                .collect();
            // Trim zero weights at both ends so the inner loops stay short.
            let first = w.iter().position(|&x| x > 0.0).unwrap_or(0);
            let last = w
                .iter()
                .rposition(|&x| x > 0.0)
                .map_or(first + 1, |p| p + 1);
            w = w[first..last].to_vec();
            let sum: f64 = w.iter().sum();
            // Near an edge only part of the filter lies inside: renormalize (edge clamping).
            let start = lo + first;
            if sum <= 0.0 {
                // Cannot happen for n_in ≥ 1, but keep a defined result: nearest pixel.
                w = vec![1.0];
            }
            let sum = if sum > 0.0 { sum } else { 1.0 };
            for (k, x) in w.iter().enumerate() {
                t.weights[i * stride + k] = (x / sum) as f32;
            }
            t.start.push(start.min(n_in - 1));
            t.count.push(w.len());
        }
        t
    }
}

/// A resizer from one (H, W) to another, with its filter tables computed once.
#[derive(Clone, Debug)]
pub struct Resizer {
    from: (usize, usize),
    to: (usize, usize),
    rows: Taps,
    cols: Taps,
}

impl Resizer {
    /// Both sizes must be non-zero.
    pub fn new(from: (usize, usize), to: (usize, usize)) -> Resizer {
        assert!(
            from.0 > 0 && from.1 > 0 && to.0 > 0 && to.1 > 0,
            "resize between empty images"
        );
        Resizer {
            from,
            to,
            rows: Taps::new(from.0, to.0),
            cols: Taps::new(from.1, to.1),
        }
    }

    /// Resizes `channels` planes of `src` (C×H×W) into `dst` (C×H'×W'); `tmp` is scratch.
    pub fn run(&self, src: &[f32], channels: usize, dst: &mut [f32], tmp: &mut Vec<f32>) {
        let (h, w) = self.from;
        let (h2, w2) = self.to;
        assert_eq!(src.len(), channels * h * w);
        assert_eq!(dst.len(), channels * h2 * w2);
        // Columns first (H×W → H×W'), then rows (→ H'×W').
        tmp.clear();
        tmp.resize(channels * h * w2, 0.0);
        for (plane, out) in src.chunks_exact(h * w).zip(tmp.chunks_exact_mut(h * w2)) {
            for (row, orow) in plane.chunks_exact(w).zip(out.chunks_exact_mut(w2)) {
                for (x, o) in orow.iter_mut().enumerate() {
                    let s = self.cols.start[x];
                    let ws = &self.cols.weights[x * self.cols.stride..][..self.cols.count[x]];
                    *o = ws.iter().zip(&row[s..]).map(|(a, b)| a * b).sum();
                }
            }
        }
        for (plane, out) in tmp.chunks_exact(h * w2).zip(dst.chunks_exact_mut(h2 * w2)) {
            for (y, orow) in out.chunks_exact_mut(w2).enumerate() {
                orow.fill(0.0);
                let s = self.rows.start[y];
                let ws = &self.rows.weights[y * self.rows.stride..][..self.rows.count[y]];
                for (k, &wt) in ws.iter().enumerate() {
                    let irow = &plane[(s + k) * w2..][..w2];
                    for (o, &v) in orow.iter_mut().zip(irow) {
                        *o += wt * v;
                    }
                }
            }
        }
    }
}

/// Resizes a C×H×W f32 image to C×H'×W' (see the module notes for the filter).
pub fn resize_bilinear(
    src: &[f32],
    channels: usize,
    from: (usize, usize),
    to: (usize, usize),
) -> Vec<f32> {
    let mut dst = vec![0.0; channels * to.0 * to.1];
    Resizer::new(from, to).run(src, channels, &mut dst, &mut Vec::new());
    dst
}
