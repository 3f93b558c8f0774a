//! The portable micro-kernel: plain Rust over fixed-size arrays, written so LLVM vectorizes the
//! 16-wide column loop for whatever the target offers (SSE2 on baseline x86-64, NEON on aarch64).

use super::{for_each_group, sweep_with, Mm, Tile, A_LDA, NR};
use crate::kernels::Act;

/// Rows per register tile.
pub(crate) const MR: usize = 4;

type Row = [f32; NR];

pub(crate) unsafe fn sweep(mm: &Mm) {
    sweep_with(mm, MR, 1, |t, rows, panels| match rows {
        4 => row_tile::<4>(t, panels),
        3 => row_tile::<3>(t, panels),
        2 => row_tile::<2>(t, panels),
        _ => row_tile::<1>(t, panels),
    });
}

/// `R` rows across `panels` panels, one at a time.
#[inline]
unsafe fn row_tile<const R: usize>(t: &Tile, panels: usize) {
    for_each_group(t, panels, 1, |t, _| tile::<R>(t));
}

/// `acc += a · b`, lane-wise (a separate function so each row's update vectorizes on its own).
#[inline(always)]
fn axpy(acc: &mut Row, a: f32, b: &Row) {
    for j in 0..NR {
        acc[j] += a * b[j];
    }
}

/// `R` rows × one panel.
#[inline(always)]
unsafe fn tile<const R: usize>(t: &Tile) {
    let cols = t.cols.min(NR);
    let c = t.c;
    let mut acc = [[0.0f32; NR]; R];
    if t.first {
        if !t.bias.is_null() {
            let mut bv = [0.0f32; NR];
            for (j, x) in bv.iter_mut().enumerate().take(cols) {
                *x = *t.bias.add(j);
            }
            acc = [bv; R];
        }
    } else {
        for (r, row) in acc.iter_mut().enumerate() {
            for (j, x) in row.iter_mut().enumerate().take(cols) {
                *x = *c.add(r * t.ldc + j);
            }
        }
    }
    // Four named accumulators (not an indexed array) so LLVM keeps each in vector registers;
    // the `R > i` tests are compile-time constants.
    let [mut a0, mut a1, mut a2, mut a3] = [[0.0f32; NR]; 4];
    let rows = [&mut a0, &mut a1, &mut a2, &mut a3];
    for (dst, src) in rows.into_iter().zip(acc.iter()) {
        *dst = *src;
    }
    let at = |kk: usize, r: usize| *t.a.add(r * A_LDA + kk);
    for kk in 0..t.kc {
        let bv: &Row = &*(t.b.add(kk * NR) as *const Row);
        axpy(&mut a0, at(kk, 0), bv);
        if R > 1 {
            axpy(&mut a1, at(kk, 1), bv);
        }
        if R > 2 {
            axpy(&mut a2, at(kk, 2), bv);
        }
        if R > 3 {
            axpy(&mut a3, at(kk, 3), bv);
        }
    }
    for (dst, src) in acc.iter_mut().zip([a0, a1, a2, a3]) {
        *dst = src;
    }
    if t.last {
        match t.act {
            Act::None => {}
            act => acc.iter_mut().for_each(|row| act.apply_slice(row)),
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let dst = c.add(r * t.ldc);
        if cols == NR {
            (dst as *mut Row).write_unaligned(*row);
        } else {
            for (j, x) in row.iter().enumerate().take(cols) {
                *dst.add(j) = *x;
            }
        }
    }
}
