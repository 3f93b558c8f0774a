//! The graph IR: ops with typed attributes, tensors with static f32 shapes, on petgraph.
//!
//! The source of truth for connectivity is each [`Node`]'s `inputs` and `outputs` (tensor ids);
//! the petgraph edges (producer → consumer, weighted by the tensor id) mirror them so that
//! ordering, cycle detection and traversals come from petgraph. Mutations go through the
//! methods here, which keep both in step; after editing `inputs` by hand, call [`Graph::relink`].
//!
//! Semantics are ONNX's (NCHW activations, OIHW conv weights); layout choices for kernels are
//! made at lowering, not here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use crate::error::{Error, Result};

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;
pub use petgraph::stable_graph::NodeIndex as NodeId;

/// A tensor's name and static shape (all tensors are f32).
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Constant data: an initializer or a folded constant.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor { shape, data }
    }
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Tensor { shape, data: vec![0.0; n] }
    }
}

/// An activation applied to a value: a standalone op's semantics or a fused epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    /// Clip to [min, max]; ReLU6 is `Clip { min: 0.0, max: 6.0 }`. Unbounded sides are ±inf.
    Clip { min: f32, max: f32 },
}

impl Activation {
    pub const RELU6: Activation = Activation::Clip { min: 0.0, max: 6.0 };

    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Clip { min, max } => x.max(min).min(max),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AutoPad {
    #[default]
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

/// Conv (2-D only: input [N, C, H, W], weight [M, C/group, kH, kW], optional bias [M]).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvAttrs {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    /// ONNX order: [top, left, bottom, right]. Shape inference resolves `auto_pad` into these.
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub group: usize,
    pub auto_pad: AutoPad,
    /// Fused epilogue (set by the activation-fusion pass; `None` on import).
    pub activation: Activation,
}

/// AveragePool / MaxPool (2-D).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolAttrs {
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub pads: [usize; 4],
    pub dilations: [usize; 2],
    pub auto_pad: AutoPad,
    pub ceil_mode: bool,
    /// AveragePool only: whether padded cells count in the divisor.
    pub count_include_pad: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GemmAttrs {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
    /// Fused epilogue (set by the activation-fusion pass).
    pub activation: Activation,
}

impl Default for GemmAttrs {
    fn default() -> Self {
        GemmAttrs { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: false, activation: Activation::None }
    }
}

/// The ops of the IR. Constant operands that ONNX passes as inputs in newer opsets (Clip's
/// bounds, Reshape's shape, Pad's pads) are folded into attributes at import, so `inputs`
/// holds only f32 tensors.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// inputs: x, w, [b]
    Conv(ConvAttrs),
    /// inputs: x, scale, bias, mean, var (inference semantics; training mode is the trainer's).
    BatchNorm { epsilon: f32, momentum: f32 },
    Relu,
    /// Unbounded sides are ±inf.
    Clip { min: f32, max: f32 },
    GlobalAveragePool,
    AveragePool(PoolAttrs),
    MaxPool(PoolAttrs),
    Flatten { axis: i64 },
    /// The ONNX target shape as written (0 copies a dimension unless allowzero, -1 infers one).
    Reshape { shape: Vec<i64>, allowzero: bool },
    /// inputs: a, b, [c]
    Gemm(GemmAttrs),
    MatMul,
    Add,
    Sub,
    Mul,
    Softmax { axis: i64 },
    Identity,
    /// Inference: the identity. `ratio` is kept for export and training.
    Dropout { ratio: f32 },
    Transpose { perm: Vec<usize> },
    /// Constant-mode pad. ONNX order: [x1_begin, x2_begin, ..., x1_end, x2_end, ...].
    Pad { pads: Vec<i64>, value: f32 },
    Concat { axis: i64 },
    /// The fused classifier head (made by the passes): global average pool, then a fully
    /// connected layer (weight [classes, C], bias [classes]), then softmax if `softmax`.
    /// inputs: x [N, C, H, W], w, b
    Head { softmax: bool },
}

impl Op {
    /// The ONNX op type (for messages, counting and export).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Conv(_) => "Conv",
            Op::BatchNorm { .. } => "BatchNormalization",
            Op::Relu => "Relu",
            Op::Clip { .. } => "Clip",
            Op::GlobalAveragePool => "GlobalAveragePool",
            Op::AveragePool(_) => "AveragePool",
            Op::MaxPool(_) => "MaxPool",
            Op::Flatten { .. } => "Flatten",
            Op::Reshape { .. } => "Reshape",
            Op::Gemm(_) => "Gemm",
            Op::MatMul => "MatMul",
            Op::Add => "Add",
            Op::Sub => "Sub",
            Op::Mul => "Mul",
            Op::Softmax { .. } => "Softmax",
            Op::Identity => "Identity",
            Op::Dropout { .. } => "Dropout",
            Op::Transpose { .. } => "Transpose",
            Op::Pad { .. } => "Pad",
            Op::Concat { .. } => "Concat",
            Op::Head { .. } => "Head",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
}

/// What a model carries besides its graph, kept so that a round trip loses nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelMeta {
    pub ir_version: i64,
    /// (domain, version) pairs of the source model; the default domain is "".
    pub opset_import: Vec<(String, i64)>,
    pub producer_name: String,
    pub producer_version: String,
    pub domain: String,
    pub model_version: i64,
    pub doc_string: String,
    pub graph_doc_string: String,
    pub metadata_props: Vec<(String, String)>,
}

impl ModelMeta {
    /// The default-domain opset of the source model (0 when none was declared).
    pub fn opset(&self) -> i64 {
        self.opset_import.iter().find(|(d, _)| d.is_empty() || d == "ai.onnx").map_or(0, |(_, v)| *v)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub name: String,
    pub tensors: Vec<TensorInfo>,
    /// Initializers and folded constants, by tensor.
    pub constants: BTreeMap<TensorId, Tensor>,
    /// Runtime inputs (never constants), in ONNX order.
    pub inputs: Vec<TensorId>,
    pub outputs: Vec<TensorId>,
    pub dag: StableDiGraph<Node, TensorId>,
    pub meta: ModelMeta,
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Self {
        Graph { name: name.into(), ..Default::default() }
    }

    pub fn add_tensor(&mut self, name: impl Into<String>, shape: Vec<usize>) -> TensorId {
        self.tensors.push(TensorInfo { name: name.into(), shape });
        self.tensors.len() - 1
    }

    pub fn add_constant(&mut self, name: impl Into<String>, value: Tensor) -> TensorId {
        let id = self.add_tensor(name, value.shape.clone());
        self.constants.insert(id, value);
        id
    }

    pub fn add_input(&mut self, name: impl Into<String>, shape: Vec<usize>) -> TensorId {
        let id = self.add_tensor(name, shape);
        self.inputs.push(id);
        id
    }

    pub fn tensor(&self, id: TensorId) -> &TensorInfo {
        &self.tensors[id]
    }

    pub fn shape(&self, id: TensorId) -> &[usize] {
        &self.tensors[id].shape
    }

    pub fn constant(&self, id: TensorId) -> Option<&Tensor> {
        self.constants.get(&id)
    }

    pub fn is_constant(&self, id: TensorId) -> bool {
        self.constants.contains_key(&id)
    }

    pub fn node(&self, n: NodeIndex) -> &Node {
        &self.dag[n]
    }

    pub fn node_mut(&mut self, n: NodeIndex) -> &mut Node {
        &mut self.dag[n]
    }

    /// Adds a node and links it to the producers of its inputs and the consumers of its outputs.
    pub fn add_node(&mut self, name: impl Into<String>, op: Op, inputs: Vec<TensorId>, outputs: Vec<TensorId>) -> NodeIndex {
        let n = self.dag.add_node(Node { name: name.into(), op, inputs, outputs });
        self.link_node(n);
        n
    }

    /// Adds a node with one output tensor of the given name and (possibly unknown, empty) shape.
    pub fn add_op(&mut self, name: impl Into<String>, op: Op, inputs: Vec<TensorId>, out_shape: Vec<usize>) -> (NodeIndex, TensorId) {
        let name = name.into();
        let out = self.add_tensor(name.clone(), out_shape);
        let n = self.add_node(name, op, inputs, vec![out]);
        (n, out)
    }

    /// Removes a node and its edges. Its output tensors stay in the table (unused).
    pub fn remove_node(&mut self, n: NodeIndex) -> Option<Node> {
        self.dag.remove_node(n)
    }

    fn link_node(&mut self, n: NodeIndex) {
        let (inputs, outputs) = {
            let node = &self.dag[n];
            (node.inputs.clone(), node.outputs.clone())
        };
        for t in inputs {
            if let Some(p) = self.producer(t) {
                if p != n {
                    self.dag.add_edge(p, n, t);
                }
            }
        }
        for t in outputs {
            for c in self.consumers(t) {
                if c != n && !self.dag.edges_connecting(n, c).any(|e| *e.weight() == t) {
                    self.dag.add_edge(n, c, t);
                }
            }
        }
    }

    /// Rebuilds every edge from the nodes' inputs and outputs (after editing them by hand).
    pub fn relink(&mut self) {
        self.dag.clear_edges();
        let producers = self.producers();
        let nodes: Vec<NodeIndex> = self.dag.node_indices().collect();
        for n in nodes {
            for &t in &self.dag[n].inputs.clone() {
                if let Some(&p) = producers.get(&t) {
                    self.dag.add_edge(p, n, t);
                }
            }
        }
    }

    /// Tensor → the node that writes it.
    pub fn producers(&self) -> HashMap<TensorId, NodeIndex> {
        let mut map = HashMap::new();
        for n in self.dag.node_indices() {
            for &t in &self.dag[n].outputs {
                map.insert(t, n);
            }
        }
        map
    }

    pub fn producer(&self, t: TensorId) -> Option<NodeIndex> {
        self.dag.node_indices().find(|&n| self.dag[n].outputs.contains(&t))
    }

    /// Nodes that read `t`, in node-index order.
    pub fn consumers(&self, t: TensorId) -> Vec<NodeIndex> {
        self.dag.node_indices().filter(|&n| self.dag[n].inputs.contains(&t)).collect()
    }

    /// Nodes that read an output of `n` (through the petgraph edges).
    pub fn successors(&self, n: NodeIndex) -> Vec<NodeIndex> {
        let set: BTreeSet<NodeIndex> = self.dag.edges_directed(n, Direction::Outgoing).map(|e| e.target()).collect();
        set.into_iter().collect()
    }

    /// Makes every reader of `old` (nodes and graph outputs) read `new` instead.
    pub fn replace_uses(&mut self, old: TensorId, new: TensorId) {
        let nodes: Vec<NodeIndex> = self.dag.node_indices().collect();
        for n in nodes {
            for t in self.dag[n].inputs.iter_mut() {
                if *t == old {
                    *t = new;
                }
            }
        }
        for t in self.outputs.iter_mut() {
            if *t == old {
                *t = new;
                // The graph output keeps its ONNX name: the new tensor takes it over.
            }
        }
        self.relink();
    }

    /// A deterministic topological order (Kahn's algorithm, ties broken by node index), or an
    /// error naming a node on a cycle.
    pub fn topo_order(&self) -> Result<Vec<NodeIndex>> {
        let mut indegree: BTreeMap<NodeIndex, usize> = BTreeMap::new();
        for n in self.dag.node_indices() {
            let preds: BTreeSet<NodeIndex> = self.dag.edges_directed(n, Direction::Incoming).map(|e| e.source()).collect();
            indegree.insert(n, preds.len());
        }
        let mut ready: BTreeSet<NodeIndex> = indegree.iter().filter(|(_, &d)| d == 0).map(|(&n, _)| n).collect();
        let mut order = Vec::with_capacity(indegree.len());
        while let Some(n) = ready.pop_first() {
            order.push(n);
            for s in self.successors(n) {
                let d = indegree.get_mut(&s).expect("successor is a node");
                *d -= 1;
                if *d == 0 {
                    ready.insert(s);
                }
            }
        }
        if order.len() != indegree.len() {
            let stuck = indegree.iter().find(|(n, &d)| d > 0 && !order.contains(n)).map(|(&n, _)| n).expect("a node is left");
            return Err(Error::Graph(format!("the graph has a cycle through node '{}' ({})", self.dag[stuck].name, self.dag[stuck].op.name())));
        }
        Ok(order)
    }

    /// Checks the structure: every input of a node is produced by a node, is a graph input or
    /// a constant; tensor names are unique; each tensor has one producer; no cycles.
    pub fn validate(&self) -> Result<()> {
        let mut names = HashMap::new();
        for (id, t) in self.tensors.iter().enumerate() {
            if let Some(prev) = names.insert(t.name.as_str(), id) {
                if self.is_used(prev) && self.is_used(id) {
                    return Err(Error::Graph(format!("two tensors are named '{}'", t.name)));
                }
            }
        }
        let mut produced = HashMap::new();
        for n in self.dag.node_indices() {
            for &t in &self.dag[n].outputs {
                if self.is_constant(t) || self.inputs.contains(&t) {
                    return Err(Error::Graph(format!("node '{}' writes '{}', which is a graph input or initializer", self.dag[n].name, self.tensors[t].name)));
                }
                if let Some(other) = produced.insert(t, n) {
                    return Err(Error::Graph(format!("tensor '{}' is written by two nodes: '{}' and '{}'", self.tensors[t].name, self.dag[other].name, self.dag[n].name)));
                }
            }
        }
        for n in self.dag.node_indices() {
            for &t in &self.dag[n].inputs {
                if !produced.contains_key(&t) && !self.is_constant(t) && !self.inputs.contains(&t) {
                    return Err(Error::Graph(format!("node '{}' ({}) reads '{}', which no node produces and which is neither a graph input nor an initializer", self.dag[n].name, self.dag[n].op.name(), self.tensors[t].name)));
                }
            }
        }
        for &t in &self.outputs {
            if !produced.contains_key(&t) && !self.is_constant(t) && !self.inputs.contains(&t) {
                return Err(Error::Graph(format!("graph output '{}' is produced by no node", self.tensors[t].name)));
            }
        }
        self.topo_order().map(|_| ())
    }

    fn is_used(&self, t: TensorId) -> bool {
        self.inputs.contains(&t) || self.outputs.contains(&t) || self.is_constant(t) || self.dag.node_weights().any(|n| n.inputs.contains(&t) || n.outputs.contains(&t))
    }

    /// Drops constants no node reads (after passes fold them away).
    pub fn prune_constants(&mut self) {
        let used: BTreeSet<TensorId> = self.dag.node_weights().flat_map(|n| n.inputs.iter().copied()).chain(self.outputs.iter().copied()).collect();
        self.constants.retain(|t, _| used.contains(t));
    }

    /// Nodes in topological order with their data (panics only on a cycle, which `validate`
    /// rules out at import).
    pub fn nodes_in_order(&self) -> Vec<(NodeIndex, &Node)> {
        self.topo_order().expect("graph validated at import").into_iter().map(|n| (n, &self.dag[n])).collect()
    }

    /// Finds a node by name.
    pub fn find_node(&self, name: &str) -> Option<NodeIndex> {
        self.dag.node_indices().find(|&n| self.dag[n].name == name)
    }

    /// Counts nodes whose op has the given ONNX name.
    pub fn count_op(&self, op: &str) -> usize {
        self.dag.node_weights().filter(|n| n.op.name() == op).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_inputs_and_order_is_topological() {
        let mut g = Graph::new("t");
        let x = g.add_input("x", vec![1, 4]);
        let (_, a) = g.add_op("a", Op::Relu, vec![x], vec![1, 4]);
        let (_, b) = g.add_op("b", Op::Relu, vec![a], vec![1, 4]);
        let (_, c) = g.add_op("c", Op::Add, vec![a, b], vec![1, 4]);
        g.outputs.push(c);
        g.validate().unwrap();
        let names: Vec<_> = g.nodes_in_order().iter().map(|(_, n)| n.name.clone()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(g.consumers(a).len(), 2);
    }

    #[test]
    fn cycle_is_an_error_naming_a_node() {
        let mut g = Graph::new("t");
        let a = g.add_tensor("a", vec![1]);
        let b = g.add_tensor("b", vec![1]);
        g.add_node("n1", Op::Relu, vec![b], vec![a]);
        g.add_node("n2", Op::Relu, vec![a], vec![b]);
        let err = g.validate().unwrap_err().to_string();
        assert!(err.contains("cycle"), "{err}");
    }

    #[test]
    fn dangling_input_is_named() {
        let mut g = Graph::new("t");
        let ghost = g.add_tensor("ghost", vec![1]);
        let (_, y) = g.add_op("n", Op::Relu, vec![ghost], vec![1]);
        g.outputs.push(y);
        let err = g.validate().unwrap_err().to_string();
        assert!(err.contains("ghost") && err.contains("'n'"), "{err}");
    }
}
