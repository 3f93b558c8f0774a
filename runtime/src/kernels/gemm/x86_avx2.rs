//! AVX2+FMA micro-kernels: tiles of up to 6 rows × 16 columns (one B panel as two ymm halves,
//! 12 ymm accumulators).

use std::arch::x86_64::*;

use super::{for_each_group, sweep_with, Mm, Tile, A_LDA, NR};
use crate::kernels::Act;

/// Rows per full register tile.
pub(crate) const MR: usize = 6;
/// How many k steps ahead B is prefetched into L1.
const PF_B: usize = 8;

#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn sweep(mm: &Mm) {
    sweep_with(mm, MR, 1, |t, rows, panels| match rows {
        6 => row_tile::<6>(t, panels),
        5 => row_tile::<5>(t, panels),
        4 => row_tile::<4>(t, panels),
        3 => row_tile::<3>(t, panels),
        2 => row_tile::<2>(t, panels),
        _ => row_tile::<1>(t, panels),
    });
}

/// `R` rows across `panels` panels.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_tile<const R: usize>(t: &Tile, panels: usize) {
    for_each_group(t, panels, 1, |t, _| tile::<R>(t));
}

#[inline]
#[target_feature(enable = "avx2,fma")]
/// `R` rows × one panel.
unsafe fn tile<const R: usize>(t: &Tile) {
    let cols = t.cols.min(NR) as i32;
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    // Lane masks (sign bit set where the column exists) for the two 8-wide halves.
    let masks = [
        _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane),
        _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane),
    ];
    let full = cols as usize == NR;
    let c = t.c;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    if t.first {
        if !t.bias.is_null() {
            for h in 0..2 {
                let bv = _mm256_maskload_ps(t.bias.add(h * 8), masks[h]);
                for row in acc.iter_mut() {
                    row[h] = bv;
                }
            }
        }
    } else {
        for (r, row) in acc.iter_mut().enumerate() {
            for h in 0..2 {
                row[h] = _mm256_maskload_ps(c.add(r * t.ldc + h * 8), masks[h]);
            }
        }
    }
    for kk in 0..t.kc {
        let bk = t.b.add(kk * NR);
        // As on AVX-512: B's rows are fetched into L1 a few k steps ahead.
        _mm_prefetch::<_MM_HINT_T0>(bk.wrapping_add(PF_B * NR) as *const i8);
        let b0 = _mm256_loadu_ps(bk);
        let b1 = _mm256_loadu_ps(bk.add(8));
        for r in 0..R {
            let av = _mm256_broadcast_ss(&*t.a.add(r * A_LDA + kk));
            acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    if t.last {
        match t.act {
            Act::None => {}
            Act::Relu => {
                let z = _mm256_setzero_ps();
                for row in acc.iter_mut() {
                    for x in row.iter_mut() {
                        *x = _mm256_max_ps(*x, z);
                    }
                }
            }
            Act::Clip { min, max } => {
                let (lo, hi) = (_mm256_set1_ps(min), _mm256_set1_ps(max));
                for row in acc.iter_mut() {
                    for x in row.iter_mut() {
                        *x = _mm256_min_ps(_mm256_max_ps(*x, lo), hi);
                    }
                }
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for h in 0..2 {
            let dst = c.add(r * t.ldc + h * 8);
            if full {
                _mm256_storeu_ps(dst, row[h]);
            } else {
                _mm256_maskstore_ps(dst, masks[h], row[h]);
            }
        }
    }
}
