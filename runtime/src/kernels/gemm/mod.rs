//! The packed matrix product: C[m, n] = act(A[m, k] · B[k, n] + bias[n]).
//!
//! This is the engine behind pointwise convolutions (95% of MobileNet's work), the general conv
//! (after im2col), dense layers and ONNX Gemm/MatMul.
//!
//! - B (the weights) is packed once into column panels of [`NR`] = 16: panel `p` holds columns
//!   `16p..16p+16` for every `k`, as `k`-major rows of 16 (zero-padded past `n`). The layout is
//!   the same for every ISA, so weights packed at compile time run on any micro-kernel.
//! - A is read with any row stride `lda` (for a pointwise conv in NHWC it is the activation
//!   itself). The rows of each register tile are copied, one k chunk at a time, into a small
//!   buffer with a fixed padded stride: the copy is a memcpy reused by every panel of the row,
//!   it keeps the rows in distinct L1 sets, and the micro-kernel then reaches every row at a
//!   constant offset from one pointer (with a run-time stride, computing 12 row addresses per k
//!   step made the loop issue-bound). A caller that can write A in that layout to begin with
//!   (the fused depthwise + pointwise kernel) sets [`Mm::a_chunk`] and nothing is copied.
//! - A micro-kernel computes an `R × (16·V)` register tile over one k chunk, starting from the
//!   bias (first chunk) or from C (later chunks), and applies the activation on the registers
//!   before the one store (last chunk). Chunking k does not change the order of the sums.
//! - Tiles are swept row-block outer, panel inner, within column blocks sized so the B block
//!   stays in L2; the A rows of a tile stay in L1 across the panels. B therefore streams from
//!   L2 at one 64-byte row per panel per k step; the x86 micro-kernels prefetch it a few steps
//!   ahead (without that, profiles showed the loop stalled on the B loads: 1.5-2× slower at
//!   K ≥ 512). When a block has few row tiles, the full tiles also pull the next B block from
//!   memory into L2 while they run ([`Ahead`]).

mod portable;
#[cfg(target_arch = "x86_64")]
mod x86_avx2;
#[cfg(target_arch = "x86_64")]
mod x86_avx512;

use std::ops::Range;

use super::isa::{self, Isa};
use super::threads::{split_rows, split_rows_balanced, SendPtr};
use super::Act;

/// Panel width of packed B (columns per panel), fixed for every ISA.
pub const NR: usize = 16;

/// `x` rounded up to a multiple of `m`.
pub const fn round_up(x: usize, m: usize) -> usize {
    x.div_ceil(m) * m
}

/// Length of B `[k, n]` once packed.
pub const fn packed_len(k: usize, n: usize) -> usize {
    k * round_up(n, NR)
}

/// Packs B given element-wise (`b(kk, j)` = B[kk, j]) into panels; `out.len() == packed_len(k, n)`.
pub fn pack_into(k: usize, n: usize, b: impl Fn(usize, usize) -> f32, out: &mut [f32]) {
    assert_eq!(out.len(), packed_len(k, n), "packed B length");
    let panels = n.div_ceil(NR);
    for p in 0..panels {
        let panel = &mut out[p * k * NR..(p + 1) * k * NR];
        for kk in 0..k {
            for jj in 0..NR {
                let j = p * NR + jj;
                panel[kk * NR + jj] = if j < n { b(kk, j) } else { 0.0 };
            }
        }
    }
}

/// Packs a row-major B: `[k, n]`, or `[n, k]` when `trans` (ONNX Gemm's `transB`).
pub fn pack(k: usize, n: usize, b: &[f32], trans: bool) -> Vec<f32> {
    assert_eq!(b.len(), k * n, "B length");
    let mut out = vec![0.0; packed_len(k, n)];
    pack_strided(k, n, b, if trans { k } else { n }, trans, &mut out);
    out
}

/// Packs B `[k, n]` into the gemm's panels (`out.len() == packed_len(k, n)`), given
/// row-major with row stride `ldb` (`B[kk, j] = b[kk·ldb + j]`), or transposed
/// (`B[kk, j] = b[j·ldb + kk]`, e.g. OIHW pointwise weights for the forward product). Copies
/// whole 16-float rows, and 16 × 16 blocks when transposing, instead of one element at a time:
/// the trainer re-packs every weight after every update.
pub fn pack_strided(k: usize, n: usize, b: &[f32], ldb: usize, trans: bool, out: &mut [f32]) {
    assert_eq!(out.len(), packed_len(k, n), "pack_strided: packed length");
    if k == 0 || n == 0 {
        return;
    }
    if trans {
        assert!(ldb >= k && b.len() >= (n - 1) * ldb + k, "pack_strided: B too short");
    } else {
        assert!(ldb >= n && b.len() >= (k - 1) * ldb + n, "pack_strided: B too short");
    }
    for p in 0..n.div_ceil(NR) {
        let cols = NR.min(n - p * NR);
        let panel = &mut out[p * k * NR..(p + 1) * k * NR];
        if !trans && cols == NR {
            for (kk, dst) in panel.chunks_exact_mut(NR).enumerate() {
                let src: &[f32; NR] = b[kk * ldb + p * NR..][..NR].try_into().expect("16 floats");
                dst.copy_from_slice(src);
            }
        } else if !trans {
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

/// One call of the tile sweep (raw pointers: the callers check bounds once, at entry).
///
/// Rows `0..m` of A start at `a` (row stride `lda`), C rows at `c` (row stride `ldc`); B's
/// panels start at `b` (already offset to the first `k` of this chunk) with `panel_stride`
/// floats between panels; `kc` is the depth of this chunk.
#[derive(Clone, Copy)]
pub(crate) struct Mm {
    pub m: usize,
    pub n: usize,
    pub kc: usize,
    pub a: *const f32,
    pub lda: usize,
    /// 0: A is row-major (rows `lda` apart) and each register tile's rows are copied before
    /// use. Otherwise A is already laid out as copied tiles (the fused kernel writes its
    /// depthwise output so): k chunk `j` (of [`KC`]) starts at `a + j·a_chunk`, rows
    /// [`A_LDA`] apart, and is read in place (`lda` is then unused).
    pub a_chunk: usize,
    pub b: *const f32,
    pub panel_stride: usize,
    pub c: *mut f32,
    pub ldc: usize,
    /// Added when `first` (null: zeros); length ≥ n.
    pub bias: *const f32,
    /// Applied when `last`.
    pub act: Act,
    /// Start from the bias (true) or accumulate onto C (false).
    pub first: bool,
    /// Apply the activation (the last chunk of k).
    pub last: bool,
}

// SAFETY: an `Mm` only describes memory. Code that runs several over threads gives each its
// own rows or column panels of C ([`Mm::panels`]); A, B and the bias are only read.
unsafe impl Send for Mm {}
unsafe impl Sync for Mm {}

impl Mm {
    /// The same product restricted to B's column panels `panels`: B, C and the bias start at
    /// the first of their columns and `n` shrinks to them. This is how layers with few rows
    /// split a product over threads (each thread streams its share of the weights).
    ///
    /// # Safety
    /// `panels` must lie within `0..n.div_ceil(NR)`.
    pub(crate) unsafe fn panels(&self, panels: Range<usize>) -> Mm {
        let cols = panels.start * NR..(panels.end * NR).min(self.n);
        Mm {
            n: cols.len(),
            b: self.b.add(panels.start * self.panel_stride),
            c: self.c.add(cols.start),
            bias: if self.bias.is_null() { self.bias } else { self.bias.add(cols.start) },
            ..*self
        }
    }
}

/// Runs `mm` with its column panels split over `threads` threads (parts write disjoint
/// columns of C, so the result is the same for any thread count).
///
/// # Safety
/// As [`run_mm`].
pub(crate) unsafe fn run_panels(isa: Isa, mm: &Mm, threads: usize) {
    // A few groups of panels per thread, balanced across threads: each panel's weights are
    // streamed once whoever runs it, and A (few rows here) is cheap to copy again. Groups
    // start at even panels: the widest micro-kernels take two panels at a time.
    let panels = mm.n.div_ceil(NR);
    split_rows_balanced(panels.div_ceil(2), 4 * threads, threads, |pairs| run_mm(isa, &mm.panels(2 * pairs.start..(2 * pairs.end).min(panels))));
}

/// Bytes of B kept hot in L2 per column block: a quarter of this machine's 1 MB L2, leaving
/// room for the A band and the C block (at 14×14 × 512 channels these are 400 KB each); half
/// of L2 measured 0.5% slower on the whole 1.0-224.
const L2_BLOCK_BYTES: usize = 256 * 1024;
/// k chunk: a copied A tile (14 × 272 floats, 15 KB) stays in L1 across the B panels.
pub(crate) const KC: usize = 256;
/// Row stride of a copied A tile: 17 cache lines, so its 14 rows fall into 14 distinct L1 sets
/// whatever the source stride (at 2 and 4 KiB strides, in-place rows crowd one set and miss L1
/// on every k step), and micro-kernels address row `r` at a constant offset from one pointer.
pub(crate) const A_LDA: usize = KC + 16;
/// The most rows any micro-kernel takes.
const MR_MAX: usize = 14;

/// One register tile's operands, as the sweep hands them to a micro-kernel.
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    /// A rows of the tile (copied, or laid out so by the caller): row `r` at `a + r·A_LDA`,
    /// unit k stride.
    pub a: *const f32,
    pub kc: usize,
    /// The first B panel of the tile at this k chunk; further panels `panel_stride` apart.
    pub b: *const f32,
    pub panel_stride: usize,
    /// C at the tile's corner.
    pub c: *mut f32,
    pub ldc: usize,
    /// Columns that exist from the tile's first column on (may exceed the tile's width).
    pub cols: usize,
    /// Bias at the tile's first column, or null.
    pub bias: *const f32,
    pub act: Act,
    pub first: bool,
    pub last: bool,
    /// The next B block, which this row tile helps pull into L2 (see [`Ahead`]).
    pub ahead: Ahead,
    /// Set by [`for_each_group`] for each group: where this group's share of the next block
    /// starts, and its step in bytes per pair of k steps (0: nothing to prefetch).
    pub pf: *const f32,
    pub pf_step: usize,
}

/// Blocks swept by more row tiles than this fetch B the usual way (see [`Ahead`]): the first
/// tile's wait on memory is shared by the rest. At 16 (the 14×14 layers, 14 row tiles, too)
/// the whole 1.0-224 measured 1.010 and 0.993 against 4: no gain for the prefetch's µops.
const AHEAD_MAX_ROW_TILES: usize = 4;

/// The B block the sweep will use after the current one, pulled into L2 (`prefetcht1`, one
/// per two k steps of the full tiles' assembly loop) while the current block's tiles run.
///
/// B comes from memory the first time a block is used: with weights of 2-4 MB (the 7×7
/// layers), the first of a block's four row tiles waited on it at about a third of its
/// compute speed. With this, blocks 12 and 13 of 1.0-224 run 7% faster, and the whole model
/// 1.8% in the minutes when this machine runs at full clock, where memory is furthest behind
/// the FMAs; ±0.5% at the slower clock (two builds alternating, 3 × 400 pairs). The
/// prefetches are spread evenly over the block's group calls: a burst of them filled the miss
/// buffers and stalled the loop (two a step measured slower than one). Short row tiles (the
/// 7 rows left at 49) and one-row tiles run the Rust loop, which skips its share.
#[derive(Clone, Copy)]
pub(crate) struct Ahead {
    /// Start of the next block at its k chunk (null: no next block).
    pub b: *const f32,
    pub panels: usize,
    pub panel_stride: usize,
    /// Consecutive group calls that share one panel's piece of the next block (a piece is
    /// contiguous; pieces are a panel stride apart).
    pub calls_per_panel: usize,
    /// Bytes per prefetch (at most a line), so that a panel's calls cover its piece (0: no
    /// prefetching).
    pub step: usize,
    /// Index of this row tile's first group among the block's group calls.
    pub call0: usize,
}

impl Ahead {
    pub(crate) const NONE: Ahead = Ahead { b: std::ptr::null(), panels: 0, panel_stride: 0, calls_per_panel: 1, step: 0, call0: 0 };

    /// The block after the one that ends at panel `pend` of k chunk `k0..k0 + kc` in `mm`'s
    /// sweep (row tiles of `mr`, each in `groups` groups of `nv` panels): the next column block
    /// of the chunk, or the first of the next chunk. `NONE` after the last block, or when the
    /// block has many row tiles.
    fn after(mm: &Mm, mr: usize, nv: usize, k0: usize, kc: usize, pend: usize, groups: usize) -> Ahead {
        let panels = mm.n.div_ceil(NR);
        let row_tiles = mm.m.div_ceil(mr);
        if row_tiles > AHEAD_MAX_ROW_TILES {
            return Ahead::NONE;
        }
        let (start, kc2, count) = if pend < panels {
            (pend * mm.panel_stride + k0 * NR, kc, block_panels(kc, nv).min(panels - pend))
        } else if k0 + kc < mm.kc {
            let kc2 = KC.min(mm.kc - k0 - kc);
            ((k0 + kc) * NR, kc2, block_panels(kc2, nv).min(panels))
        } else {
            return Ahead::NONE;
        };
        let calls_per_panel = (row_tiles * groups / count).max(1);
        Ahead {
            b: mm.b.wrapping_add(start),
            panels: count,
            panel_stride: mm.panel_stride,
            calls_per_panel,
            step: (kc2 * NR * 4).div_ceil(calls_per_panel * (kc / 2).max(1)).min(64),
            call0: 0,
        }
    }

    /// Where group call `j` (of a row tile over k chunk `kc`: one prefetch per two k steps)
    /// prefetches from, and its step in bytes (at most a line per prefetch).
    #[inline(always)]
    fn share(&self, j: usize, kc: usize) -> (*const f32, usize) {
        let panel = j / self.calls_per_panel;
        if self.step == 0 || panel >= self.panels {
            return (self.b, 0);
        }
        let off = j % self.calls_per_panel * (kc / 2) * self.step;
        (self.b.wrapping_add(panel * self.panel_stride).wrapping_byte_add(off), self.step)
    }
}

/// Runs `tile(t, v)` on the register tiles of one row tile: `panels` panels from `t`'s first,
/// in groups of `nv` (the last may have fewer, `v`). Micro-kernels loop here themselves, so
/// the sweep calls them once per row tile rather than once per register tile.
#[inline(always)]
pub(crate) unsafe fn for_each_group(t: &Tile, panels: usize, nv: usize, mut tile: impl FnMut(&Tile, usize)) {
    let mut g = *t;
    let mut p = 0;
    let mut j = t.ahead.call0;
    while p < panels {
        let v = nv.min(panels - p);
        (g.pf, g.pf_step) = t.ahead.share(j, t.kc);
        j += 1;
        tile(&g, v);
        p += v;
        if p < panels {
            g.b = g.b.add(v * g.panel_stride);
            g.c = g.c.add(v * NR);
            g.cols -= v * NR;
            if !g.bias.is_null() {
                g.bias = g.bias.add(v * NR);
            }
        }
    }
}

/// Runs the tile sweep on `isa`.
///
/// # Safety
/// The pointers in `mm` must cover the ranges described on [`Mm`], and `isa` must be supported.
#[inline]
pub(crate) unsafe fn run_mm(isa: Isa, mm: &Mm) {
    if mm.m == 0 || mm.n == 0 {
        return;
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => x86_avx512::sweep(mm),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => x86_avx2::sweep(mm),
        _ => portable::sweep(mm),
    }
}

/// The loop nest shared by every ISA: k chunks of [`KC`], column blocks that fit L2 (a multiple
/// of `nv` panels), row tiles of `mr` (copied into a stack buffer of row stride [`A_LDA`]).
/// `row_tile(t, rows, panels)` computes one row tile across the column block: `rows` rows,
/// `panels` panels from `t`'s (see [`for_each_group`]).
#[inline(always)]
pub(crate) unsafe fn sweep_with(mm: &Mm, mr: usize, nv: usize, mut row_tile: impl FnMut(&Tile, usize, usize)) {
    debug_assert!(mr <= MR_MAX);
    let panels = mm.n.div_ceil(NR);
    // Left uninitialized: micro-kernels read only the `rows × kc` floats copied in below, and
    // zeroing 13 KB on every call cost as much as a small layer's product (the seed's late
    // layers, or the fused kernel's many bands).
    let mut abuf = [std::mem::MaybeUninit::<f32>::uninit(); MR_MAX * A_LDA];
    let in_place = mm.a_chunk != 0;
    let mut k0 = 0;
    loop {
        let kc = KC.min(mm.kc - k0);
        let first = mm.first && k0 == 0;
        let last = mm.last && k0 + kc == mm.kc;
        let block = block_panels(kc, nv);
        let mut pb = 0;
        while pb < panels {
            let pend = (pb + block).min(panels);
            let groups = (pend - pb).div_ceil(nv);
            let mut ahead = Ahead::after(mm, mr, nv, k0, kc, pend, groups);
            let mut i0 = 0;
            while i0 < mm.m {
                let rows = mr.min(mm.m - i0);
                let tile_a = if in_place {
                    mm.a.add(k0 / KC * mm.a_chunk + i0 * A_LDA)
                } else {
                    let a_rows = mm.a.add(i0 * mm.lda + k0);
                    for r in 0..rows {
                        copy_row(a_rows.add(r * mm.lda), abuf.as_mut_ptr().add(r * A_LDA).cast::<f32>(), kc);
                    }
                    abuf.as_ptr().cast::<f32>()
                };
                let t = Tile {
                    a: tile_a,
                    kc,
                    b: mm.b.add(pb * mm.panel_stride + k0 * NR),
                    panel_stride: mm.panel_stride,
                    c: mm.c.add(i0 * mm.ldc + pb * NR),
                    ldc: mm.ldc,
                    cols: mm.n - pb * NR,
                    bias: if mm.bias.is_null() { mm.bias } else { mm.bias.add(pb * NR) },
                    act: mm.act,
                    first,
                    last,
                    ahead,
                    pf: std::ptr::null(),
                    pf_step: 0,
                };
                row_tile(&t, rows, pend - pb);
                ahead.call0 += groups;
                i0 += rows;
            }
            pb = pend;
        }
        k0 += kc;
        if k0 >= mm.kc {
            break;
        }
    }
}

/// Panels per column block at k chunk `kc`: as many as fit [`L2_BLOCK_BYTES`], a multiple of
/// `nv`.
fn block_panels(kc: usize, nv: usize) -> usize {
    (L2_BLOCK_BYTES / (kc.max(1) * NR * 4)).max(nv) / nv * nv
}

/// Copies `n` floats in 64-byte blocks, inline: rows are short (32-256 floats) and a libc
/// memmove call per row cost as much as the copy (3.5% of MobileNet's time).
#[inline(always)]
unsafe fn copy_row(src: *const f32, dst: *mut f32, n: usize) {
    type Block = [f32; 16];
    let mut j = 0;
    while j + 16 <= n {
        (dst.add(j) as *mut Block).write_unaligned((src.add(j) as *const Block).read_unaligned());
        j += 16;
    }
    while j < n {
        *dst.add(j) = *src.add(j);
        j += 1;
    }
}

/// C = act(A·B + bias) for a packed B, on the current ISA, split over `threads` by rows.
///
/// `a`: rows of A with stride `lda` (≥ k); `c`: rows of C with stride `ldc` (≥ n);
/// `bias`: length n or `None` for zeros.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    packed_b: &[f32],
    bias: Option<&[f32]>,
    act: Act,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    assert!(lda >= k && ldc >= n, "matmul: strides smaller than the rows");
    assert_eq!(packed_b.len(), packed_len(k, n), "matmul: packed B length");
    if m == 0 || n == 0 {
        return;
    }
    assert!(a.len() >= (m - 1) * lda + k, "matmul: A too short");
    assert!(c.len() >= (m - 1) * ldc + n, "matmul: C too short");
    if let Some(b) = bias {
        assert!(b.len() >= n, "matmul: bias shorter than n");
    }
    let isa = isa::current();
    let cp = SendPtr(c.as_mut_ptr());
    let ap = a.as_ptr() as usize;
    let bias_p = bias.map_or(std::ptr::null(), |b| b.as_ptr()) as usize;
    split_rows(m, threads, |r| {
        let mm = Mm {
            m: r.len(),
            n,
            kc: k,
            a: unsafe { (ap as *const f32).add(r.start * lda) },
            lda,
            a_chunk: 0,
            b: packed_b.as_ptr(),
            panel_stride: k * NR,
            c: unsafe { { cp }.0.add(r.start * ldc) },
            ldc,
            bias: bias_p as *const f32,
            act,
            first: true,
            last: true,
        };
        // SAFETY: bounds were checked above; each part writes its own rows of C.
        unsafe { run_mm(isa, &mm) };
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of every next block is prefetched by some group call of the block before it
    /// (where that block has a prefetch slot, a line, for each): replays the sweep's blocks and
    /// group calls. (Only the full tiles' assembly loop prefetches; a short last row tile skips
    /// its share.)
    #[test]
    fn ahead_covers_the_next_block() {
        // At most 4 row tiles each (more take no prefetch).
        for &(m, k, n) in &[(49, 1024, 1024), (49, 512, 1024), (28, 300, 200), (56, 64, 2000)] {
            let base = 1usize << 20;
            let mm = Mm {
                m, n, kc: k, a: std::ptr::null(), lda: k, a_chunk: 0,
                b: base as *const f32, panel_stride: k * NR, c: std::ptr::null_mut(), ldc: n,
                bias: std::ptr::null(), act: Act::None, first: true, last: true,
            };
            let panels = n.div_ceil(NR);
            let (mr, nv) = (MR_MAX, 2);
            // (first panel, end panel, k0, kc, lines it prefetched, prefetch slots) in sweep order.
            let mut blocks = Vec::new();
            let mut k0 = 0;
            while k0 < k {
                let kc = KC.min(k - k0);
                let mut pb = 0;
                while pb < panels {
                    let pend = (pb + block_panels(kc, nv)).min(panels);
                    let groups = (pend - pb).div_ceil(nv);
                    let mut ahead = Ahead::after(&mm, mr, nv, k0, kc, pend, groups);
                    let mut lines = std::collections::BTreeSet::new();
                    for _ in 0..m.div_ceil(mr) {
                        for g in 0..groups {
                            let (pf, step) = ahead.share(ahead.call0 + g, kc);
                            for i in 0..kc / 2 {
                                lines.insert((pf as usize + i * step) / 64);
                            }
                        }
                        ahead.call0 += groups;
                    }
                    let slots = m.div_ceil(mr) * groups * (kc / 2);
                    blocks.push((pb, pend, k0, kc, lines, slots));
                    pb = pend;
                }
                k0 += kc;
            }
            let mut checked = 0;
            for w in blocks.windows(2) {
                let (_, _, _, _, lines, slots) = &w[0];
                let &(pb, pend, k0, kc, _, _) = &w[1];
                if *slots < (pend - pb) * kc {
                    continue;
                }
                checked += 1;
                for p in pb..pend {
                    for kk in k0..k0 + kc {
                        let line = (base + 4 * (p * k * NR + kk * NR)) / 64;
                        assert!(lines.contains(&line), "m {m} k {k} n {n}: line of panel {p}, k {kk} not prefetched");
                    }
                }
            }
            assert!(checked > 0, "m {m} k {k} n {n}: no block had a slot per line of the next");
        }
    }
}
