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
/// once per band, so a band needs enough rows to reuse each B block many times; at about 128
/// pixels the band (≤ 512 KB at 1024 channels) and a B block still share L2.
const BAND_PIXELS: usize = 128;

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
        let (dw, pw) = (&self.dw, &self.pw);
        let rows = dw.n * dw.oh;
        let row_len = dw.ow * dw.c_out;
        let isa = isa::current();
        BAND.with_borrow_mut(|buf| {
            let lines = (rows * row_len).div_ceil(16);
            if buf.len() < lines {
                buf.resize(lines, Line([0.0; 16]));
            }
            let mid = SendPtr(buf.as_mut_ptr() as *mut f32);
            split_rows_balanced(rows, 4 * threads, threads, |r| {
                depthwise::run_rows(dw, input, dw_w, dw_b, { mid }.0.add(r.start * row_len), r.start, r);
            });
            let mm = Mm {
                m: rows * dw.ow,
                n: pw.c_out,
                kc: pw.c_in,
                a: mid.0,
                lda: pw.c_in,
                b: pw_w.as_ptr(),
                panel_stride: pw.c_in * NR,
                c: out,
                ldc: pw.c_out,
                bias: pw_b.as_ptr(),
                act: pw.act,
                first: true,
                last: true,
            };
            gemm::run_panels(isa, &mm, threads);
        });
    }

    /// Output rows `rows`, columns of pointwise panels `panels`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows_raw(&self, input: &[f32], dw_w: &[f32], dw_b: &[f32], pw_w: &[f32], pw_b: &[f32], out: *mut f32, rows: Range<usize>, panels: Range<usize>) {
        let (dw, pw) = (&self.dw, &self.pw);
        let band = band_rows(rows.len(), dw.ow);
        let isa = isa::current();
        // With AVX-512 and one k chunk, the depthwise kernel writes each pixel at the copied
        // A tiles' row stride, so the matrix product reads the band in place instead of
        // copying every 12-row tile first (a fifth of block 1's product at K = 32).
        #[cfg(target_arch = "x86_64")]
        let tiled = isa == isa::Isa::Avx512 && super::depthwise_avx512::applies(dw) && pw.c_in <= gemm::KC;
        #[cfg(not(target_arch = "x86_64"))]
        let tiled = false;
        let px_stride = if tiled { gemm::A_LDA } else { dw.c_out };
        BAND.with_borrow_mut(|buf| {
            let lines = (band * dw.ow * px_stride).div_ceil(16);
            if buf.len() < lines {
                buf.resize(lines, Line([0.0; 16]));
            }
            let buf = buf.as_mut_ptr() as *mut f32;
            let mut r0 = rows.start;
            while r0 < rows.end {
                let r1 = (r0 + band).min(rows.end);
                #[cfg(target_arch = "x86_64")]
                if tiled {
                    super::depthwise_avx512::run_rows(dw, input, dw_w, dw_b, buf, px_stride, r0, r0..r1);
                } else {
                    depthwise::run_rows(dw, input, dw_w, dw_b, buf, r0, r0..r1);
                }
                #[cfg(not(target_arch = "x86_64"))]
                depthwise::run_rows(dw, input, dw_w, dw_b, buf, r0, r0..r1);
                let mm = Mm {
                    m: (r1 - r0) * pw.w,
                    n: pw.c_out,
                    kc: pw.c_in,
                    a: buf,
                    lda: px_stride,
                    b: pw_w.as_ptr(),
                    panel_stride: pw.c_in * NR,
                    c: out.add(r0 * pw.w * pw.c_out),
                    ldc: pw.c_out,
                    bias: pw_b.as_ptr(),
                    act: pw.act,
                    first: true,
                    last: true,
                };
                gemm::run_mm(isa, &mm.panels(panels.clone()));
                r0 = r1;
            }
        });
    }
}

/// Rows per band when `rows` rows of `width` pixels are cut into bands of equal height, each
/// about [`BAND_PIXELS`] pixels (at least one row).
fn band_rows(rows: usize, width: usize) -> usize {
    let bands = (rows * width).div_ceil(BAND_PIXELS).max(1);
    rows.div_ceil(bands).max(1)
}
