//! A kernel instance of the schedule: which runtime kernel, with which constant parameters,
//! reading which operands. Both the executor and codegen turn one of these into exactly one
//! call of the runtime kernel, so they compute the same thing in the same order.

use mobilenetc_runtime::kernels::pool::GlobalAvgPool;
use mobilenetc_runtime::kernels::{Act, BatchNorm, BinOp, Conv2d, Dense, DwPw, Gemm, Head, Pool2d, Softmax};

/// A contiguous range of f32 elements (in the arena or in the weight blob).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Range {
    pub offset: usize,
    pub len: usize,
}

impl Range {
    pub fn end(&self) -> usize {
        self.offset + self.len
    }
    pub fn of<'a>(&self, xs: &'a [f32]) -> &'a [f32] {
        &xs[self.offset..self.end()]
    }
}

/// Where a kernel operand lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// An activation (or runtime input) in the arena.
    Arena(Range),
    /// A constant in the weight blob, already in the layout the kernel reads.
    Blob(Range),
    /// Weights that arrive at run time (a graph input) in their ONNX layout: the executor packs
    /// them for the kernel before each run. Codegen refuses them.
    PackAtRun(Range),
}

/// The kernels of the runtime with their constant parameters. Variants whose runtime struct
/// borrows shapes own them here (the executor borrows them per call; codegen writes them as
/// `&[..]` literals in a `const`).
#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    /// args: x, packed weights, bias
    Conv(Conv2d),
    /// A first conv reading its NCHW input in place (instead of after a transpose to NHWC;
    /// see [`Conv2d::run_nchw_threads`]); writes NHWC. args: x (NCHW), packed weights, bias
    ConvNchw(Conv2d),
    /// A depthwise conv and the pointwise conv that alone reads its output, fused (see
    /// [`super::fuse`]). args: x, depthwise weights, depthwise bias, pointwise weights,
    /// pointwise bias
    DwPw(DwPw),
    /// args: x, packed weights, bias
    Dense(Dense),
    /// args: a, packed b (alpha folded in), c (empty when none)
    Gemm(Gemm),
    /// args: a, b (both unpacked)
    MatMul { a_shape: Vec<usize>, b_shape: Vec<usize> },
    /// args: x, packed weights, bias
    Head(Head),
    /// args: x
    Pool(Pool2d),
    /// args: x
    GlobalAvgPool(GlobalAvgPool),
    /// args: x
    Softmax(Softmax),
    /// args: a, b
    Binary { op: BinOp, a_shape: Vec<usize>, b_shape: Vec<usize>, act: Act },
    /// args: x
    Activation(Act),
    /// args: x, packed (mul, add)
    BatchNorm(BatchNorm),
    /// args: x
    Transpose { shape: Vec<usize>, perm: Vec<usize> },
    /// args: x
    Pad { shape: Vec<usize>, pads: Vec<isize>, value: f32 },
    /// args: one per input
    Concat { outer: usize, inner: usize, axis_lens: Vec<usize> },
    /// args: x (a graph output that is a graph input or a constant)
    Copy,
}

impl Kernel {
    /// A short name for messages, generated function names and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Kernel::Conv(c) => match c.path() {
                mobilenetc_runtime::kernels::ConvPath::Pointwise => "pointwise",
                mobilenetc_runtime::kernels::ConvPath::Depthwise => "depthwise",
                mobilenetc_runtime::kernels::ConvPath::General => "conv",
            },
            Kernel::ConvNchw(_) => "conv_nchw",
            Kernel::DwPw(_) => "dwpw",
            Kernel::Dense(_) => "dense",
            Kernel::Gemm(_) => "gemm",
            Kernel::MatMul { .. } => "matmul",
            Kernel::Head(_) => "head",
            Kernel::Pool(_) => "pool",
            Kernel::GlobalAvgPool(_) => "global_avg_pool",
            Kernel::Softmax(_) => "softmax",
            Kernel::Binary { .. } => "binary",
            Kernel::Activation(_) => "activation",
            Kernel::BatchNorm(_) => "batchnorm",
            Kernel::Transpose { .. } => "transpose",
            Kernel::Pad { .. } => "pad",
            Kernel::Concat { .. } => "concat",
            Kernel::Copy => "copy",
        }
    }

    /// Multiply-accumulates of one run (conv and fully connected layers; 0 for the rest).
    pub fn mult_adds(&self) -> u64 {
        (match self {
            Kernel::Conv(c) | Kernel::ConvNchw(c) => c.mult_adds(),
            Kernel::DwPw(f) => f.dw.mult_adds() + f.pw.mult_adds(),
            Kernel::Dense(d) => d.mult_adds(),
            Kernel::Gemm(g) => g.m * g.k * g.n,
            Kernel::Head(h) => h.n * h.c * h.classes,
            Kernel::MatMul { a_shape, b_shape } => {
                let lead: usize = a_shape.iter().rev().skip(1).product();
                lead * a_shape.last().copied().unwrap_or(1) * if b_shape.len() > 1 { b_shape[b_shape.len() - 1] } else { 1 }
            }
            _ => 0,
        }) as u64
    }
}

/// One kernel call of the schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The graph node it comes from (or a made-up name for layout conversions).
    pub name: String,
    /// The ONNX op(s) it implements, for comments and reports.
    pub op: String,
    pub kernel: Kernel,
    pub args: Vec<Arg>,
    pub out: Range,
}
