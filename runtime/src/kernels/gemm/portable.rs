//! The portable micro-kernel: plain Rust over fixed-size arrays, written so LLVM vectorizes the
//! 16-wide column loop for whatever the target offers (SSE2 on baseline x86-64, NEON on aarch64).

use super::{sweep_with, Mm, NR};
use crate::kernels::Act;

/// Rows per register tile.
pub(crate) const MR: usize = 4;

pub(crate) unsafe fn sweep(mm: &Mm) {
    sweep_with(mm, MR, 1, |i0, rows, p, _| match rows {
        4 => tile::<4>(mm, i0, p),
        3 => tile::<3>(mm, i0, p),
        2 => tile::<2>(mm, i0, p),
        _ => tile::<1>(mm, i0, p),
    });
}

#[inline(always)]
unsafe fn tile<const R: usize>(mm: &Mm, i0: usize, p: usize) {
    let cols = (mm.n - p * NR).min(NR);
    let a = mm.a.add(i0 * mm.lda);
    let b = mm.b.add(p * mm.panel_stride);
    let c = mm.c.add(i0 * mm.ldc + p * NR);
    let mut acc = [[0.0f32; NR]; R];
    if mm.first {
        if !mm.bias.is_null() {
            let mut bv = [0.0f32; NR];
            for (j, x) in bv.iter_mut().enumerate().take(cols) {
                *x = *mm.bias.add(p * NR + j);
            }
            acc = [bv; R];
        }
    } else {
        for (r, row) in acc.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().enumerate().take(cols) {
                *x = *c.add(r * mm.ldc + j);
            }
        }
    }
    for kk in 0..mm.kc {
        let bv: &[f32; NR] = &*(b.add(kk * NR) as *const [f32; NR]);
        for (r, row) in acc.iter_mut().enumerate() {
            let av = *a.add(r * mm.lda + kk);
            for j in 0..NR {
                row[j] += av * bv[j];
            }
        }
    }
    if mm.last {
        match mm.act {
            Act::None => {}
            act => acc.iter_mut().for_each(|row| act.apply_slice(row)),
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let dst = c.add(r * mm.ldc);
        if cols == NR {
            (dst as *mut [f32; NR]).write_unaligned(*row);
        } else {
            for (j, x) in row.iter().enumerate().take(cols) {
                *dst.add(j) = *x;
            }
        }
    }
}
