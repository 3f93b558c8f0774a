//! The planner's input: buffers and the ordered steps that read and write them.
//!
//! Nothing here knows about ONNX ops. Inference lowers each node to one step; training will
//! append backward steps, saved activations and gradients to the same lists, and the same
//! planner places them.

use crate::error::{Error, Result};

/// Index of a buffer in the slice given to [`plan`](super::plan).
pub type BufferId = usize;

/// Every offset and every size in the arena is a multiple of this (a cache line; what SIMD
/// loads and the runtime's aligned arena expect).
pub const ALIGN: usize = 64;

/// Rounds a byte count up to [`ALIGN`].
pub fn align_up(bytes: usize) -> usize {
    bytes.div_ceil(ALIGN) * ALIGN
}

/// What a buffer holds. Only `Input` and `Output` change the planning: inputs are live from
/// the first step, outputs to the last, and an output's storage is never reused in place.
/// The other kinds are carried for the report (and for the trainer's bookkeeping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BufferKind {
    Input,
    Output,
    Activation,
    /// A forward value kept alive for the backward steps.
    Saved,
    Gradient,
    /// Workspace of one step.
    Scratch,
}

impl BufferKind {
    pub fn name(self) -> &'static str {
        match self {
            BufferKind::Input => "input",
            BufferKind::Output => "output",
            BufferKind::Activation => "activation",
            BufferKind::Saved => "saved",
            BufferKind::Gradient => "gradient",
            BufferKind::Scratch => "scratch",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub name: String,
    /// Size in bytes before alignment.
    pub bytes: usize,
    pub kind: BufferKind,
}

impl Buffer {
    pub fn new(name: impl Into<String>, bytes: usize, kind: BufferKind) -> Self {
        Buffer { name: name.into(), bytes, kind }
    }
    /// The size the buffer takes in the arena.
    pub fn aligned_bytes(&self) -> usize {
        align_up(self.bytes)
    }
}

/// One kernel invocation. All reads happen before all writes of the same step, as far as
/// liveness is concerned; `inplace` pairs are the exception the op itself guarantees safe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub reads: Vec<BufferId>,
    pub writes: Vec<BufferId>,
    /// `(read, write)`: the op may write `write` over `read` (same index → same index, as in
    /// elementwise ops, BatchNorm, activations). The planner takes the offer only when `read`'s
    /// storage dies at this step and is not a graph output; see [`Plan::shares_storage`].
    pub inplace: Vec<(BufferId, BufferId)>,
    /// `(read, write)`: `write` is a view of `read` (Reshape, Flatten): same bytes, same offset,
    /// no copy. The view keeps the viewed storage alive as long as the view is read.
    pub alias: Vec<(BufferId, BufferId)>,
}

impl Step {
    pub fn new(name: impl Into<String>, reads: Vec<BufferId>, writes: Vec<BufferId>) -> Self {
        Step { name: name.into(), reads, writes, ..Default::default() }
    }
    pub fn with_inplace(mut self, read: BufferId, write: BufferId) -> Self {
        self.inplace.push((read, write));
        self
    }
    pub fn with_alias(mut self, read: BufferId, write: BufferId) -> Self {
        self.alias.push((read, write));
        self
    }
}

/// Checks the step list against the buffers: ids in range, every pair made of one of the
/// step's reads and one of its writes, and no buffer declared the view or in-place result of
/// two different buffers (that would force two live values into one storage).
pub fn validate(buffers: &[Buffer], steps: &[Step]) -> Result<()> {
    let n = buffers.len();
    let name = |b: BufferId| buffers.get(b).map_or("?", |b| b.name.as_str());
    // Which step writes each buffer, to check that views are written once.
    let mut writers = vec![0usize; n];
    for (s, step) in steps.iter().enumerate() {
        for &b in step.reads.iter().chain(&step.writes) {
            if b >= n {
                return Err(Error::Invalid(format!("step {s} '{}' names buffer {b}, but there are only {n} buffers", step.name)));
            }
        }
        for &w in &step.writes {
            writers[w] += 1;
        }
        for (what, pairs) in [("in-place", &step.inplace), ("view", &step.alias)] {
            for &(r, w) in pairs {
                if !step.reads.contains(&r) || !step.writes.contains(&w) {
                    return Err(Error::Invalid(format!(
                        "step {s} '{}': the {what} pair ({}, {}) must be one of the step's reads and one of its writes",
                        step.name,
                        name(r),
                        name(w)
                    )));
                }
                if r == w {
                    return Err(Error::Invalid(format!("step {s} '{}': buffer '{}' is declared a {what} of itself", step.name, name(r))));
                }
            }
        }
    }
    // A view has exactly one viewed buffer and is written once; an in-place result may be
    // offered several candidates (Add offers both inputs) but cannot also be a view.
    let mut viewed: Vec<Option<BufferId>> = vec![None; n];
    for (s, step) in steps.iter().enumerate() {
        for &(r, w) in &step.alias {
            if let Some(prev) = viewed[w] {
                return Err(Error::Invalid(format!(
                    "step {s} '{}': buffer '{}' is declared a view of both '{}' and '{}'",
                    step.name,
                    name(w),
                    name(prev),
                    name(r)
                )));
            }
            viewed[w] = Some(r);
            if writers[w] != 1 {
                return Err(Error::Invalid(format!(
                    "step {s} '{}': view '{}' is written by {} steps; a view must be written by exactly one",
                    step.name,
                    name(w),
                    writers[w]
                )));
            }
        }
    }
    for (s, step) in steps.iter().enumerate() {
        for &(_, w) in &step.inplace {
            if viewed[w].is_some() {
                return Err(Error::Invalid(format!("step {s} '{}': buffer '{}' is declared both a view and an in-place result", step.name, name(w))));
            }
        }
    }
    Ok(())
}
