//! `C[m, n] = Aᵀ·B` for `A [k, m]` and `B [k, n]` given as rows over a long `k`: the product
//! behind every weight gradient (`k` is the number of output pixels, up to `n·oh·ow`).
//!
//! The `k` range is cut into chunks of [`KC`] rows (A and B chunks stay in L2). With AVX-512, a
//! dedicated micro-kernel reads both straight from their NHWC rows: a 12 × 32 tile of `C` in
//! registers, per row `p` two loads of `B[p, j..j+32]` and twelve broadcasts of
//! `A[p, i..i+12]` (no transpose, no packing: those copies cost more than the products when the
//! channel counts are small and the pixel count large, as in the first layers). Otherwise each
//! chunk's `A` is transposed and its `B` packed for the gemm's micro-kernels. Threads take
//! disjoint `k` ranges with their own partial `C`, summed in order at the end.

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
        // The transpose and packing buffers are only for the non-AVX-512 path (made on first use).
        AtB { m, n, c: vec![0.0; m * n], at: Vec::new(), bp: Vec::new(), started: false }
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
        #[cfg(target_arch = "x86_64")]
        if isa == isa::Isa::Avx512 {
            let mut r0 = 0;
            while r0 < rows {
                let kc = KC.min(rows - r0);
                // SAFETY: the rows r0..r0+kc of A and B are inside the slices (checked above);
                // C is m×n.
                unsafe { avx512::at_b_chunk(kc, m, n, a.as_ptr().add(r0 * lda), lda, b.as_ptr().add(r0 * ldb), ldb, self.c.as_mut_ptr(), !self.started) };
                self.started = true;
                r0 += kc;
            }
            return;
        }
        if self.at.is_empty() {
            self.at = vec![0.0; m * KC];
            self.bp = vec![0.0; gemm::packed_len(KC, n)];
        }
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

/// Packs B `[k, n]` into the gemm's panels (`out.len() == gemm::packed_len(k, n)`), given
/// row-major with row stride `ldb` (`B[kk, j] = b[kk·ldb + j]`), or transposed
/// (`B[kk, j] = b[j·ldb + kk]`, e.g. OIHW pointwise weights for the forward product). Copies
/// whole 16-float rows, and 16 × 16 blocks when transposing, instead of one element at a time:
/// the trainer re-packs every weight after every update.
pub fn pack_b(k: usize, n: usize, b: &[f32], ldb: usize, trans: bool, out: &mut [f32]) {
    assert_eq!(out.len(), gemm::packed_len(k, n), "pack_b: packed length");
    if k == 0 || n == 0 {
        return;
    }
    if trans {
        assert!(ldb >= k && b.len() >= (n - 1) * ldb + k, "pack_b: B too short");
    } else {
        assert!(ldb >= n && b.len() >= (k - 1) * ldb + n, "pack_b: B too short");
    }
    for p in 0..n.div_ceil(NR) {
        let cols = NR.min(n - p * NR);
        let panel = &mut out[p * k * NR..(p + 1) * k * NR];
        if !trans {
            for kk in 0..k {
                let dst = &mut panel[kk * NR..(kk + 1) * NR];
                dst[..cols].copy_from_slice(&b[kk * ldb + p * NR..][..cols]);
                dst[cols..].fill(0.0);
            }
        } else {
            if cols < NR {
                panel.fill(0.0);
            }
            let mut k0 = 0;
            while k0 < k {
                let kb = NR.min(k - k0);
                for jj in 0..cols {
                    let src = &b[(p * NR + jj) * ldb + k0..][..kb];
                    for (t, &v) in src.iter().enumerate() {
                        panel[(k0 + t) * NR + jj] = v;
                    }
                }
                k0 += kb;
            }
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

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Rows of C (columns of A) per register tile.
    const MR: usize = 12;

    macro_rules! dispatch {
        ($rows:expr, $v:expr, $call:ident; $($r:literal)*) => {
            match ($rows, $v) {
                $( ($r, 2) => $call::<$r, 2>, ($r, _) => $call::<$r, 1>, )*
                _ => unreachable!(),
            }
        };
    }

    /// `C[m, n] (= or +=) Σ_{p < kc} A[p, ·]ᵀ B[p, ·]` (C row stride n).
    ///
    /// # Safety
    /// A and B must hold `kc` rows of at least `m` / `n` values at strides `lda` / `ldb`;
    /// C must hold m×n; the CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn at_b_chunk(kc: usize, m: usize, n: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, first: bool) {
        let mut i0 = 0;
        while i0 < m {
            let rows = MR.min(m - i0);
            let mut j0 = 0;
            while j0 < n {
                let cols = 32.min(n - j0);
                let v = if cols > 16 { 2 } else { 1 };
                let f = dispatch!(rows, v, tile; 1 2 3 4 5 6 7 8 9 10 11 12);
                f(kc, a.add(i0), lda, b.add(j0), ldb, c.add(i0 * n + j0), n, cols, first);
                j0 += 32;
            }
            i0 += MR;
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const V: usize>(kc: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, cols: usize, first: bool) {
        let mut masks = [0xffffu16; V];
        for (v, mk) in masks.iter_mut().enumerate() {
            let cv = cols.saturating_sub(v * 16).min(16);
            *mk = ((1u32 << cv) - 1) as u16;
        }
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        if !first {
            for (r, row) in acc.iter_mut().enumerate() {
                for v in 0..V {
                    row[v] = _mm512_maskz_loadu_ps(masks[v], c.add(r * ldc + v * 16));
                }
            }
        }
        for p in 0..kc {
            let bp = b.add(p * ldb);
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_maskz_loadu_ps(masks[v], bp.add(v * 16));
            }
            let ap = a.add(p * lda);
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*ap.add(r));
                for v in 0..V {
                    row[v] = _mm512_fmadd_ps(av, bv[v], row[v]);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for v in 0..V {
                _mm512_mask_storeu_ps(c.add(r * ldc + v * 16), masks[v], row[v]);
            }
        }
    }
}
