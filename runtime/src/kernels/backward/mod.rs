//! Backward kernels for training, on the same conventions as the forward kernels: NHWC
//! activations, ONNX layouts for parameters (OIHW conv weights, `[k, n]` or `[n, k]` dense
//! weights), one parameter struct per op (the forward's own: [`Conv2d`](super::Conv2d),
//! [`Dense`](super::Dense)) and slices in, slices out.
//!
//! - [`conv`]: input, weight and bias gradients of any grouped k×k convolution: pointwise
//!   convs and the general path run on the packed matrix product ([`matmul`]); depthwise convs
//!   have a direct loop vectorized over channels.
//! - [`batchnorm`]: BatchNormalization in training mode (batch statistics, running-statistics
//!   update, backward for x, scale and bias) with a fused activation.
//! - [`activation`]: ReLU / Clip masks from the saved output.
//! - [`pool`]: global average pool.
//! - [`dense`]: fully connected layers (ONNX Gemm / MatMul with a constant weight).
//! - [`matmul`]: `C = Aᵀ·B` over long `k` (the weight-gradient product): packed, chunked, and
//!   threaded by rows of `C`.
//!
//! Gradients are always *written* (never accumulated into the output); a tensor read by
//! several ops gets one gradient per reader and the trainer sums them. Threaded kernels split
//! work by disjoint outputs, or into fixed blocks whose partial sums are added in block order,
//! so results are the same bits for any thread count (the general conv's weight gradient, by
//! parts reduced in part order, is the same for a given thread count on every run).

pub mod activation;
pub mod batchnorm;
pub mod conv;
pub mod dense;
pub mod matmul;
pub mod pool;

use std::ops::Range;
use std::sync::Mutex;

use super::threads::run_parts;

/// Calls `f` on `parts` contiguous, disjoint parts of `0..rows` (on the persistent pool when
/// `parts > 1`) and returns the results in part order.
///
/// The pool, not scoped threads: its idle worker spins for a while after every forward kernel,
/// so a freshly spawned thread would compete with it for one of the two cores (and pay the
/// spawn and a cold cache on every call).
pub(crate) fn map_parts<T: Send>(rows: usize, parts: usize, f: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    let parts = parts.clamp(1, rows.max(1));
    if parts == 1 {
        return vec![f(0..rows)];
    }
    let slots: Vec<Mutex<Option<T>>> = (0..parts).map(|_| Mutex::new(None)).collect();
    run_parts(parts, &|i| {
        let v = f(rows * i / parts..rows * (i + 1) / parts);
        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    });
    slots.into_iter().map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every part ran")).collect()
}

/// Adds the later partial sums into the first, in order (deterministic).
pub(crate) fn reduce_into<'a>(parts: impl IntoIterator<Item = &'a [f32]>, out: &mut [f32]) {
    let mut it = parts.into_iter();
    if let Some(first) = it.next() {
        out.copy_from_slice(first);
        for p in it {
            for (o, v) in out.iter_mut().zip(p) {
                *o += v;
            }
        }
    }
}

/// Threads worth using for `work` multiply-adds (tiny layers stay on one thread).
pub(crate) fn threads_for(work: usize, threads: usize) -> usize {
    if work < 100_000 {
        1
    } else {
        threads.max(1)
    }
}
