//! The import driver: graph inputs and initializers, function inlining, a topological walk of
//! the ONNX nodes in which each node is folded (static sub-graphs) or converted to IR ops with
//! its shape inferred at once (so later `Shape` ops fold), then the graph-level clean-ups.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use mobilenetc_runtime::onnx::tensor_proto::DataType;
use mobilenetc_runtime::onnx::tensor_shape_proto::dimension::Value as Dim;
use mobilenetc_runtime::onnx::type_proto::Value as TypeValue;
use mobilenetc_runtime::onnx::{GraphProto, ModelProto, ValueInfoProto};

use super::functions::{flatten, unique, FlatNode};
use super::tensors::{check_bytes, decode_tensor, dtype_name, Const, Source};
use super::{ops, patterns, ImportOptions};
use crate::error::{Error, Result, UnsupportedOp};
use crate::graph::shape::{fmt, infer_node, infer_shapes};
use crate::graph::{Graph, ModelMeta, Op, TensorId};

/// The newest supported opset of the default domain: the versions after 21 only widen the
/// type lists of the ops we import. The oldest is per op (`ops::min_opset`, 7 at the latest).
pub const MAX_OPSET: i64 = 28;

/// What a name of the ONNX graph stands for during import.
#[derive(Clone, Debug)]
pub enum Value {
    /// An IR tensor: a runtime input, a node output, or a float32 constant.
    Ir(TensorId),
    /// A constant not (yet) in the IR: integer shape data, a Constant node's or a folded value.
    Const(Const),
    /// Computed downstream of an unsupported op (which is reported instead).
    Unknown,
    /// An initializer that cannot be read (the message says why); an error only if used.
    Bad(String),
}

pub struct Importer<'a> {
    pub g: Graph,
    pub values: HashMap<String, Value>,
    /// Names read by some node or listed as graph outputs.
    pub used: HashSet<String>,
    /// Every name in use, so that generated names stay unique.
    pub names: HashSet<String>,
    pub src: Source<'a>,
    unsupported: Vec<UnsupportedOp>,
    /// Symbolic dims that were given values, for shape-error hints.
    fixed_dims: Vec<String>,
    opsets: Vec<(String, i64)>,
}

pub fn import_model(model: &ModelProto, opts: &ImportOptions, dir: Option<&Path>) -> Result<Graph> {
    let graph = model.graph.as_ref().ok_or_else(|| Error::Decode("the model has no graph (is this an ONNX model file?)".into()))?;
    let mut im = Importer {
        g: Graph::new(graph.name.clone().unwrap_or_default()),
        values: HashMap::new(),
        used: HashSet::new(),
        names: HashSet::new(),
        src: Source { dir, max_bytes: opts.max_bytes },
        unsupported: Vec::new(),
        fixed_dims: Vec::new(),
        opsets: model.opset_import.iter().map(|o| (o.domain.clone().unwrap_or_default(), o.version.unwrap_or(0))).collect(),
    };
    im.g.meta = meta(model, graph);
    im.collect_names(graph);
    im.initializers(graph)?;
    im.inputs(graph, opts)?;
    let nodes = flatten(model, &mut im.names)?;
    let order = im.order(&nodes, graph)?;
    for n in &nodes {
        im.used.extend(n.proto.input.iter().filter(|s| !s.is_empty()).cloned());
    }
    im.used.extend(graph.output.iter().filter_map(|o| o.name.clone()));
    for i in order {
        im.node(&nodes[i])?;
    }
    if !im.unsupported.is_empty() {
        return Err(Error::Unsupported(im.unsupported));
    }
    im.outputs(graph)?;
    let mut g = im.g;
    patterns::normalize_relu6(&mut g);
    prune_dead_nodes(&mut g);
    g.prune_constants();
    g.validate()?;
    infer_shapes(&mut g)?;
    check_declared_outputs(&g, graph)?;
    Ok(g)
}

fn meta(model: &ModelProto, graph: &GraphProto) -> ModelMeta {
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    ModelMeta {
        ir_version: model.ir_version.unwrap_or(0),
        opset_import: model.opset_import.iter().map(|o| (s(&o.domain), o.version.unwrap_or(0))).collect(),
        producer_name: s(&model.producer_name),
        producer_version: s(&model.producer_version),
        domain: s(&model.domain),
        model_version: model.model_version.unwrap_or(0),
        doc_string: s(&model.doc_string),
        graph_doc_string: s(&graph.doc_string),
        metadata_props: model.metadata_props.iter().map(|p| (s(&p.key), s(&p.value))).collect(),
    }
}

/// Drops nodes whose outputs nobody reads (exporters leave some; they would cost time).
fn prune_dead_nodes(g: &mut Graph) {
    loop {
        let read: HashSet<TensorId> = g.dag.node_weights().flat_map(|n| n.inputs.iter().copied()).chain(g.outputs.iter().copied()).collect();
        let dead: Vec<_> = g.dag.node_indices().filter(|&n| g.node(n).outputs.iter().all(|t| !read.contains(t))).collect();
        if dead.is_empty() {
            return;
        }
        for n in dead {
            g.remove_node(n);
        }
    }
}

/// A graph output whose declared static dims disagree with what the model computes is a
/// broken model (or a wrong --dim); say so rather than produce a surprising shape.
fn check_declared_outputs(g: &Graph, graph: &GraphProto) -> Result<()> {
    for (vi, &t) in graph.output.iter().zip(&g.outputs) {
        let Some(dims) = tensor_dims(vi) else { continue };
        let got = g.shape(t);
        let agree = dims.len() == got.len() && dims.iter().zip(got).all(|(d, &s)| !matches!(d, Some(v) if *v as usize != s));
        if !agree {
            let declared: Vec<String> = dims.iter().map(|d| d.map_or("?".into(), |v| v.to_string())).collect();
            let name = g.tensor(t).name.clone();
            let (node, op) = g.producer(t).map(|n| (g.node(n).name.clone(), g.node(n).op.name())).unwrap_or((name.clone(), "output"));
            return Err(Error::shape(&node, op, format!(
                "computes {} for graph output '{name}', but the model declares [{}]; check the input shapes (and any --dim values)",
                fmt(got),
                declared.join(", ")
            )));
        }
    }
    Ok(())
}

/// The declared dims of a tensor value (None per unknown dim), or None without a shape.
fn tensor_dims(vi: &ValueInfoProto) -> Option<Vec<Option<i64>>> {
    let Some(TypeValue::TensorType(t)) = vi.r#type.as_ref()?.value.as_ref() else { return None };
    let shape = t.shape.as_ref()?;
    Some(shape.dim.iter().map(|d| match d.value {
        Some(Dim::DimValue(v)) if v > 0 => Some(v),
        _ => None,
    }).collect())
}

impl<'a> Importer<'a> {
    fn collect_names(&mut self, graph: &GraphProto) {
        let vis = graph.input.iter().chain(&graph.output).chain(&graph.value_info);
        self.names.extend(vis.filter_map(|v| v.name.clone()));
        self.names.extend(graph.initializer.iter().filter_map(|t| t.name.clone()));
        self.names.extend(graph.node.iter().flat_map(|n| n.output.iter().cloned()));
    }

    fn initializers(&mut self, graph: &GraphProto) -> Result<()> {
        if let Some(s) = graph.sparse_initializer.first() {
            let name = s.values.as_ref().and_then(|v| v.name.clone()).unwrap_or_default();
            return Err(Error::Invalid(format!("sparse initializer '{name}' is not supported; store it dense")));
        }
        let mut total: u64 = 0;
        for t in &graph.initializer {
            let name = t.name.clone().unwrap_or_default();
            if name.is_empty() {
                return Err(Error::Decode("an initializer has no name".into()));
            }
            if self.values.contains_key(&name) {
                return Err(Error::Graph(format!("two initializers are named '{name}'")));
            }
            let what = format!("initializer '{name}'");
            let value = match decode_tensor(t, &what, &self.src) {
                Ok(c) => {
                    total = total.saturating_add(c.data.len() as u64 * 4);
                    if total > self.src.max_bytes {
                        return Err(Error::Limit(format!("the model's initializers need more than the limit of {} bytes; refusing to load them", self.src.max_bytes)));
                    }
                    match c.into_f32() {
                        Ok(t) => Value::Ir(self.g.add_constant(name.clone(), t)),
                        Err(c) => Value::Const(c),
                    }
                }
                // An unreadable type matters only if something reads it.
                Err(Error::Invalid(m)) => Value::Bad(m),
                Err(e) => return Err(e),
            };
            self.values.insert(name, value);
        }
        Ok(())
    }

    /// Runtime inputs: graph inputs that are not initializers, with symbolic dims resolved.
    fn inputs(&mut self, graph: &GraphProto, opts: &ImportOptions) -> Result<()> {
        for vi in &graph.input {
            let name = vi.name.clone().unwrap_or_default();
            if self.values.contains_key(&name) {
                if matches!(self.values[&name], Value::Ir(id) if self.g.inputs.contains(&id)) {
                    return Err(Error::Graph(format!("two graph inputs are named '{name}'")));
                }
                continue; // An initializer: a constant (ONNX IR < 4 lists them as inputs too).
            }
            let Some(TypeValue::TensorType(t)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
                return Err(Error::Invalid(format!("graph input '{name}' is not a tensor (or declares no type); mobilenetc takes float32 tensors")));
            };
            let et = t.elem_type.unwrap_or(0);
            if et != DataType::Float as i32 {
                return Err(Error::Invalid(format!(
                    "graph input '{name}' has element type {}; runtime inputs must be float32 (integer operands such as shapes and pads must be initializers)",
                    dtype_name(et)
                )));
            }
            let Some(shape) = &t.shape else {
                return Err(Error::Invalid(format!("graph input '{name}' declares no shape; re-export the model with input shapes")));
            };
            let mut dims = Vec::with_capacity(shape.dim.len());
            for (i, d) in shape.dim.iter().enumerate() {
                dims.push(self.resolve_dim(&name, i, d.value.as_ref(), opts)?);
            }
            check_bytes(&format!("graph input '{name}'"), &dims, 4, opts.max_bytes)?;
            let id = self.g.add_input(name.clone(), dims);
            self.values.insert(name, Value::Ir(id));
        }
        Ok(())
    }

    fn resolve_dim(&mut self, input: &str, i: usize, d: Option<&Dim>, opts: &ImportOptions) -> Result<usize> {
        let by_pos = format!("{input}:{i}");
        let (param, value) = match d {
            Some(Dim::DimValue(v)) if *v > 0 => return Ok(*v as usize),
            Some(Dim::DimParam(p)) if !p.is_empty() => (Some(p.as_str()), opts.dims.get(p).or_else(|| opts.dims.get(&by_pos))),
            _ => (None, opts.dims.get(&by_pos)),
        };
        let value = match (value, i) {
            (Some(&v), _) => v,
            (None, 0) => opts.batch,
            (None, _) => {
                return Err(Error::Invalid(match param {
                    Some(p) => format!("graph input '{input}' dimension {i} is symbolic ('{p}') and has no value: fix it with --dim {p}=VALUE (for example --dim {p}=224)"),
                    None => format!("graph input '{input}' dimension {i} has neither a value nor a name: fix it with --dim {by_pos}=VALUE"),
                }));
            }
        };
        if value == 0 {
            return Err(Error::Invalid(format!("graph input '{input}' dimension {i} is set to 0; it must be at least 1")));
        }
        self.fixed_dims.push(format!("{input}[{i}] {}= {value}", param.map(|p| format!("'{p}' ")).unwrap_or_default()));
        Ok(value)
    }

    /// A topological order of the flattened nodes (ties by position), refusing duplicate
    /// writers, reads of names nobody produces, and cycles.
    fn order(&self, nodes: &[FlatNode], graph: &GraphProto) -> Result<Vec<usize>> {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for o in n.proto.output.iter().filter(|o| !o.is_empty()) {
                if self.values.contains_key(o) {
                    return Err(Error::Graph(format!("node '{}' writes '{o}', which is a graph input or initializer", n.name)));
                }
                if let Some(j) = producer.insert(o, i) {
                    return Err(Error::Graph(format!("tensor '{o}' is written by two nodes: '{}' and '{}'", nodes[j].name, n.name)));
                }
            }
        }
        let mut indegree = vec![0usize; nodes.len()];
        let mut succ: Vec<Vec<usize>> = vec![vec![]; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for t in n.proto.input.iter().filter(|t| !t.is_empty()) {
                match producer.get(t.as_str()) {
                    Some(&p) => {
                        succ[p].push(i);
                        indegree[i] += 1;
                    }
                    None if self.values.contains_key(t) => {}
                    None => {
                        return Err(Error::Graph(format!(
                            "node '{}' ({}) reads '{t}', which no node produces and which is neither a graph input nor an initializer",
                            n.name,
                            n.proto.op_type.as_deref().unwrap_or("?")
                        )))
                    }
                }
            }
        }
        for o in &graph.output {
            let name = o.name.as_deref().unwrap_or("");
            if !producer.contains_key(name) && !self.values.contains_key(name) {
                return Err(Error::Graph(format!("graph output '{name}' is produced by no node")));
            }
        }
        let mut ready: BTreeSet<usize> = (0..nodes.len()).filter(|&i| indegree[i] == 0).collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for &s in &succ[i] {
                indegree[s] -= 1;
                if indegree[s] == 0 {
                    ready.insert(s);
                }
            }
        }
        if order.len() < nodes.len() {
            let stuck = (0..nodes.len()).find(|&i| indegree[i] > 0).expect("a node is left");
            return Err(Error::Graph(format!("the graph has a cycle through node '{}' ({})", nodes[stuck].name, nodes[stuck].proto.op_type.as_deref().unwrap_or("?"))));
        }
        Ok(order)
    }

    fn node(&mut self, n: &FlatNode) -> Result<()> {
        let op = n.proto.op_type.as_deref().unwrap_or("");
        let domain = match n.proto.domain.as_deref() {
            None | Some("ai.onnx") => "",
            Some(d) => d,
        };
        let known = domain.is_empty() && ops::is_known(op) && (ops::min_opset(op)..=MAX_OPSET).contains(&n.opset);
        let blocked = n.proto.input.iter().any(|i| matches!(self.values.get(i), Some(Value::Unknown)));
        if known && !blocked && ops::convert(self, n)? {
            return Ok(());
        }
        if !known || !blocked {
            let opset = if domain.is_empty() { n.opset } else { self.opsets.iter().find(|(d, _)| d == domain).map_or(0, |(_, v)| *v) };
            self.unsupported.push(UnsupportedOp { node: n.name.clone(), op: op.to_string(), domain: domain.to_string(), opset });
        }
        for o in n.proto.output.iter().filter(|o| !o.is_empty()) {
            self.values.insert(o.clone(), Value::Unknown);
        }
        Ok(())
    }

    fn outputs(&mut self, graph: &GraphProto) -> Result<()> {
        for vi in &graph.output {
            let name = vi.name.clone().unwrap_or_default();
            let id = match self.values.get(&name) {
                Some(Value::Ir(id)) => *id,
                Some(Value::Const(c)) => match c.clone().into_f32() {
                    Ok(t) => self.materialize(&name, t),
                    Err(c) => return Err(Error::Invalid(format!("graph output '{name}' is a constant of type {}; outputs must be float32", c.type_name()))),
                },
                Some(Value::Bad(m)) => return Err(Error::Invalid(format!("graph output '{name}': {m}"))),
                _ => return Err(Error::Graph(format!("graph output '{name}' is produced by no node"))),
            };
            self.g.outputs.push(id);
        }
        Ok(())
    }

    fn materialize(&mut self, name: &str, t: crate::graph::Tensor) -> TensorId {
        let id = self.g.add_constant(name.to_string(), t);
        self.values.insert(name.to_string(), Value::Ir(id));
        id
    }

    // ---- helpers for ops.rs ----

    pub fn value(&self, n: &FlatNode, name: &str) -> Result<&Value> {
        match self.values.get(name) {
            Some(Value::Bad(m)) => Err(Error::node(&n.name, n.proto.op_type.as_deref().unwrap_or(""), m.clone())),
            Some(v) => Ok(v),
            None => Err(Error::Graph(format!("node '{}' reads '{name}', which is not defined", n.name))),
        }
    }

    /// The value of `name` if it is a constant.
    pub fn constant(&self, name: &str) -> Option<Const> {
        match self.values.get(name)? {
            Value::Const(c) => Some(c.clone()),
            Value::Ir(id) => self.g.constant(*id).map(|t| Const::f32s(t.clone())),
            _ => None,
        }
    }

    pub fn is_constant(&self, name: &str) -> bool {
        match self.values.get(name) {
            Some(Value::Const(_)) => true,
            Some(Value::Ir(id)) => self.g.is_constant(*id),
            _ => false,
        }
    }

    pub fn shape_of(&self, n: &FlatNode, name: &str) -> Result<Vec<usize>> {
        Ok(match self.value(n, name)? {
            Value::Ir(id) => self.g.shape(*id).to_vec(),
            Value::Const(c) => c.shape.clone(),
            _ => unreachable!("callers skip nodes downstream of unsupported ops"),
        })
    }

    /// The IR tensor for `name`; float32 constants enter the IR here, other types are refused.
    pub fn tensor(&mut self, n: &FlatNode, name: &str) -> Result<TensorId> {
        match self.value(n, name)?.clone() {
            Value::Ir(id) => Ok(id),
            Value::Const(c) => match c.into_f32() {
                Ok(t) => Ok(self.materialize(name, t)),
                Err(c) => Err(Error::node(
                    &n.name,
                    n.proto.op_type.as_deref().unwrap_or(""),
                    format!("reads '{name}', a {} tensor; only float32 data can flow into this op (integer tensors are supported only as shape operands)", c.type_name()),
                )),
            },
            _ => unreachable!("callers skip nodes downstream of unsupported ops"),
        }
    }

    pub fn set_const(&mut self, name: &str, c: Const) {
        self.values.insert(name.to_string(), Value::Const(c));
    }

    pub fn fresh(&mut self, base: &str) -> String {
        unique(base, &mut self.names)
    }

    /// Adds an IR node writing the tensor `out`, infers its shape and checks the limit.
    pub fn emit(&mut self, node: &str, op: Op, inputs: Vec<TensorId>, out: &str) -> Result<TensorId> {
        let t = self.g.add_tensor(out.to_string(), vec![]);
        let idx = self.g.add_node(node.to_string(), op, inputs, vec![t]);
        if let Err(e) = infer_node(&mut self.g, idx) {
            return Err(match e {
                Error::Shape { node, op, message } if !self.fixed_dims.is_empty() => Error::Shape {
                    node,
                    op,
                    message: format!("{message} (symbolic input dims were set to: {}; change them with --dim NAME=VALUE)", self.fixed_dims.join(", ")),
                },
                e => e,
            });
        }
        let name = self.g.node(idx).name.clone();
        let op_name = self.g.node(idx).op.name();
        check_bytes(&format!("node '{name}' ({op_name}): output '{out}'"), &self.g.tensors[t].shape, 4, self.src.max_bytes)?;
        self.values.insert(out.to_string(), Value::Ir(t));
        Ok(t)
    }
}
