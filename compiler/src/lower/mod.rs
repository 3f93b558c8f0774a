//! Lowering: an (optimized) graph becomes a [`Schedule`] of kernel instances.
//!
//! Each node becomes one runtime kernel call with constant parameters, operands in the arena
//! (placed by the memory planner) or in the weight blob (packed here, at compile time, in the
//! layout the kernel reads). Views (Reshape, Flatten, Identity, Dropout, layout-only
//! Transposes) move no data: they alias their input's storage.
//!
//! Layout: 4-D activations are channels-last (NHWC) inside; graph inputs and outputs keep their
//! ONNX layout, with a conversion inserted at the edges only where the bytes differ (see
//! [`layout`]). A tf2onnx graph whose NHWC input is followed by `Transpose(0,3,1,2)` thus
//! needs no conversion at all.

mod build;
pub mod kernel;
pub mod layout;

pub use kernel::{Arg, Kernel, Range, Step};

use crate::error::Result;
use crate::graph::Graph;

/// A model's runtime input or output: its ONNX name and shape, and where it lives in the arena
/// (in its ONNX layout).
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub name: String,
    pub shape: Vec<usize>,
    pub range: Range,
}

/// The ordered kernel instances of one model, with the packed weights and the arena plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub name: String,
    pub steps: Vec<Step>,
    /// The packed weight blob; every slot starts on a 64-byte boundary.
    pub weights: Vec<f32>,
    /// Arena length in f32 elements.
    pub arena_len: usize,
    /// The largest set of buffers alive together, and one buffer per tensor (bytes).
    pub arena_lower_bound_bytes: usize,
    pub arena_naive_bytes: usize,
    pub inputs: Vec<Binding>,
    pub outputs: Vec<Binding>,
    /// Conv and fully connected multiply-accumulates of one inference.
    pub mult_adds: u64,
    /// Conv and fully connected weights plus fully connected biases (the paper's count).
    pub params: u64,
}

impl Schedule {
    pub fn arena_bytes(&self) -> usize {
        self.arena_len * 4
    }

    /// Whether some weights arrive as runtime inputs (packed by the executor at run time).
    pub fn packs_at_run_time(&self) -> bool {
        self.steps.iter().any(|s| s.args.iter().any(|a| matches!(a, Arg::PackAtRun(_))))
    }

    /// The weight blob as the little-endian bytes that generated code embeds.
    pub fn weight_bytes(&self) -> Vec<u8> {
        mobilenetc_runtime::model::encode_le(&self.weights)
    }
}

/// Lowers a graph (normally after [`crate::passes::optimize`]) to a schedule. Errors name the
/// node, its op and the shapes that the kernels cannot take.
pub fn lower(g: &Graph) -> Result<Schedule> {
    build::Builder::new(g).lower()
}

/// Optimizes a copy of the graph with the default passes, then lowers it. The schedule's
/// mult-adds and params are counted on the source graph, as `mobilenetc inspect` counts them.
pub fn compile(g: &Graph) -> Result<Schedule> {
    let counts = crate::inspect::count(g)?;
    let mut g = g.clone();
    crate::passes::optimize(&mut g, &crate::passes::PassOptions::default())?;
    let mut s = lower(&g)?;
    s.mult_adds = counts.mult_adds;
    s.params = counts.params;
    Ok(s)
}
