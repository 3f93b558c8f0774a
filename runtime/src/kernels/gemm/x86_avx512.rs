//! AVX-512F micro-kernels: tiles of up to 14 rows × 32 columns (two B panels, 28 zmm
//! accumulators); each A element is broadcast once per row and k step (inside the FMAs for
//! rows 0-3 of the full tile, see `k_loop_14x2`).
//! Fourteen rows, not twelve: 14 divides every row width of MobileNet's 224 input from
//! 112 down to 14, so a band of whole image rows has no short tile left over (a 14×14 layer
//! was 16 tiles of 12 and one of 4); 1.1-1.4% faster on the whole 1.0-224.

use std::arch::x86_64::*;

use super::{for_each_group, sweep_with, Mm, Tile, A_LDA, NR};
use crate::kernels::Act;

/// Rows per full register tile (28 accumulators, 2 B rows and a broadcast: 31 of 32 zmm).
pub(crate) const MR: usize = 14;
/// Panels (16 columns each) per full register tile.
pub(crate) const NV: usize = 2;
/// How many k steps ahead B is prefetched into L1.
const PF_B: usize = 8;
/// The same distance for the full tile's assembly loop, in bytes: 16 k steps, which measured
/// 4% faster than 8 on the 7×7 layers (whose B comes from L3) and the same elsewhere.
const PF_B_BYTES: usize = 16 * NR * 4;

macro_rules! dispatch {
    ($t:expr, $rows:expr, $panels:expr; $($r:literal)*) => {
        match $rows {
            $(
                $r => row_tile::<$r>($t, $panels),
            )*
            _ => unreachable!(),
        }
    };
}

#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn sweep(mm: &Mm) {
    sweep_with(mm, MR, NV, |t, rows, panels| dispatch!(t, rows, panels; 1 2 3 4 5 6 7 8 9 10 11 12 13 14));
}

/// `R` rows across `panels` panels, two at a time.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn row_tile<const R: usize>(t: &Tile, panels: usize) {
    if R == 1 {
        // A matrix-vector product (a dense layer at batch 1): bound by streaming B, so up to
        // eight panels at once, for eight independent streams and sums.
        for_each_group(t, panels, 8, |t, v| match v {
            8 => tile::<1, 8>(t),
            7 => tile::<1, 7>(t),
            6 => tile::<1, 6>(t),
            5 => tile::<1, 5>(t),
            4 => tile::<1, 4>(t),
            3 => tile::<1, 3>(t),
            2 => tile::<1, 2>(t),
            _ => tile::<1, 1>(t),
        });
        return;
    }
    for_each_group(t, panels, NV, |t, v| if v == 2 { tile::<R, 2>(t) } else { tile::<R, 1>(t) });
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
    let mut k0 = 0;
    if R == MR && V == NV && t.kc >= 2 {
        let pairs = t.kc / 2;
        // `R`, `V` are these: the cast only names the type.
        let acc14 = &mut *(&mut acc as *mut [[__m512; V]; R]).cast::<[[__m512; 2]; 14]>();
        if t.pf_step == 0 {
            k_loop_14x2::<false>(acc14, t.a, t.b, ps, pairs, t.pf, 0);
        } else {
            k_loop_14x2::<true>(acc14, t.a, t.b, ps, pairs, t.pf, t.pf_step);
        }
        k0 = 2 * pairs;
    }
    for kk in k0..t.kc {
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

/// The k loop of the full 14 × 32 tile (`tile::<14, 2>`), two k steps per iteration: `pairs`
/// pairs from `a` (rows [`A_LDA`] apart) and `b` (panels `ps` floats apart).
///
/// In assembly because of what the compiled loop could not do: for a 12-row tile it spent 43
/// µops per 24 FMAs (12 broadcasts, 2 B loads, 2 prefetches, loop control), near the
/// 4-per-cycle rename limit of this core against the FMA units' 12 cycles. Here loop control
/// is paid once per two k steps. Same operations in the same order as the Rust loop, so the
/// sums are bit-identical. In-process A/B on the whole 1.0-224 (one thread, generated code,
/// 12-row tiles): 6.5% faster at the median, in the phases where the other hyperthread of this
/// core is busy (it shares the front end).
///
/// Rows 0-3 take their A element as an embedded broadcast inside the FMA (one fused µop per
/// FMA, but a load each); rows 4-13 broadcast it once into a register for their two FMAs. Per
/// k step: 43.5 µops and 22 loads for 28 FMAs, against 47.5 and 18 with every row through the
/// register. Which is faster depends on this machine's phase: in its slow minutes (the other
/// hyperthread busy, µops scarce) 4 embedded rows ran the whole 1.0-224 3.5% faster; in its
/// fast minutes 1-2% slower (two builds alternating, 3 × 400 pairs, split by phase). Over the
/// mix of phases 0.969-0.977, so 4; 7 embedded rows measured 1-1.5% slower than 4.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn k_loop_14x2<const AHEAD: bool>(acc: &mut [[__m512; 2]; 14], a: *const f32, b: *const f32, ps: usize, pairs: usize, pf: *const f32, pf_step: usize) {
    const { assert!(MR == 14 && NV == 2 && A_LDA * 4 * 13 < i32::MAX as usize) };
    debug_assert!(pairs > 0);
    // One k step: `$kb` bytes into the B rows, `$ka` bytes into the A rows.
    macro_rules! k_step {
        ($kb:literal, $ka:literal) => {
            concat!(
                "vmovups {b0}, [{b} + ", $kb, "]\n",
                "vmovups {b1}, [{b} + {ps} + ", $kb, "]\n",
                "prefetcht0 [{b} + {pf} + ", $kb, "]\n",
                "prefetcht0 [{b} + {ps} + {pf} + ", $kb, "]\n",
                embedded!($ka; 0 1 2 3),
                broadcast!($ka; 4 5 6 7 8 9 10 11 12 13),
            )
        };
    }
    // Rows whose A element is broadcast inside the FMA (one fused µop each, a load per FMA).
    macro_rules! embedded {
        ($ka:literal; $($r:literal)*) => {
            concat!($(
                "vfmadd231ps {c", $r, "0}, {b0}, dword ptr [{a} + {r", $r, "} + ", $ka, "]{{1to16}}\n",
                "vfmadd231ps {c", $r, "1}, {b1}, dword ptr [{a} + {r", $r, "} + ", $ka, "]{{1to16}}\n",
            )*)
        };
    }
    // Each row's A element goes through the broadcast register `t`.
    macro_rules! broadcast {
        ($ka:literal; $($r:literal)*) => {
            concat!($(
                "vbroadcastss {t}, dword ptr [{a} + {r", $r, "} + ", $ka, "]\n",
                "vfmadd231ps {c", $r, "0}, {b0}, {t}\n",
                "vfmadd231ps {c", $r, "1}, {b1}, {t}\n",
            )*)
        };
    }
    macro_rules! k_loop {
        ($($ahead:literal),*) => {
            std::arch::asm!(
                "2:",
                k_step!("0", "0"),
                k_step!("64", "4"),
                $($ahead,)*
                "add {a}, 8",
                "add {b}, 128",
                "dec {n}",
                "jnz 2b",
                a = inout(reg) a => _,
                b = inout(reg) b => _,
                n = inout(reg) pairs => _,
                pn = inout(reg) pf => _,
                pstep = in(reg) pf_step,
                ps = in(reg) ps * 4,
                pf = const PF_B_BYTES,
                r0 = const 0,
                r1 = const A_LDA * 4,
                r2 = const 2 * A_LDA * 4,
                r3 = const 3 * A_LDA * 4,
                r4 = const 4 * A_LDA * 4,
                r5 = const 5 * A_LDA * 4,
                r6 = const 6 * A_LDA * 4,
                r7 = const 7 * A_LDA * 4,
                r8 = const 8 * A_LDA * 4,
                r9 = const 9 * A_LDA * 4,
                r10 = const 10 * A_LDA * 4,
                r11 = const 11 * A_LDA * 4,
                r12 = const 12 * A_LDA * 4,
                r13 = const 13 * A_LDA * 4,
                b0 = out(zmm_reg) _,
                b1 = out(zmm_reg) _,
                t = out(zmm_reg) _,
                c00 = inout(zmm_reg) acc[0][0],
                c01 = inout(zmm_reg) acc[0][1],
                c10 = inout(zmm_reg) acc[1][0],
                c11 = inout(zmm_reg) acc[1][1],
                c20 = inout(zmm_reg) acc[2][0],
                c21 = inout(zmm_reg) acc[2][1],
                c30 = inout(zmm_reg) acc[3][0],
                c31 = inout(zmm_reg) acc[3][1],
                c40 = inout(zmm_reg) acc[4][0],
                c41 = inout(zmm_reg) acc[4][1],
                c50 = inout(zmm_reg) acc[5][0],
                c51 = inout(zmm_reg) acc[5][1],
                c60 = inout(zmm_reg) acc[6][0],
                c61 = inout(zmm_reg) acc[6][1],
                c70 = inout(zmm_reg) acc[7][0],
                c71 = inout(zmm_reg) acc[7][1],
                c80 = inout(zmm_reg) acc[8][0],
                c81 = inout(zmm_reg) acc[8][1],
                c90 = inout(zmm_reg) acc[9][0],
                c91 = inout(zmm_reg) acc[9][1],
                c100 = inout(zmm_reg) acc[10][0],
                c101 = inout(zmm_reg) acc[10][1],
                c110 = inout(zmm_reg) acc[11][0],
                c111 = inout(zmm_reg) acc[11][1],
                c120 = inout(zmm_reg) acc[12][0],
                c121 = inout(zmm_reg) acc[12][1],
                c130 = inout(zmm_reg) acc[13][0],
                c131 = inout(zmm_reg) acc[13][1],
                options(nostack, readonly),
            )
        };
    }
    // The next block's prefetch (see `Ahead` in the sweep) costs 2 µops per 2 k steps, so
    // only tiles that have one pay for it; the other variant names its registers in a comment.
    if AHEAD {
        k_loop!("prefetcht1 [{pn}]", "add {pn}, {pstep}");
    } else {
        k_loop!("# {pn} {pstep}");
    }
}
