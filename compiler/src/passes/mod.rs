//! Graph passes: small rewrites, each `fn(&mut Graph) -> Result<bool>` (true when it changed
//! the graph), each in its own module, run by [`optimize`] to a fixed point.
//!
//! Every pass preserves the graph's meaning under ONNX semantics (the reference evaluator in
//! [`crate::eval`] checks that in each pass's tests), keeps the graph's inputs and outputs
//! (tensors and names), and never fuses across a tensor that another node or a graph output
//! still reads.
//!
//! Layout: the passes keep ONNX's NCHW semantics. The internal layout (channels-last, which
//! the runtime kernels use) is chosen at lowering, where each 4-D tensor's layout becomes a
//! property of the schedule; the passes only make that choice cheap, by moving the layout
//! Transposes of NHWC-exported graphs to the graph's edges ([`transposes`]) and by turning
//! data-free reshapes into views ([`views`]). The model's inputs and outputs keep their ONNX
//! layout.

mod rewrite;

pub mod drop_noops;
pub mod fold_batchnorm;
pub mod fold_pad;
pub mod fuse_activation;
pub mod head;
pub mod matmul_add;
pub mod transposes;
pub mod views;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::{Error, Result};
use crate::graph::{Graph, TensorId};

pub use views::is_view;

/// A pass: rewrites the graph in place, true when it changed something.
pub type Pass = fn(&mut Graph) -> Result<bool>;

/// Which passes [`optimize`] runs (all by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassOptions {
    pub drop_noops: bool,
    pub transposes: bool,
    pub views: bool,
    pub fold_pad: bool,
    pub matmul_add: bool,
    pub fold_batchnorm: bool,
    pub fuse_activation: bool,
    pub head: bool,
}

impl Default for PassOptions {
    fn default() -> Self {
        PassOptions { drop_noops: true, transposes: true, views: true, fold_pad: true, matmul_add: true, fold_batchnorm: true, fuse_activation: true, head: true }
    }
}

impl PassOptions {
    /// Every pass name, in the order one round of [`optimize`] runs them. Noise goes first
    /// (no-ops, transposes, views) so the patterns after it are contiguous; BatchNorm folds
    /// before activations fuse (an epilogue would sit between the conv and its BatchNorm);
    /// the head comes last, once its Gemm has absorbed MatMul + Add.
    pub const NAMES: [&'static str; 8] = ["drop_noops", "transposes", "views", "fold_pad", "matmul_add", "fold_batchnorm", "fuse_activation", "head"];

    /// All passes off (to switch single ones on in tests).
    pub fn none() -> Self {
        let mut o = PassOptions::default();
        for name in Self::NAMES {
            *o.flag(name).expect("NAMES are flags") = false;
        }
        o
    }

    /// Switches a pass off by name (`--no-pass NAME`); `-` and `_` are accepted alike.
    pub fn disable(&mut self, name: &str) -> Result<()> {
        let canonical = name.trim().replace('-', "_");
        match self.flag(&canonical) {
            Some(f) => {
                *f = false;
                Ok(())
            }
            None => Err(Error::Invalid(format!("unknown pass '{name}'; the passes are: {}", Self::NAMES.join(", ")))),
        }
    }

    /// Whether the named pass is on (None for an unknown name).
    pub fn enabled(&self, name: &str) -> Option<bool> {
        self.clone().flag(name).map(|f| *f)
    }

    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "drop_noops" => &mut self.drop_noops,
            "transposes" => &mut self.transposes,
            "views" => &mut self.views,
            "fold_pad" => &mut self.fold_pad,
            "matmul_add" => &mut self.matmul_add,
            "fold_batchnorm" => &mut self.fold_batchnorm,
            "fuse_activation" => &mut self.fuse_activation,
            "head" => &mut self.head,
            _ => return None,
        })
    }
}

/// The pass function of a name in [`PassOptions::NAMES`].
pub fn pass(name: &str) -> Option<Pass> {
    Some(match name {
        "drop_noops" => drop_noops::run,
        "transposes" => transposes::run,
        "views" => views::run,
        "fold_pad" => fold_pad::run,
        "matmul_add" => matmul_add::run,
        "fold_batchnorm" => fold_batchnorm::run,
        "fuse_activation" => fuse_activation::run,
        "head" => head::run,
        _ => return None,
    })
}

/// What [`optimize`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassReport {
    /// Rounds over all enabled passes until none changed the graph (the last round changes
    /// nothing).
    pub rounds: usize,
    /// For each enabled pass, in order: in how many rounds it changed the graph.
    pub changed: Vec<(&'static str, usize)>,
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Node count per op type before and after.
    pub ops_before: BTreeMap<&'static str, usize>,
    pub ops_after: BTreeMap<&'static str, usize>,
}

impl fmt::Display for PassReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "passes: {} node(s) → {} in {} round(s)", self.nodes_before, self.nodes_after, self.rounds)?;
        for (name, n) in &self.changed {
            writeln!(f, "  {name:<16} {}", if *n == 0 { "no change".to_string() } else { format!("changed the graph in {n} round(s)") })?;
        }
        let ops: BTreeSet<&str> = self.ops_before.keys().chain(self.ops_after.keys()).copied().collect();
        for op in ops {
            let (b, a) = (self.ops_before.get(op).copied().unwrap_or(0), self.ops_after.get(op).copied().unwrap_or(0));
            if a != b {
                writeln!(f, "  {op:<20} {b} → {a}")?;
            }
        }
        Ok(())
    }
}

/// More rounds than this means two passes undo each other: a bug, reported rather than looped.
const MAX_ROUNDS: usize = 64;

/// Runs the enabled passes, in [`PassOptions::NAMES`] order, until none changes the graph;
/// then drops dead nodes, unused constants and unused tensors (tensor ids are renumbered) and
/// validates. Graph inputs and outputs keep their tensors' names, shapes and order.
pub fn optimize(g: &mut Graph, opts: &PassOptions) -> Result<PassReport> {
    g.validate()?;
    let io_before = io_signature(g);
    let mut report = PassReport { nodes_before: g.dag.node_count(), ops_before: op_counts(g), ..Default::default() };
    let enabled: Vec<&'static str> = PassOptions::NAMES.into_iter().filter(|n| opts.enabled(n) == Some(true)).collect();
    report.changed = enabled.iter().map(|&n| (n, 0)).collect();
    loop {
        report.rounds += 1;
        let mut any = false;
        for (i, name) in enabled.iter().enumerate() {
            let run = pass(name).expect("NAMES have passes");
            if run(g)? {
                report.changed[i].1 += 1;
                any = true;
            }
        }
        if !any {
            break;
        }
        if report.rounds >= MAX_ROUNDS {
            return Err(Error::Graph(format!("the passes did not reach a fixed point in {MAX_ROUNDS} rounds ({:?})", report.changed)));
        }
    }
    cleanup(g);
    g.validate()?;
    if io_signature(g) != io_before {
        return Err(Error::Graph(format!("the passes changed the graph's inputs or outputs: {:?} → {:?}", io_before, io_signature(g))));
    }
    report.nodes_after = g.dag.node_count();
    report.ops_after = op_counts(g);
    Ok(report)
}

fn op_counts(g: &Graph) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for n in g.dag.node_weights() {
        *m.entry(n.op.name()).or_default() += 1;
    }
    m
}

type IoSignature = (Vec<(String, Vec<usize>)>, Vec<(String, Vec<usize>)>);

fn io_signature(g: &Graph) -> IoSignature {
    let sig = |ts: &[TensorId]| ts.iter().map(|&t| (g.tensor(t).name.clone(), g.tensor(t).shape.clone())).collect();
    (sig(&g.inputs), sig(&g.outputs))
}

/// Removes nodes none of whose outputs is read (repeatedly), then unused constants, then
/// renumbers the tensor table to the tensors still in use, so the memory planner and
/// `inspect` see only live tensors.
pub fn cleanup(g: &mut Graph) {
    loop {
        let read: BTreeSet<TensorId> = g.dag.node_weights().flat_map(|n| n.inputs.iter().copied()).chain(g.outputs.iter().copied()).collect();
        let dead: Vec<_> = g.dag.node_indices().filter(|&n| g.node(n).outputs.iter().all(|t| !read.contains(t))).collect();
        if dead.is_empty() {
            break;
        }
        for n in dead {
            g.remove_node(n);
        }
    }
    g.prune_constants();
    compact_tensors(g);
}

fn compact_tensors(g: &mut Graph) {
    let mut used: BTreeSet<TensorId> = g.inputs.iter().chain(&g.outputs).copied().collect();
    used.extend(g.constants.keys().copied());
    for n in g.dag.node_weights() {
        used.extend(n.inputs.iter().chain(&n.outputs).copied());
    }
    if used.len() == g.tensors.len() {
        return;
    }
    let remap: BTreeMap<TensorId, TensorId> = used.iter().enumerate().map(|(new, &old)| (old, new)).collect();
    g.tensors = used.iter().map(|&t| g.tensors[t].clone()).collect();
    g.constants = std::mem::take(&mut g.constants).into_iter().map(|(t, c)| (remap[&t], c)).collect();
    g.inputs.iter_mut().chain(g.outputs.iter_mut()).for_each(|t| *t = remap[t]);
    let nodes: Vec<_> = g.dag.node_indices().collect();
    for n in nodes {
        let node = g.node_mut(n);
        node.inputs.iter_mut().chain(node.outputs.iter_mut()).for_each(|t| *t = remap[t]);
    }
    g.relink();
}
