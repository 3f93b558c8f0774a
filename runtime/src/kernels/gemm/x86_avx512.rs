//! AVX-512F micro-kernels: tiles of up to 12 rows × 32 columns (two B panels, 24 zmm
//! accumulators); A elements are broadcast straight from memory into the FMAs.

use std::arch::x86_64::*;

use super::{sweep_with, Mm, Tile, A_LDA, NR};
use crate::kernels::Act;

/// Rows per full register tile.
pub(crate) const MR: usize = 12;
/// Panels (16 columns each) per full register tile.
pub(crate) const NV: usize = 2;
/// How many k steps ahead B is prefetched into L1.
const PF_B: usize = 8;

macro_rules! dispatch {
    ($t:expr, $rows:expr, $v:expr; $($r:literal)*) => {
        match ($rows, $v) {
            $(
                ($r, 2) => tile::<$r, 2>($t),
                ($r, _) => tile::<$r, 1>($t),
            )*
            _ => unreachable!(),
        }
    };
}

#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn sweep(mm: &Mm) {
    sweep_with(mm, MR, NV, |t, rows, v| dispatch!(t, rows, v; 1 2 3 4 5 6 7 8 9 10 11 12));
}

/// `prefetchw`: the line in L1, owned for writing. (Rust's `_MM_HINT_ET0` needs the unstable
/// `prfchw` target feature; every AVX-512 CPU has the instruction, and older ones run it as a
/// no-op.)
#[inline(always)]
unsafe fn prefetch_write(p: *const f32) {
    std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
}

/// `R` rows × `V` panels.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize, const V: usize>(t: &Tile) {
    let mut masks = [0xffffu16; V];
    for (v, m) in masks.iter_mut().enumerate() {
        let cv = t.cols.saturating_sub(v * NR).min(NR);
        *m = ((1u32 << cv) - 1) as u16;
    }
    let c = t.c;
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    if t.first {
        // C is written after the k loop without being read: ask for its lines now (for
        // writing), so large outputs (the 112×112 layers write 3 MB) do not stall the stores.
        for r in 0..R {
            for v in 0..V {
                prefetch_write(c.add(r * t.ldc + v * NR));
            }
        }
        if !t.bias.is_null() {
            for v in 0..V {
                let bv = _mm512_maskz_loadu_ps(masks[v], t.bias.add(v * NR));
                for row in acc.iter_mut() {
                    row[v] = bv;
                }
            }
        }
    } else {
        for (r, row) in acc.iter_mut().enumerate() {
            for v in 0..V {
                row[v] = _mm512_maskz_loadu_ps(masks[v], c.add(r * t.ldc + v * NR));
            }
        }
    }
    let ps = t.panel_stride;
    for kk in 0..t.kc {
        let bk = t.b.add(kk * NR);
        // B streams from L2 (or L3) one row per k step; fetch it PF_B steps ahead (reading up
        // to PF_B rows past the panel's end is harmless: prefetches never fault).
        for v in 0..V {
            _mm_prefetch::<_MM_HINT_T0>(bk.wrapping_add(PF_B * NR + v * ps) as *const i8);
        }
        let mut bv = [_mm512_setzero_ps(); V];
        for (v, x) in bv.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(bk.add(v * ps));
        }
        for r in 0..R {
            let av = _mm512_set1_ps(*t.a.add(r * A_LDA + kk));
            for v in 0..V {
                acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
            }
        }
    }
    if t.last {
        match t.act {
            Act::None => {}
            Act::Relu => {
                let z = _mm512_setzero_ps();
                for row in acc.iter_mut() {
                    for x in row.iter_mut() {
                        *x = _mm512_max_ps(*x, z);
                    }
                }
            }
            Act::Clip { min, max } => {
                let (lo, hi) = (_mm512_set1_ps(min), _mm512_set1_ps(max));
                for row in acc.iter_mut() {
                    for x in row.iter_mut() {
                        *x = _mm512_min_ps(_mm512_max_ps(*x, lo), hi);
                    }
                }
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for v in 0..V {
            _mm512_mask_storeu_ps(c.add(r * t.ldc + v * NR), masks[v], row[v]);
        }
    }
}
