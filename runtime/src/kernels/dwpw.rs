//! A depthwise conv fused with the pointwise conv that consumes it: per band of output rows,
//! the depthwise rows go to a small buffer (it stays in L1/L2) and the pointwise matrix product
//! reads them from there, so the depthwise output never travels to memory and back.
//!
//! Each output value is computed by the same kernels in the same order as the unfused pair
//! (the matrix product's per-row sums do not depend on how rows are blocked), so the fused
//! result is bit-identical to running [`Conv2d`] twice, on any ISA and thread count.

use std::cell::RefCell;
use std::ops::Range;

use super::conv::{Conv2d, ConvPath};
use super::gemm::{self, Mm, NR};
use super::threads::{split_rows_balanced, SendPtr, Split};
use super::{depthwise, ensure, isa, KernelError};

/// Pixels per band: the matrix product streams all of B (the pointwise weights, up to 4 MB)
/// once per band, so a band needs enough rows to reuse each B block many times, and each band
/// ends in a partial row tile. At 200, a 14×14 layer (196 pixels) is one band, not two of 98
/// (each ending in a two-row tile that waits on its own FMAs), and a band's k chunk (≤ 218 KB)
/// still shares L2 with a B block: 1.0-224 1% faster than at 128 on one thread and on two
/// (alternating processes); 256 measured the same as 200.
const BAND_PIXELS: usize = 200;

thread_local! {
    /// Each thread's band buffer, grown once to the largest band it has seen (so inference does
    /// not allocate after the first run).
    static BAND: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// 16 floats on a cache line: the band is made of these, so the depthwise kernel's 64-byte
/// stores never straddle two lines (a Vec<f32> is only 16-byte aligned).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// Depthwise `dw` then pointwise `pw` on its output (both with their own bias and epilogue).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DwPw {
    pub dw: Conv2d,
    pub pw: Conv2d,
}

impl DwPw {
    /// Checks both convs and that `pw` is a pointwise conv on `dw`'s output,.
    pub fn check(&self) -> Result<(), KernelError> {
        let (dw, pw) = (&self.dw, &self.pw);
        dw.check()?;
        pw.check()?;
        ensure!(dw.path() == ConvPath::Depthwise, "dwpw: the first conv is not depthwise ({dw:?})");
        ensure!(pw.path() == ConvPath::Pointwise, "dwpw: the second conv is not pointwise ({pw:?})");
        ensure!(pw.n == dw.n && pw.h == dw.oh && pw.w == dw.ow && pw.c_in == dw.c_out,
            "dwpw: pointwise input {}×{}×{}×{} is not the depthwise output {}×{}×{}×{}", pw.n, pw.h, pw.w, pw.c_in, dw.n, dw.oh, dw.ow, dw.c_out);
        Ok(())
    }

    pub const fn input_len(&self) -> usize {
        self.dw.input_len()
    }

    pub const fn output_len(&self) -> usize {
        self.pw.output_len()
    }

    /// Runs both convs split over `threads` threads, by output rows or by pointwise column
    /// panels ([`Split::choose`]). Weights are each conv's own packed weights
    /// ([`Conv2d::pack_weights`]).
    #[allow(clippy::too_many_arguments)]
    pub fn run_threads(&self, input: &[f32], dw_w: &[f32], dw_b: &[f32], pw_w: &[f32], pw_b: &[f32], out: &mut [f32], threads: usize) {
        assert!(self.check().is_ok(), "dwpw: invalid parameters: {:?}", self.check());
        assert_eq!(input.len(), self.input_len(), "dwpw: input length");
        assert_eq!(dw_w.len(), self.dw.packed_weights_len(), "dwpw: depthwise weight length");
        assert_eq!(dw_b.len(), self.dw.c_out, "dwpw: depthwise bias length");
        assert_eq!(pw_w.len(), self.pw.packed_weights_len(), "dwpw: pointwise weight length");
        assert_eq!(pw_b.len(), self.pw.c_out, "dwpw: pointwise bias length");
        assert_eq!(out.len(), self.output_len(), "dwpw: output length");
        let op = SendPtr(out.as_mut_ptr());
        let rows = self.dw.n * self.dw.oh;
        let panels = self.pw.c_out.div_ceil(NR);
        let split = Split::choose(rows * self.dw.ow, self.pw.c_out, self.dw.mult_adds() + self.pw.mult_adds(), threads);
        // SAFETY (all three): lengths checked above; chunks write disjoint output rows, or
        // disjoint column panels.
        match split {
            Split::Serial => unsafe { self.rows_raw(input, dw_w, dw_b, pw_w, pw_b, op.0, 0..rows, 0..panels) },
            // One chunk per band, as many bands as one thread would use (so each reuses the
            // weights as much); threads balance band by band.
            Split::Rows => split_rows_balanced(rows, (rows * self.dw.ow).div_ceil(BAND_PIXELS), threads, |r| unsafe {
                self.rows_raw(input, dw_w, dw_b, pw_w, pw_b, { op }.0, r, 0..panels)
            }),
            Split::Panels => unsafe { self.two_phase(input, dw_w, dw_b, pw_w, pw_b, op.0, threads) },
        }
    }

    /// Few pixels, many weights: the whole depthwise output first (threads split its rows),
    /// into one buffer, then the pointwise product with threads splitting B's column panels,
    /// so each thread streams only its share of the weights.
    #[allow(clippy::too_many_arguments)]
    unsafe fn two_phase(&self, input: &[f32], dw_w: &[f32], dw_b: &[f32], pw_w: &[f32], pw_b: &[f32], out: *mut f32, threads: usize) {
        let dw = &self.dw;
        let rows = dw.n * dw.oh;
        let isa = isa::current();
        let layout = self.band_layout(isa, rows * dw.ow);
        with_band(layout.floats, |buf| {
            let mid = SendPtr(buf);
            split_rows_balanced(rows, 4 * threads, threads, |r| {
                self.depthwise(&layout, input, dw_w, dw_b, { mid }.0.add(r.start * dw.ow * layout.px_stride), r);
            });
            let mm = self.product(&layout, mid.0, rows * dw.ow, pw_w, pw_b, out);
            gemm::run_panels(isa, &mm, threads);
        });
    }

    /// How a band of `pixels` depthwise output pixels is laid out. With the AVX-512 depthwise
    /// kernel the band is written as the matrix product's copied A tiles (rows `A_LDA` apart,
    /// one block per k chunk), so the product reads it in place instead of copying each 14-row
    /// tile first (a fifth of block 1's product at K = 32); otherwise plain NHWC.
    fn band_layout(&self, isa: isa::Isa, pixels: usize) -> Band {
        #[cfg(target_arch = "x86_64")]
        if isa == isa::Isa::Avx512 && super::depthwise_avx512::applies(&self.dw) {
            let chunk = pixels * gemm::A_LDA;
            return Band { tiled: true, px_stride: gemm::A_LDA, chunk_stride: chunk, floats: chunk * self.pw.c_in.div_ceil(gemm::KC) };
        }
        let _ = isa;
        Band { tiled: false, px_stride: self.dw.c_out, chunk_stride: 256, floats: pixels * self.dw.c_out }
    }

    /// Depthwise output rows `rows` to `buf` (which holds rows from `rows.start` on) in the
    /// layout `band`.
    unsafe fn depthwise(&self, band: &Band, input: &[f32], dw_w: &[f32], dw_b: &[f32], buf: *mut f32, rows: Range<usize>) {
        #[cfg(target_arch = "x86_64")]
        if band.tiled {
            return super::depthwise_avx512::run_rows(&self.dw, input, dw_w, dw_b, buf, band.px_stride, band.chunk_stride, rows.start, rows);
        }
        depthwise::run_rows(&self.dw, input, dw_w, dw_b, buf, rows.start, rows)
    }

    /// The pointwise product over `m` band pixels at `buf`, laid out as `band`, into `out`.
    unsafe fn product(&self, band: &Band, buf: *const f32, m: usize, pw_w: &[f32], pw_b: &[f32], out: *mut f32) -> Mm {
        let pw = &self.pw;
        Mm {
            m,
            n: pw.c_out,
            kc: pw.c_in,
            a: buf,
            lda: band.px_stride,
            a_chunk: if band.tiled { band.chunk_stride } else { 0 },
            b: pw_w.as_ptr(),
            panel_stride: pw.c_in * NR,
            c: out,
            ldc: pw.c_out,
            bias: pw_b.as_ptr(),
            act: pw.act,
            first: true,
            last: true,
        }
    }

    /// Output rows `rows`, columns of pointwise panels `panels`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows_raw(&self, input: &[f32], dw_w: &[f32], dw_b: &[f32], pw_w: &[f32], pw_b: &[f32], out: *mut f32, rows: Range<usize>, panels: Range<usize>) {
        let (dw, pw) = (&self.dw, &self.pw);
        let band = band_rows(rows.len(), dw.ow);
        let isa = isa::current();
        let layout = self.band_layout(isa, band * dw.ow);
        with_band(layout.floats, |buf| {
            let mut r0 = rows.start;
            while r0 < rows.end {
                let r1 = (r0 + band).min(rows.end);
                self.depthwise(&layout, input, dw_w, dw_b, buf, r0..r1);
                let mm = self.product(&layout, buf, (r1 - r0) * pw.w, pw_w, pw_b, out.add(r0 * pw.w * pw.c_out));
                gemm::run_mm(isa, &mm.panels(panels.clone()));
                r0 = r1;
            }
        });
    }
}

/// Runs `f` on this thread's band buffer, grown to at least `floats` floats.
fn with_band<R>(floats: usize, f: impl FnOnce(*mut f32) -> R) -> R {
    BAND.with_borrow_mut(|buf| {
        let lines = floats.div_ceil(16);
        if buf.len() < lines {
            buf.resize(lines, Line([0.0; 16]));
        }
        f(buf.as_mut_ptr() as *mut f32)
    })
}

/// Rows per band when `rows` rows of `width` pixels are cut into bands of equal height, each
/// about [`BAND_PIXELS`] pixels (at least one row).
fn band_rows(rows: usize, width: usize) -> usize {
    let bands = (rows * width).div_ceil(BAND_PIXELS).max(1);
    rows.div_ceil(bands).max(1)
}

/// Where the fused kernel's depthwise output goes (see [`DwPw::band_layout`]): channel `ch`
/// of band pixel `p` at `p·px_stride + (ch / 256)·chunk_stride + ch % 256`.
struct Band {
    /// Laid out as the matrix product's copied A tiles (AVX-512 only).
    tiled: bool,
    px_stride: usize,
    chunk_stride: usize,
    /// Floats the band takes.
    floats: usize,
}
