//! Kernels: one implementation per op, shared by generated code and the schedule executor.
//!
//! API contract (the kernels helper implements it; bodies may move into submodules).
//! Conventions:
//! - 4-D activations are channels-last (NHWC) inside the runtime; other tensors are row-major
//!   in their ONNX shape.
//! - Each kernel is a `Copy` parameter struct with public fields, so generated code can write it
//!   as a `const` and let inlining specialize the loops, plus `run` methods taking slices.
//!   `run` panics only if slice lengths disagree with the parameters (a caller bug, checked
//!   once with `assert!` at entry, never in the inner loop).
//! - Weights are packed once (`pack_*`) into the layout the kernel reads; generated code packs
//!   at compile time and embeds the packed bytes.
//! - Epilogues (`Act`) are applied to the output before it is stored.

/// A fused epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Act {
    #[default]
    None,
    Relu,
    /// Clip to [min, max] (ReLU6: 0, 6). Unbounded sides are ±inf.
    Clip { min: f32, max: f32 },
}
