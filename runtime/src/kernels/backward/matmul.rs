//! `C[m, n] = Aᵀ·B` for `A [k, m]` and `B [k, n]` given as rows over a long `k`: the product
//! behind every weight gradient (`k` is the number of output pixels, up to `n·oh·ow`).
//!
//! The `k` range is cut into chunks of [`KC`] rows; each chunk's `A` is transposed into a small
//! row-major buffer and its `B` packed into the gemm's panels, then the packed micro-kernel
//! accumulates onto `C`. Threads take disjoint `k` ranges with their own partial `C`, summed in
//! order at the end.

use super::super::gemm::{self, Mm, NR};
use super::super::{isa, Act};

/// Rows of `k` per chunk: the transposed A chunk (`m × KC`) and packed B chunk (`KC × n`)
/// stay in L2 for MobileNet's widths.
pub const KC: usize = 256;

/// Accumulates `C += Aᵀ·B` chunk by chunk (one per thread).
pub struct AtB {
    pub m: usize,
    pub n: usize,
    /// `[m, n]` row-major.
    pub c: Vec<f32>,
    at: Vec<f32>,
    bp: Vec<f32>,
    started: bool,
}

impl AtB {
    pub fn new(m: usize, n: usize) -> AtB {
        AtB { m, n, c: vec![0.0; m * n], at: vec![0.0; m * KC], bp: vec![0.0; gemm::packed_len(KC, n)], started: false }
    }

    /// Adds `Σ_r A[r]ᵀ B[r]` over `rows` rows: row `r` of A is `a[r·lda .. r·lda + m]`, of B
    /// `b[r·ldb .. r·ldb + n]`.
    pub fn add(&mut self, rows: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize) {
        let (m, n) = (self.m, self.n);
        if rows == 0 || m == 0 || n == 0 {
            return;
        }
        assert!(lda >= m && ldb >= n, "AtB: strides smaller than the rows");
        assert!(a.len() >= (rows - 1) * lda + m && b.len() >= (rows - 1) * ldb + n, "AtB: A or B too short");
        let isa = isa::current();
        let mut r0 = 0;
        while r0 < rows {
            let kc = KC.min(rows - r0);
            // Transpose the A chunk: at[i, kk] = A[r0 + kk, i].
            for kk in 0..kc {
                let src = &a[(r0 + kk) * lda..(r0 + kk) * lda + m];
                for (i, &v) in src.iter().enumerate() {
                    self.at[i * kc + kk] = v;
                }
            }
            let bp = &mut self.bp[..gemm::packed_len(kc, n)];
            let panels = n.div_ceil(NR);
            for p in 0..panels {
                let cols = NR.min(n - p * NR);
                let panel = &mut bp[p * kc * NR..(p + 1) * kc * NR];
                for kk in 0..kc {
                    let src = &b[(r0 + kk) * ldb + p * NR..(r0 + kk) * ldb + p * NR + cols];
                    let dst = &mut panel[kk * NR..kk * NR + NR];
                    dst[..cols].copy_from_slice(src);
                    dst[cols..].fill(0.0);
                }
            }
            let mm = Mm {
                m,
                n,
                kc,
                a: self.at.as_ptr(),
                lda: kc,
                b: bp.as_ptr(),
                panel_stride: kc * NR,
                c: self.c.as_mut_ptr(),
                ldc: n,
                bias: std::ptr::null(),
                act: Act::None,
                first: !self.started,
                last: true,
            };
            // SAFETY: at holds m×kc, bp the packed kc×n, c m×n; all checked above.
            unsafe { gemm::run_mm(isa, &mm) };
            self.started = true;
            r0 += kc;
        }
    }
}

/// `c[m, n] = Aᵀ·B` over `k` rows (see [`AtB::add`] for the strides), split over `threads`.
#[allow(clippy::too_many_arguments)]
pub fn at_b(k: usize, m: usize, n: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], threads: usize) {
    assert_eq!(c.len(), m * n, "at_b: C length");
    let threads = super::threads_for(k * m * n, threads);
    let parts = super::map_parts(k, threads, |r| {
        let mut acc = AtB::new(m, n);
        if !r.is_empty() {
            acc.add(r.len(), &a[r.start * lda..], lda, &b[r.start * ldb..], ldb);
        }
        acc.c
    });
    super::reduce_into(parts, c);
}
