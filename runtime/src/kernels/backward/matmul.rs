//! `C[m, n] = Aᵀ·B` for `A [k, m]` and `B [k, n]` given as rows over a long `k`: the product
//! behind every weight gradient (`k` is the number of output pixels, up to `n·oh·ow`).
//!
//! The `k` range is cut into chunks of [`chunk_rows`] rows (at most [`KC`]; fewer for wide B,
//! so the packed B chunk stays in L2). Each chunk's A and B are packed first: the NHWC rows
//! sit `m` and `n` floats apart, which for MobileNet's widths is a multiple of 2 KiB, so
//! reading a tile straight from them would map every row to the same few L1 sets. With
//! AVX-512 a dedicated micro-kernel then keeps a 12 × 32 tile of `C` in registers (per row `p`
//! two loads of packed B and twelve broadcasts of packed A). Otherwise each chunk's `A` is
//! transposed and its `B` packed for the gemm's micro-kernels.
//!
//! Threads take disjoint row blocks of `C` and each runs the whole `k` range in the same chunk
//! order, so every element is the same sum in the same order for any thread count (no partial
//! sums, no reduction).

use super::super::gemm::{self, Mm, NR};
use super::super::threads::{split_rows, SendPtr};
use super::super::{isa, Act};

/// The most rows of `k` per chunk.
pub const KC: usize = 256;

/// Rows of `C` per AVX-512 register tile (and per packed A panel).
const MR: usize = 12;

/// Rows of `k` per chunk for `n` columns of B: the packed B chunk stays within ~384 KiB of L2
/// (a multiple of 8, at least 32, at most [`KC`]). Depends on `n` only, never on threads.
pub fn chunk_rows(n: usize) -> usize {
    ((96 * 1024 / n.max(1)) / 8 * 8).clamp(32, KC)
}

/// Accumulates `C += Aᵀ·B` chunk by chunk.
pub struct AtB {
    pub m: usize,
    pub n: usize,
    /// `[m, n]` row-major.
    pub c: Vec<f32>,
    scratch: Scratch,
    started: bool,
}

impl AtB {
    pub fn new(m: usize, n: usize) -> AtB {
        AtB { m, n, c: vec![0.0; m * n], scratch: Scratch::default(), started: false }
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
        // SAFETY: A and B hold `rows` rows at their strides (checked above); C is m×n.
        unsafe { at_b_rows(rows, m, n, a.as_ptr(), lda, b.as_ptr(), ldb, self.c.as_mut_ptr(), n, !self.started, &mut self.scratch) };
        self.started = true;
    }
}

/// Packing buffers, grown on first use.
#[derive(Default)]
struct Scratch {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl Scratch {
    fn sized(&mut self, a: usize, b: usize) -> (&mut [f32], &mut [f32]) {
        if self.a.len() < a {
            self.a = vec![0.0; a];
        }
        if self.b.len() < b {
            self.b = vec![0.0; b];
        }
        (&mut self.a[..a], &mut self.b[..b])
    }
}

/// `C[m, n] (= when first, else +=) Σ_{r < k} A[r, ·]ᵀ B[r, ·]`, chunk by chunk in `k` order.
///
/// # Safety
/// A and B must hold `k` rows of at least `m` / `n` values at strides `lda` / `ldb`; C must
/// hold `m` rows of `n` at stride `ldc`.
#[allow(clippy::too_many_arguments)]
unsafe fn at_b_rows(k: usize, m: usize, n: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, first: bool, scratch: &mut Scratch) {
    let isa = isa::current();
    let kcmax = chunk_rows(n).min(k);
    let mut r0 = 0;
    while r0 < k {
        let kc = kcmax.min(k - r0);
        let bchunk = std::slice::from_raw_parts(b.add(r0 * ldb), (kc - 1) * ldb + n);
        let achunk = std::slice::from_raw_parts(a.add(r0 * lda), (kc - 1) * lda + m);
        let first_chunk = first && r0 == 0;
        #[cfg(target_arch = "x86_64")]
        if isa == isa::Isa::Avx512 && !packs(lda, ldb) {
            avx512::at_b_direct(kc, m, n, achunk.as_ptr(), lda, bchunk.as_ptr(), ldb, c, ldc, first_chunk);
            r0 += kc;
            continue;
        }
        #[cfg(target_arch = "x86_64")]
        if isa == isa::Isa::Avx512 {
            let (ap, bp) = scratch.sized(m.div_ceil(MR) * MR * kc, gemm::packed_len(kc, n));
            gemm::pack_strided(kc, n, bchunk, ldb, false, bp);
            pack_a_panels(kc, m, achunk, lda, ap);
            avx512::at_b_packed(kc, m, n, ap, bp, c, ldc, first_chunk);
            r0 += kc;
            continue;
        }
        let (at, bp) = scratch.sized(m * kc, gemm::packed_len(kc, n));
        // Transpose the A chunk: at[i, kk] = A[r0 + kk, i].
        for kk in 0..kc {
            for (i, &v) in achunk[kk * lda..kk * lda + m].iter().enumerate() {
                at[i * kc + kk] = v;
            }
        }
        gemm::pack_strided(kc, n, bchunk, ldb, false, bp);
        let mm = Mm {
            m,
            n,
            kc,
            a: at.as_ptr(),
            lda: kc,
            a_chunk: 0,
            b: bp.as_ptr(),
            panel_stride: kc * NR,
            c,
            ldc,
            bias: std::ptr::null(),
            act: Act::None,
            first: first_chunk,
            last: true,
        };
        // SAFETY: at holds m×kc, bp the packed kc×n, C m rows at ldc (the caller's promise).
        gemm::run_mm(isa, &mm);
        r0 += kc;
    }
}

/// Whether the AVX-512 path packs A and B or reads them in place. Rows 1 KiB or more apart
/// alias in L1 (and the 1×1-pixel layers' rows are 2-4 KiB apart: reading them in place ran
/// at half the speed); closer rows are read in place, where packing would only add copies of
/// the long, narrow early-layer operands.
fn packs(lda: usize, ldb: usize) -> bool {
    lda.max(ldb) >= 256
}

/// Packs the A chunk `[kc, m]` (row stride `lda`) into panels of [`MR`] columns: panel `q`
/// holds `A[p, 12q..12q+12]` for every `p` as `kc` rows of 12 (`out.len() ≥ ⌈m/12⌉·12·kc`;
/// the tail panel's missing columns are left unread).
fn pack_a_panels(kc: usize, m: usize, a: &[f32], lda: usize, out: &mut [f32]) {
    for q in 0..m.div_ceil(MR) {
        let cols = MR.min(m - q * MR);
        let panel = &mut out[q * MR * kc..(q + 1) * MR * kc];
        if cols == MR {
            // Constant-length copies (inlined moves, not a memcpy call per 12 floats).
            for (p, dst) in panel.chunks_exact_mut(MR).enumerate() {
                let src: &[f32; MR] = a[p * lda + q * MR..][..MR].try_into().expect("12 floats");
                dst.copy_from_slice(src);
            }
        } else {
            for p in 0..kc {
                panel[p * MR..p * MR + cols].copy_from_slice(&a[p * lda + q * MR..][..cols]);
            }
        }
    }
}

/// `c[m, n] = Aᵀ·B` over `k` rows (see [`AtB::add`] for the strides), split over `threads` by
/// blocks of rows of `C` (bit-identical for any thread count).
#[allow(clippy::too_many_arguments)]
pub fn at_b(k: usize, m: usize, n: usize, a: &[f32], lda: usize, b: &[f32], ldb: usize, c: &mut [f32], threads: usize) {
    assert_eq!(c.len(), m * n, "at_b: C length");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(0.0);
        return;
    }
    assert!(lda >= m && ldb >= n, "at_b: strides smaller than the rows");
    assert!(a.len() >= (k - 1) * lda + m && b.len() >= (k - 1) * ldb + n, "at_b: A or B too short");
    let panels = m.div_ceil(MR);
    let threads = super::threads_for(k * m * n, threads);
    let cp = SendPtr(c.as_mut_ptr());
    split_rows(panels, threads, |q| {
        let rows = q.start * MR..(q.end * MR).min(m);
        let mut scratch = Scratch::default();
        // SAFETY: bounds checked above; each part writes the C rows of its own panels.
        unsafe { at_b_rows(k, rows.len(), n, a.as_ptr().add(rows.start), lda, b.as_ptr(), ldb, { cp }.0.add(rows.start * n), n, true, &mut scratch) };
    });
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::super::gemm::{self, NR};
    use super::MR;

    macro_rules! dispatch {
        ($rows:expr, $v:expr, $call:ident; $($r:literal)*) => {
            match ($rows, $v) {
                $( ($r, 2) => $call::<$r, 2>, ($r, _) => $call::<$r, 1>, )*
                _ => unreachable!(),
            }
        };
    }

    /// `C[m, n] (= or +=) Σ_{p < kc} A[p, ·]ᵀ B[p, ·]` from packed A panels
    /// ([`super::pack_a_panels`]) and packed B (the gemm's 16-column panels).
    ///
    /// # Safety
    /// `ap` and `bp` must be packed for `kc`, `m` and `n`; C must hold m rows of n at stride
    /// `ldc`; the CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn at_b_packed(kc: usize, m: usize, n: usize, ap: &[f32], bp: &[f32], c: *mut f32, ldc: usize, first: bool) {
        debug_assert!(ap.len() >= m.div_ceil(MR) * MR * kc && bp.len() >= gemm::packed_len(kc, n));
        let mut i0 = 0;
        while i0 < m {
            let rows = MR.min(m - i0);
            let a = ap.as_ptr().add(i0 * kc);
            let mut j0 = 0;
            while j0 < n {
                let cols = 32.min(n - j0);
                let v = if cols > 16 { 2 } else { 1 };
                let f = dispatch!(rows, v, tile; 1 2 3 4 5 6 7 8 9 10 11 12);
                f(kc, a, MR, bp.as_ptr().add(j0 * kc), NR, kc * NR, c.add(i0 * ldc + j0), ldc, cols, first);
                j0 += 32;
            }
            i0 += MR;
        }
    }

    /// [`at_b_packed`] reading A and B in place (rows `lda` / `ldb` apart).
    ///
    /// # Safety
    /// A and B must hold `kc` rows of at least `m` / `n` values at strides `lda` / `ldb`;
    /// C must hold m rows of n at stride `ldc`; the CPU must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn at_b_direct(kc: usize, m: usize, n: usize, a: *const f32, lda: usize, b: *const f32, ldb: usize, c: *mut f32, ldc: usize, first: bool) {
        let mut i0 = 0;
        while i0 < m {
            let rows = MR.min(m - i0);
            let mut j0 = 0;
            while j0 < n {
                let cols = 32.min(n - j0);
                let v = if cols > 16 { 2 } else { 1 };
                let f = dispatch!(rows, v, tile; 1 2 3 4 5 6 7 8 9 10 11 12);
                f(kc, a.add(i0), lda, b.add(j0), ldb, 16, c.add(i0 * ldc + j0), ldc, cols, first);
                j0 += 32;
            }
            i0 += MR;
        }
    }

    /// One `R × 16V` tile of `C (= or +=) Σ_p A[p, ·]ᵀ B[p, ·]`: per row `p`, `V` masked loads
    /// of B (row `p` at `b + p·b_step`, its panels `b_panel` apart) and `R` broadcasts of A
    /// (row `p` at `a + p·a_step`). In place: steps `lda` / `ldb`, panels 16 apart; packed:
    /// steps [`MR`] / `NR`, panels `kc·NR` apart.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const V: usize>(kc: usize, a: *const f32, a_step: usize, b: *const f32, b_step: usize, b_panel: usize, c: *mut f32, ldc: usize, cols: usize, first: bool) {
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
            let bp = b.add(p * b_step);
            let mut bv = [_mm512_setzero_ps(); V];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_maskz_loadu_ps(masks[v], bp.add(v * b_panel));
            }
            let ap = a.add(p * a_step);
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
