//! Kernels: one implementation per op, shared by generated code and the schedule executor.
//!
//! API contract. Conventions:
//! - 4-D activations are channels-last (NHWC) inside the runtime; other tensors are row-major
//!   in their ONNX shape.
//! - Each kernel is a `Copy` parameter struct with public fields, so generated code can write it
//!   as a `const` and let inlining specialize the loops, plus `run` methods taking slices.
//!   `run` panics only if slice lengths disagree with the parameters (a caller bug, checked
//!   once with `assert!` at entry, never in the inner loop).
//! - Weights are packed once (`pack_*`) into the layout the kernel reads; generated code packs
//!   at compile time and embeds the packed bytes. Packed layouts do not depend on the ISA, so
//!   bytes packed at compile time run on whichever micro-kernel is chosen at start-up.
//! - Epilogues (`Act`) are applied to the output before it is stored.
//! - Work that is split across threads (`run_rows`, `threads`) is split by output rows (or, for
//!   matrix products with few rows, by panels of 16 output columns), so every thread writes a
//!   disjoint part and the result is bit-identical for any thread count.
//!
//! Modules: [`gemm`] (packed matrix product, the engine of pointwise convs, dense and Gemm),
//! [`conv`] (Conv2d: pointwise / depthwise / general grouped), [`depthwise`], [`dwpw`]
//! (a depthwise conv fused with the pointwise conv after it), [`dense`],
//! [`pool`], [`softmax`], [`elementwise`], [`layout`], [`pad`], [`concat`], [`batchnorm`],
//! [`head`], [`isa`] (micro-kernel selection).

pub mod backward;
pub mod batchnorm;
pub mod concat;
pub mod conv;
pub mod dense;
pub mod depthwise;
pub mod dwpw;
pub mod elementwise;
pub mod gemm;
pub mod head;
pub mod isa;
pub mod layout;
pub mod pad;
pub mod pool;
pub mod softmax;
#[cfg(target_arch = "x86_64")]
mod depthwise_avx512;
mod first_conv;
mod threads;

pub use batchnorm::BatchNorm;
pub use concat::Concat;
pub use conv::{Conv2d, ConvPath};
pub use dense::{Dense, Gemm, GemmC, MatMul};
pub use dwpw::DwPw;
pub use elementwise::{BinOp, Binary};
pub use head::Head;
pub use isa::Isa;
pub use layout::Transpose;
pub use pad::Pad;
pub use pool::{GlobalAvgPool, Pool2d, PoolKind};
pub use softmax::Softmax;

/// A fused epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Act {
    #[default]
    None,
    Relu,
    /// Clip to [min, max] (ReLU6: 0, 6). Unbounded sides are ±inf.
    Clip { min: f32, max: f32 },
}

impl Act {
    pub const RELU6: Act = Act::Clip { min: 0.0, max: 6.0 };

    /// The activation of one value. `None` passes NaN through; the clamps follow `f32::max/min`.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            Act::Relu => x.max(0.0),
            Act::Clip { min, max } => x.max(min).min(max),
        }
    }

    /// Applies the activation to every element in place.
    #[inline]
    pub fn apply_slice(self, xs: &mut [f32]) {
        match self {
            Act::None => {}
            Act::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
            Act::Clip { min, max } => xs.iter_mut().for_each(|x| *x = x.max(min).min(max)),
        }
    }
}

/// Parameters that cannot describe a valid kernel instance (found by a `check` method).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelError(pub String);

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid kernel parameters: {}", self.0)
    }
}

impl std::error::Error for KernelError {}

/// `Err(KernelError)` with a formatted message unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            return Err($crate::kernels::KernelError(format!($($msg)*)));
        }
    };
}
pub(crate) use ensure;

/// Output size of a sliding window along one axis (ONNX conv/pool semantics):
/// `floor` or `ceil` of `(input + pads - dilation·(kernel-1) - 1) / stride + 1`; with `ceil`,
/// a last window that would start in the end padding is dropped (as onnxruntime and PyTorch do).
/// Returns 0 when the window does not fit.
pub const fn window_out(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
    ceil: bool,
) -> usize {
    if kernel == 0 {
        return 0;
    }
    let span = dilation * (kernel - 1) + 1;
    let padded = input + pad_begin + pad_end;
    if padded < span || stride == 0 {
        return 0;
    }
    let num = padded - span;
    let mut out = if ceil { num.div_ceil(stride) + 1 } else { num / stride + 1 };
    // ONNX: with ceil_mode the last window must start inside the input or the left padding.
    if ceil && out > 1 && (out - 1) * stride >= input + pad_begin {
        out -= 1;
    }
    out
}
