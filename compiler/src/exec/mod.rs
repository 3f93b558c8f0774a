//! The schedule executor: walks a [`Schedule`] at run time over the runtime kernels, the same
//! calls in the same order as the generated code makes (so the two agree bit for bit).
//!
//! Used by `mobilenetc run`, by tests that compare against references, and for any ONNX model
//! (weights that arrive as graph inputs are packed for their kernel before each run).

use mobilenetc_runtime::kernels::{elementwise, Binary, Concat, MatMul, Pad, Transpose};

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::lower::{Arg, Kernel, Range, Schedule, Step};

/// One output of a run: its ONNX name, shape and values.
pub type Output = (String, Vec<usize>, Vec<f32>);

pub struct Executor {
    schedule: Schedule,
    arena: mobilenetc_runtime::memory::Arena,
    threads: usize,
}

impl Executor {
    pub fn new(schedule: Schedule) -> Executor {
        let arena = mobilenetc_runtime::memory::zeroed(schedule.arena_len);
        Executor { schedule, arena, threads: 1 }
    }

    /// Splits each conv, dense and head layer's output over `threads` threads (at least 1; the
    /// result is bit-identical for any count). Default 1.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The arena after the last run (inputs, activations, outputs at their planned ranges).
    pub fn arena(&self) -> &[f32] {
        &self.arena
    }

    /// An executor whose arena is checked against `max_bytes` before it is allocated (a model
    /// may ask for any arena size; the limit turns an absurd one into an error).
    pub fn with_limit(schedule: Schedule, max_bytes: u64) -> Result<Executor> {
        crate::limits::check(&format!("the activation arena of '{}'", schedule.name), crate::limits::f32_bytes(schedule.arena_len), max_bytes)?;
        Ok(Executor::new(schedule))
    }

    /// Optimizes a copy of the graph with the default passes and lowers it; the arena must fit
    /// the default limit ([`crate::limits::DEFAULT_MAX_BYTES`]).
    pub fn from_graph(g: &Graph) -> Result<Executor> {
        Executor::from_graph_with_limit(g, crate::limits::DEFAULT_MAX_BYTES)
    }

    /// [`Executor::from_graph`] under a byte limit for the arena.
    pub fn from_graph_with_limit(g: &Graph, max_bytes: u64) -> Result<Executor> {
        Executor::with_limit(crate::lower::compile(g)?, max_bytes)
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// Runs the model on named inputs (every runtime input of the model, each with exactly its
    /// shape's number of values) and returns every output.
    pub fn run(&mut self, inputs: &[(&str, &[f32])]) -> Result<Vec<Output>> {
        for (name, _) in inputs {
            if !self.schedule.inputs.iter().any(|b| b.name == *name) {
                let names: Vec<&str> = self.schedule.inputs.iter().map(|b| b.name.as_str()).collect();
                return Err(Error::Invalid(format!("the model has no input '{name}' (its inputs: {})", names.join(", "))));
            }
        }
        for b in &self.schedule.inputs {
            let (_, data) = inputs
                .iter()
                .find(|(n, _)| *n == b.name)
                .ok_or_else(|| Error::Invalid(format!("input '{}' of shape {:?} is missing", b.name, b.shape)))?;
            if data.len() != b.range.len {
                return Err(Error::Invalid(format!("input '{}' has {} values; its shape {:?} takes {}", b.name, data.len(), b.shape, b.range.len)));
            }
            self.arena[b.range.offset..b.range.end()].copy_from_slice(data);
        }
        for step in &self.schedule.steps {
            run_step_threads(step, &mut self.arena, &self.schedule.weights, self.threads);
        }
        Ok(self.schedule.outputs.iter().map(|b| (b.name.clone(), b.shape.clone(), b.range.of(&self.arena).to_vec())).collect())
    }
}

/// Packs weights supplied at run time for the kernel that reads them.
fn pack_at_run(kernel: &Kernel, raw: &[f32]) -> Vec<f32> {
    match kernel {
        Kernel::Conv(k) | Kernel::ConvNchw(k) => k.pack_weights(raw),
        Kernel::Gemm(k) => k.pack_b(raw),
        other => unreachable!("lowering never asks {} to pack at run time", other.kind()),
    }
}

/// Read-only views of several arena ranges and a writable view of the output range
/// (the dynamic twin of [`mobilenetc_runtime::model::split_io`]).
fn split_dyn<'a>(arena: &'a mut [f32], inputs: &[Range], out: Range) -> (Vec<&'a [f32]>, &'a mut [f32]) {
    let (left, rest) = arena.split_at_mut(out.offset);
    let (y, right) = rest.split_at_mut(out.len);
    let (left, right): (&[f32], &[f32]) = (left, right);
    let xs = inputs
        .iter()
        .map(|r| {
            if r.end() <= out.offset {
                &left[r.offset..r.end()]
            } else if r.offset >= out.end() {
                &right[r.offset - out.end()..r.end() - out.end()]
            } else {
                panic!("arena views overlap: input {r:?} and output {out:?}")
            }
        })
        .collect();
    (xs, y)
}

/// Runs one kernel call of the schedule on one thread.
pub fn run_step(step: &Step, arena: &mut [f32], weights: &[f32]) {
    run_step_threads(step, arena, weights, 1)
}

/// Runs one kernel call of the schedule, splitting its output over `threads` threads where
/// the kernel can.
pub fn run_step_threads(step: &Step, arena: &mut [f32], weights: &[f32], threads: usize) {
    let packed: Vec<Option<Vec<f32>>> =
        step.args.iter().map(|a| if let Arg::PackAtRun(r) = a { Some(pack_at_run(&step.kernel, r.of(arena))) } else { None }).collect();
    let arena_ranges: Vec<Range> = step.args.iter().filter_map(|a| if let Arg::Arena(r) = a { Some(*r) } else { None }).collect();
    let (mut views, y) = split_dyn(arena, &arena_ranges, step.out);
    views.reverse();
    let x: Vec<&[f32]> = step
        .args
        .iter()
        .zip(&packed)
        .map(|(a, p)| match a {
            Arg::Arena(_) => views.pop().expect("one view per arena operand"),
            Arg::Blob(r) => r.of(weights),
            Arg::PackAtRun(_) => p.as_deref().expect("packed above"),
        })
        .collect();
    match &step.kernel {
        Kernel::Conv(k) => k.run_threads(x[0], x[1], x[2], y, threads),
        Kernel::ConvNchw(k) => k.run_nchw_threads(x[0], x[1], x[2], y, threads),
        Kernel::DwPw(k) => k.run_threads(x[0], x[1], x[2], x[3], x[4], y, threads),
        Kernel::Dense(k) => k.run_threads(x[0], x[1], x[2], y, threads),
        Kernel::Gemm(k) => k.run(x[0], x[1], x[2], y),
        Kernel::MatMul { a_shape, b_shape } => MatMul { a_shape, b_shape }.run(x[0], x[1], y),
        Kernel::Head(k) => k.run_threads(x[0], x[1], x[2], y, threads),
        Kernel::Pool(k) => k.run(x[0], y),
        Kernel::GlobalAvgPool(k) => k.run(x[0], y),
        Kernel::Softmax(k) => k.run(x[0], y),
        Kernel::Binary { op, a_shape, b_shape, act } => Binary { op: *op, a_shape, b_shape, act: *act }.run(x[0], x[1], y),
        Kernel::Activation(a) => elementwise::activation(*a, x[0], y),
        Kernel::BatchNorm(k) => k.run(x[0], x[1], y),
        Kernel::Transpose { shape, perm } => Transpose { shape, perm }.run(x[0], y),
        Kernel::Pad { shape, pads, value } => Pad { shape, pads, value: *value }.run(x[0], y),
        Kernel::Concat { outer, inner, axis_lens } => Concat { outer: *outer, inner: *inner, axis_lens }.run(&x, y),
        Kernel::Copy => y.copy_from_slice(x[0]),
    }
}


#[cfg(test)]
mod tests;
