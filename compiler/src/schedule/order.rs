//! From a graph to the planner's steps: the schedule order, one step per node, and which ops
//! may run in place (decided here) or are views ([`crate::passes::is_view`]: Reshape, Flatten,
//! Identity, a Dropout without mask; inference semantics, the trainer builds its own steps).
//!
//! Two orders are candidates: the graph's deterministic topological order and a memory-aware
//! order (among the ready nodes, run the one that frees the most bytes net). For a chain they
//! coincide; for branchy graphs the second often lowers the peak. [`plan_graph`] plans both and
//! keeps the smaller arena (the topological order on ties), so the choice is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::buffers::{Buffer, BufferId, BufferKind, Step};
use super::plan::{plan, Plan};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op, TensorId};
use crate::passes::is_view;

/// All tensors are f32.
const ELEMENT_BYTES: usize = 4;

/// A graph lowered to planner steps.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphSchedule {
    pub buffers: Vec<Buffer>,
    pub steps: Vec<Step>,
    /// Per step: the node it runs.
    pub nodes: Vec<NodeId>,
    /// Per tensor: its buffer; `None` for constants (weights live outside the arena) and
    /// tensors no node or graph input/output uses.
    pub buffer_of: Vec<Option<BufferId>>,
    /// Per buffer: its tensor.
    pub tensor_of: Vec<TensorId>,
}

/// A graph's schedule and its memory plan.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphPlan {
    pub schedule: GraphSchedule,
    pub plan: Plan,
    /// Whether the memory-aware order beat the topological order.
    pub memory_order: bool,
}

impl GraphPlan {
    pub fn report_text(&self) -> String {
        super::report::report_text(&self.schedule.buffers, &self.schedule.steps, &self.plan)
    }
    /// The `memory` object of `inspect --plan --json`.
    pub fn report_json(&self) -> serde_json::Value {
        super::report::report_json(&self.schedule.buffers, &self.plan)
    }
}

/// Inputs (by position) that the node's first output may overwrite, index for index.
fn inplace_inputs(g: &Graph, op: &Op, inputs: &[TensorId], output: TensorId) -> Vec<usize> {
    match op {
        Op::Relu | Op::Clip { .. } | Op::BatchNorm { .. } => vec![0],
        // Broadcasting writes one output element from several input elements: only an input of
        // the output's own shape can be overwritten.
        Op::Add | Op::Sub | Op::Mul => (0..inputs.len()).filter(|&i| g.shape(inputs[i]) == g.shape(output)).collect(),
        _ => Vec::new(),
    }
}

fn tensor_bytes(g: &Graph, t: TensorId) -> Result<usize> {
    let info = g.tensor(t);
    info.shape
        .iter()
        .try_fold(ELEMENT_BYTES, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Limit(format!("tensor '{}' of shape {:?} is too large to address", info.name, info.shape)))
}

/// Checks that `order` runs every node once, each after the producers of its inputs.
fn check_order(g: &Graph, order: &[NodeId]) -> Result<()> {
    let producers = g.producers();
    let mut done: BTreeSet<NodeId> = BTreeSet::new();
    for &n in order {
        let Some(node) = g.dag.node_weight(n) else {
            return Err(Error::Graph(format!("the schedule names node {} which is not in the graph", n.index())));
        };
        if !done.insert(n) {
            return Err(Error::Graph(format!("the schedule runs node '{}' twice", node.name)));
        }
        for t in &node.inputs {
            if let Some(p) = producers.get(t) {
                if !done.contains(p) {
                    return Err(Error::Graph(format!("the schedule runs node '{}' before '{}', which produces its input '{}'", node.name, g.node(*p).name, g.tensor(*t).name)));
                }
            }
        }
    }
    if done.len() != g.dag.node_count() {
        return Err(Error::Graph(format!("the schedule runs {} of the graph's {} nodes", done.len(), g.dag.node_count())));
    }
    Ok(())
}

/// Lowers the graph to steps in the given node order, which must be topological.
pub fn schedule_in_order(g: &Graph, order: &[NodeId]) -> Result<GraphSchedule> {
    check_order(g, order)?;
    let mut used = vec![false; g.tensors.len()];
    for &t in g.inputs.iter().chain(&g.outputs) {
        used[t] = true;
    }
    for node in g.dag.node_weights() {
        for &t in node.inputs.iter().chain(&node.outputs) {
            used[t] = true;
        }
    }
    let mut buffers = Vec::new();
    let mut buffer_of = vec![None; g.tensors.len()];
    let mut tensor_of = Vec::new();
    for t in 0..g.tensors.len() {
        if !used[t] || g.is_constant(t) {
            continue;
        }
        let kind = if g.outputs.contains(&t) {
            BufferKind::Output
        } else if g.inputs.contains(&t) {
            BufferKind::Input
        } else {
            BufferKind::Activation
        };
        buffer_of[t] = Some(buffers.len());
        tensor_of.push(t);
        buffers.push(Buffer::new(g.tensor(t).name.clone(), tensor_bytes(g, t)?, kind));
    }

    let mut steps = Vec::with_capacity(order.len());
    for &n in order {
        let node = g.node(n);
        let mut reads: Vec<BufferId> = Vec::new();
        for b in node.inputs.iter().filter_map(|&t| buffer_of[t]) {
            if !reads.contains(&b) {
                reads.push(b);
            }
        }
        let mut writes: Vec<BufferId> = Vec::new();
        for b in node.outputs.iter().filter_map(|&t| buffer_of[t]) {
            if !writes.contains(&b) {
                writes.push(b);
            }
        }
        let mut step = Step::new(node.name.clone(), reads, writes);
        if let (Some(&x), Some(&y)) = (node.inputs.first(), node.outputs.first()) {
            if let (Some(bx), Some(by)) = (buffer_of[x], buffer_of[y]) {
                if is_view(g, n) && g.tensor(x).numel() == g.tensor(y).numel() {
                    step.alias.push((bx, by));
                } else {
                    for i in inplace_inputs(g, &node.op, &node.inputs, y) {
                        if let Some(b) = buffer_of[node.inputs[i]] {
                            if b != by && !step.inplace.contains(&(b, by)) {
                                step.inplace.push((b, by));
                            }
                        }
                    }
                }
            }
        }
        steps.push(step);
    }
    Ok(GraphSchedule { buffers, steps, nodes: order.to_vec(), buffer_of, tensor_of })
}

/// A topological order that, among the ready nodes, runs the one with the largest net freeing
/// (bytes of inputs it is the last reader of, minus bytes of outputs it allocates); ties go to
/// the earlier node of `topo`. Views allocate and free nothing.
pub fn memory_order(g: &Graph, topo: &[NodeId]) -> Result<Vec<NodeId>> {
    let pos: BTreeMap<NodeId, usize> = topo.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let mut waiting: Vec<usize> = topo
        .iter()
        .map(|&n| g.dag.edges_directed(n, Direction::Incoming).map(|e| e.source()).collect::<BTreeSet<_>>().len())
        .collect();
    let mut readers: BTreeMap<TensorId, usize> = BTreeMap::new();
    for &n in topo {
        for t in g.node(n).inputs.iter().collect::<BTreeSet<_>>() {
            *readers.entry(*t).or_default() += 1;
        }
    }
    let kept = |t: TensorId| g.is_constant(t) || g.outputs.contains(&t);
    let mut bytes = vec![0usize; g.tensors.len()];
    for (t, b) in bytes.iter_mut().enumerate() {
        *b = tensor_bytes(g, t)?;
    }

    let mut ready: BTreeSet<usize> = (0..topo.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(topo.len());
    while !ready.is_empty() {
        let score = |i: usize| -> i128 {
            let node = g.node(topo[i]);
            if is_view(g, topo[i]) {
                return 0;
            }
            let freed: usize = node.inputs.iter().collect::<BTreeSet<_>>().into_iter().filter(|&&t| !kept(t) && readers[&t] == 1).map(|&t| bytes[t]).sum();
            let allocated: usize = node.outputs.iter().map(|&t| bytes[t]).sum();
            freed as i128 - allocated as i128
        };
        // Highest score; the BTreeSet yields positions ascending, and `max_by_key` keeps the
        // last maximum, so compare on (score, Reverse(position)).
        let i = *ready.iter().max_by_key(|&&i| (score(i), std::cmp::Reverse(i))).expect("ready is not empty");
        ready.remove(&i);
        let n = topo[i];
        order.push(n);
        for t in g.node(n).inputs.iter().collect::<BTreeSet<_>>() {
            *readers.get_mut(t).expect("counted above") -= 1;
        }
        for s in g.successors(n) {
            let j = pos[&s];
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.insert(j);
            }
        }
    }
    Ok(order)
}

/// Schedules and plans the graph: the memory-aware order if it gives a smaller arena than the
/// topological order, else the topological order.
pub fn plan_graph(g: &Graph) -> Result<GraphPlan> {
    let topo = g.topo_order()?;
    let mem = memory_order(g, &topo)?;
    let schedule = schedule_in_order(g, &topo)?;
    let planned = plan(&schedule.buffers, &schedule.steps)?;
    let mut best = GraphPlan { schedule, plan: planned, memory_order: false };
    if mem != topo {
        let schedule = schedule_in_order(g, &mem)?;
        let planned = plan(&schedule.buffers, &schedule.steps)?;
        if planned.arena_bytes < best.plan.arena_bytes {
            best = GraphPlan { schedule, plan: planned, memory_order: true };
        }
    }
    Ok(best)
}

/// The chosen schedule of [`plan_graph`], without the plan.
pub fn schedule_from_graph(g: &Graph) -> Result<GraphSchedule> {
    Ok(plan_graph(g)?.schedule)
}
