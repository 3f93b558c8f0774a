//! Graph IR → ONNX `ModelProto`, and atomic writing of `.onnx` files.
//!
//! # What is written
//!
//! - `ir_version` 8 and the default-domain opset 17 (the newest opset whose form of every op we
//!   write is the one onnxruntime 1.14+ and every current importer accept; ir_version 8 is the
//!   one opset 17 requires). The source model's opset is not kept: ops are always written in
//!   their opset-17 form, e.g. Clip's bounds, Reshape's shape and Pad's pads as constant
//!   initializer inputs, Dropout's ratio as an input.
//! - Initializers as little-endian `raw_data`, in the order their first reader appears in
//!   topological order, so that export → import → export is byte-identical. Constants no node
//!   reads are not written.
//! - Graph inputs and outputs with their shapes; `value_info` with the shape of every
//!   intermediate tensor. With `symbolic_batch`, the leading dimension of every activation is
//!   written as that name — unless some op ties the graph to its batch size (a Reshape to a
//!   literal leading dimension, a Transpose that moves the batch axis, a Flatten at axis 0, …),
//!   in which case every dimension stays fixed.
//! - The model's metadata as imported (producer, domain, doc strings, metadata_props); a
//!   graph without a producer is written with producer `mobilenetc` and this crate's version.
//! - Fused IR as standard ONNX: an activation epilogue on Conv/Gemm becomes the op, writing
//!   `<output>_preact`, then a Relu or Clip writing the original output; `Head` becomes
//!   GlobalAveragePool, Flatten, Gemm (`transB = 1`) and, if it has one, Softmax.
//!
//! Generated tensor and node names are derived from the node's name (`<node>_min`,
//! `<node>_shape`, …) and made unique against every name in the graph.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use mobilenetc_runtime::onnx::attribute_proto::AttributeType;
use mobilenetc_runtime::onnx::tensor_proto::DataType;
use mobilenetc_runtime::onnx::tensor_shape_proto::{dimension, Dimension};
use mobilenetc_runtime::onnx::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use prost::Message;

use crate::error::{Error, Result};
use crate::graph::{Activation, AutoPad, Graph, Node, Op, PoolAttrs, TensorId};

/// The ONNX IR version and default-domain opset of exported models.
pub const EXPORT_IR_VERSION: i64 = 8;
pub const EXPORT_OPSET: i64 = 17;

#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Write the batch dimension of inputs and outputs as this symbolic name (None: fixed).
    pub symbolic_batch: Option<String>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            symbolic_batch: Some("batch".into()),
        }
    }
}

/// Builds the ModelProto of `g` (see the module docs for what is written).
pub fn to_model_proto(g: &Graph, opts: &ExportOptions) -> Result<ModelProto> {
    let order = g.topo_order()?;
    let mut w = Writer::new(g, opts, &order)?;
    for &n in &order {
        w.node(g.node(n))?;
    }
    w.finish()
}

/// The encoded model bytes.
pub fn to_bytes(g: &Graph, opts: &ExportOptions) -> Result<Vec<u8>> {
    Ok(to_model_proto(g, opts)?.encode_to_vec())
}

/// Writes the model atomically (temporary file, fsync, rename): a crash or an error never
/// leaves a half-written file at `path`.
pub fn export_file(g: &Graph, path: &Path, opts: &ExportOptions) -> Result<()> {
    let bytes = to_bytes(g, opts)?;
    mobilenetc_runtime::atomic::write_atomic(path, &bytes).map_err(|e| Error::io(path, e))
}

/// Allocates names unique against every name already taken.
#[derive(Default)]
struct Names {
    taken: HashSet<String>,
}

impl Names {
    fn fresh(&mut self, base: &str) -> String {
        if self.taken.insert(base.to_string()) {
            return base.to_string();
        }
        (1..)
            .map(|i| format!("{base}_{i}"))
            .find(|n| self.taken.insert(n.clone()))
            .expect("an unused suffix exists")
    }
}

struct Writer<'g> {
    g: &'g Graph,
    /// ONNX names of the IR tensors that are written.
    names: HashMap<TensorId, String>,
    tensor_names: Names,
    node_names: Names,
    /// The symbolic batch name, when every activation carries the batch in dimension 0.
    batch: Option<String>,
    /// Activations (whose leading dimension is the batch), by IR tensor.
    batched: HashSet<TensorId>,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    emitted: HashSet<TensorId>,
    /// IR tensors by ONNX name, and the graph's inputs and outputs (which get no value_info).
    by_name: HashMap<String, TensorId>,
    boundary: HashSet<String>,
    /// Shapes of generated intermediates, written when the node writing them is.
    generated: HashMap<String, ValueInfoProto>,
    value_info: Vec<ValueInfoProto>,
}

impl<'g> Writer<'g> {
    fn new(g: &'g Graph, opts: &ExportOptions, order: &[crate::graph::NodeId]) -> Result<Self> {
        // Every tensor that is written keeps its name; names must be unique among them.
        let mut used: BTreeSet<TensorId> = g.inputs.iter().chain(&g.outputs).copied().collect();
        for &n in order {
            let node = g.node(n);
            used.extend(node.inputs.iter().chain(&node.outputs));
        }
        let mut tensor_names = Names::default();
        let mut names = HashMap::new();
        for &t in &used {
            let name = &g.tensor(t).name;
            if !name.is_empty() && !tensor_names.taken.insert(name.clone()) {
                return Err(Error::Graph(format!(
                    "two tensors are named '{name}'; ONNX needs unique tensor names"
                )));
            }
            names.insert(t, name.clone());
        }
        for &t in &used {
            if names[&t].is_empty() {
                names.insert(t, tensor_names.fresh(&format!("tensor{t}")));
            }
        }
        let mut node_names = Names::default();
        for &n in order {
            node_names.taken.insert(g.node(n).name.clone());
        }
        let batched = batched_tensors(g, order);
        let batch = opts.symbolic_batch.clone().filter(|_| batched.is_some());
        let by_name = names.iter().map(|(&t, n)| (n.clone(), t)).collect();
        let boundary = g
            .inputs
            .iter()
            .chain(&g.outputs)
            .map(|t| names[t].clone())
            .collect();
        Ok(Writer {
            g,
            names,
            tensor_names,
            node_names,
            batch,
            batched: batched.unwrap_or_default(),
            nodes: Vec::new(),
            initializers: Vec::new(),
            emitted: HashSet::new(),
            by_name,
            boundary,
            generated: HashMap::new(),
            value_info: Vec::new(),
        })
    }

    fn name(&self, t: TensorId) -> String {
        self.names[&t].clone()
    }

    /// The ONNX name of an input, writing its initializer on first use.
    fn input(&mut self, t: TensorId) -> String {
        if let Some(c) = self.g.constant(t) {
            if self.emitted.insert(t) {
                let bytes = c.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                self.initializers.push(tensor_proto(
                    self.name(t),
                    &c.shape,
                    DataType::Float,
                    bytes,
                ));
            }
        }
        self.name(t)
    }

    fn inputs(&mut self, ts: &[TensorId]) -> Vec<String> {
        ts.iter().map(|&t| self.input(t)).collect()
    }

    fn const_f32(&mut self, base: &str, v: f32) -> String {
        let name = self.tensor_names.fresh(base);
        self.initializers.push(tensor_proto(
            name.clone(),
            &[],
            DataType::Float,
            v.to_le_bytes().to_vec(),
        ));
        name
    }

    fn const_i64(&mut self, base: &str, v: &[i64]) -> String {
        let name = self.tensor_names.fresh(base);
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.initializers.push(tensor_proto(
            name.clone(),
            &[v.len()],
            DataType::Int64,
            bytes,
        ));
        name
    }

    /// Writes a node, and the value_info of its outputs (so value_info follows node order,
    /// which keeps export → import → export identical even for expanded fused ops).
    fn push(
        &mut self,
        name: String,
        op: &str,
        inputs: Vec<String>,
        outputs: Vec<String>,
        attribute: Vec<AttributeProto>,
    ) {
        for out in &outputs {
            if self.boundary.contains(out) {
                continue;
            }
            if let Some(vi) = self.generated.remove(out) {
                self.value_info.push(vi);
            } else if let Some(&t) = self.by_name.get(out) {
                if !self.g.shape(t).is_empty() {
                    let vi = self.tensor_value_info(t);
                    self.value_info.push(vi);
                }
            }
        }
        self.nodes.push(NodeProto {
            input: inputs,
            output: outputs,
            name: Some(name),
            op_type: Some(op.into()),
            attribute,
            ..Default::default()
        });
    }

    /// Records the shape of a generated intermediate tensor.
    fn intermediate(&mut self, name: &str, shape: &[usize], batched: bool) {
        let vi = self.value_info(name, shape, batched);
        self.generated.insert(name.to_string(), vi);
    }

    fn value_info(&self, name: &str, shape: &[usize], batched: bool) -> ValueInfoProto {
        let sym = self
            .batch
            .as_deref()
            .filter(|_| batched && !shape.is_empty());
        let dim = shape
            .iter()
            .enumerate()
            .map(|(i, &d)| Dimension {
                denotation: None,
                value: Some(match sym {
                    Some(s) if i == 0 => dimension::Value::DimParam(s.to_string()),
                    _ => dimension::Value::DimValue(d as i64),
                }),
            })
            .collect();
        ValueInfoProto {
            name: Some(name.to_string()),
            r#type: Some(TypeProto {
                denotation: None,
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(DataType::Float as i32),
                    shape: Some(TensorShapeProto { dim }),
                })),
            }),
            ..Default::default()
        }
    }

    fn tensor_value_info(&self, t: TensorId) -> ValueInfoProto {
        self.value_info(&self.name(t), self.g.shape(t), self.batched.contains(&t))
    }

    /// Writes `act` reading `pre` into `out` as a standalone op (an expanded epilogue).
    fn activation(&mut self, base: &str, act: Activation, pre: String, out: String) {
        match act {
            Activation::None => {}
            Activation::Relu => {
                let name = self.node_names.fresh(&format!("{base}_relu"));
                self.push(name, "Relu", vec![pre], vec![out], vec![]);
            }
            Activation::Clip { min, max } => {
                let name = self.node_names.fresh(&format!("{base}_clip"));
                self.clip(name, min, max, pre, out);
            }
        }
    }

    /// Clip with its bounds as scalar initializer inputs (opset ≥ 11); an infinite bound is
    /// left out (an empty input name when only the max is given).
    fn clip(&mut self, name: String, min: f32, max: f32, x: String, out: String) {
        let mut inputs = vec![x];
        let has_max = max.is_finite();
        if min.is_finite() {
            inputs.push(self.const_f32(&format!("{name}_min"), min));
        } else if has_max {
            inputs.push(String::new());
        }
        if has_max {
            inputs.push(self.const_f32(&format!("{name}_max"), max));
        }
        self.push(name, "Clip", inputs, vec![out], vec![]);
    }

    /// The output of a node whose epilogue is expanded: a fresh pre-activation tensor.
    fn preact(&mut self, node: &Node, act: Activation) -> String {
        let out = self.name(node.outputs[0]);
        if act == Activation::None {
            return out;
        }
        let pre = self.tensor_names.fresh(&format!("{out}_preact"));
        let (shape, batched) = (
            self.g.shape(node.outputs[0]).to_vec(),
            self.batched.contains(&node.outputs[0]),
        );
        self.intermediate(&pre, &shape, batched);
        pre
    }

    fn node(&mut self, node: &Node) -> Result<()> {
        let name = node.name.clone();
        let op_err = |m: String| Error::node(&node.name, node.op.name(), m);
        let outs: Vec<String> = node.outputs.iter().map(|&t| self.name(t)).collect();
        if outs.is_empty() || node.inputs.is_empty() {
            return Err(op_err("the node has no input or no output".into()));
        }
        let out = outs[0].clone();
        match &node.op {
            Op::Conv(a) => {
                let inputs = self.inputs(&node.inputs);
                let mut attrs = vec![
                    ints("dilations", &a.dilations),
                    int("group", a.group as i64),
                    ints("kernel_shape", &a.kernel),
                ];
                attrs.extend(padding(a.auto_pad, &a.pads));
                attrs.push(ints("strides", &a.strides));
                let pre = self.preact(node, a.activation);
                self.push(name.clone(), "Conv", inputs, vec![pre.clone()], attrs);
                self.activation(&name, a.activation, pre, out);
            }
            Op::Gemm(a) => {
                let inputs = self.inputs(&node.inputs);
                let attrs = vec![
                    float("alpha", a.alpha),
                    float("beta", a.beta),
                    int("transA", a.trans_a as i64),
                    int("transB", a.trans_b as i64),
                ];
                let pre = self.preact(node, a.activation);
                self.push(name.clone(), "Gemm", inputs, vec![pre.clone()], attrs);
                self.activation(&name, a.activation, pre, out);
            }
            Op::BatchNorm { epsilon, momentum } => {
                let inputs = self.inputs(&node.inputs);
                self.push(
                    name,
                    "BatchNormalization",
                    inputs,
                    outs,
                    vec![float("epsilon", *epsilon), float("momentum", *momentum)],
                );
            }
            Op::Clip { min, max } => {
                let x = self.input(node.inputs[0]);
                self.clip(name, *min, *max, x, out);
            }
            Op::AveragePool(p) | Op::MaxPool(p) => {
                let inputs = self.inputs(&node.inputs);
                let attrs = pool_attrs(&node.op, p).map_err(op_err)?;
                self.push(name, node.op.name(), inputs, outs, attrs);
            }
            Op::Flatten { axis } => {
                let inputs = self.inputs(&node.inputs);
                self.push(name, "Flatten", inputs, outs, vec![int("axis", *axis)]);
            }
            Op::Reshape { shape, allowzero } => {
                let x = self.input(node.inputs[0]);
                let s = self.const_i64(&format!("{name}_shape"), shape);
                let attrs = if *allowzero {
                    vec![int("allowzero", 1)]
                } else {
                    vec![]
                };
                self.push(name, "Reshape", vec![x, s], outs, attrs);
            }
            Op::Softmax { axis } => {
                let inputs = self.inputs(&node.inputs);
                self.push(name, "Softmax", inputs, outs, vec![int("axis", *axis)]);
            }
            Op::Dropout { ratio } => {
                // The mask (a bool tensor) is written only if something reads it, which our
                // f32-only IR cannot express.
                if let Some(&mask) = node.outputs.get(1) {
                    if self.g.outputs.contains(&mask) || !self.g.consumers(mask).is_empty() {
                        return Err(op_err(
                            "the dropout mask output is used; it cannot be exported".into(),
                        ));
                    }
                }
                let x = self.input(node.inputs[0]);
                let r = self.const_f32(&format!("{name}_ratio"), *ratio);
                self.push(name, "Dropout", vec![x, r], vec![out], vec![]);
            }
            Op::Transpose { perm } => {
                let inputs = self.inputs(&node.inputs);
                self.push(name, "Transpose", inputs, outs, vec![ints("perm", perm)]);
            }
            Op::Pad { pads, value } => {
                let x = self.input(node.inputs[0]);
                let mut inputs = vec![x, self.const_i64(&format!("{name}_pads"), pads)];
                if value.to_bits() != 0 {
                    inputs.push(self.const_f32(&format!("{name}_value"), *value));
                }
                self.push(name, "Pad", inputs, outs, vec![string("mode", "constant")]);
            }
            Op::Concat { axis } => {
                let inputs = self.inputs(&node.inputs);
                self.push(name, "Concat", inputs, outs, vec![int("axis", *axis)]);
            }
            Op::Head { softmax } => self.head(node, *softmax)?,
            Op::Relu
            | Op::GlobalAveragePool
            | Op::MatMul
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Identity => {
                let inputs = self.inputs(&node.inputs);
                self.push(name, node.op.name(), inputs, outs, vec![]);
            }
        }
        Ok(())
    }

    /// The fused classifier as GlobalAveragePool → Flatten → Gemm (transB) [→ Softmax].
    fn head(&mut self, node: &Node, softmax: bool) -> Result<()> {
        if node.inputs.len() != 3 {
            return Err(Error::node(
                &node.name,
                "Head",
                format!(
                    "expected 3 inputs (x, weight, bias), found {}",
                    node.inputs.len()
                ),
            ));
        }
        let xs = self.g.shape(node.inputs[0]).to_vec();
        let ws = self.g.shape(node.inputs[1]).to_vec();
        if xs.len() != 4 || ws.len() != 2 {
            return Err(Error::shape(
                &node.name,
                "Head",
                format!("expected x [N, C, H, W] and weight [classes, C], found {xs:?} and {ws:?}"),
            ));
        }
        let batched = self.batched.contains(&node.inputs[0]);
        let (n, c, classes) = (xs[0], xs[1], ws[0]);
        let base = node.name.clone();
        let out = self.name(node.outputs[0]);
        let inputs = self.inputs(&node.inputs);

        let pooled = self.tensor_names.fresh(&format!("{base}_pool"));
        self.intermediate(&pooled, &[n, c, 1, 1], batched);
        let pool_node = self.node_names.fresh(&format!("{base}_pool"));
        self.push(
            pool_node,
            "GlobalAveragePool",
            vec![inputs[0].clone()],
            vec![pooled.clone()],
            vec![],
        );

        let flat = self.tensor_names.fresh(&format!("{base}_flatten"));
        self.intermediate(&flat, &[n, c], batched);
        let flat_node = self.node_names.fresh(&format!("{base}_flatten"));
        self.push(
            flat_node,
            "Flatten",
            vec![pooled],
            vec![flat.clone()],
            vec![int("axis", 1)],
        );

        let logits = if softmax {
            let l = self.tensor_names.fresh(&format!("{base}_logits"));
            self.intermediate(&l, &[n, classes], batched);
            l
        } else {
            out.clone()
        };
        let fc_node = self.node_names.fresh(&format!("{base}_fc"));
        let attrs = vec![
            float("alpha", 1.0),
            float("beta", 1.0),
            int("transA", 0),
            int("transB", 1),
        ];
        self.push(
            fc_node,
            "Gemm",
            vec![flat, inputs[1].clone(), inputs[2].clone()],
            vec![logits.clone()],
            attrs,
        );
        if softmax {
            let sm_node = self.node_names.fresh(&format!("{base}_softmax"));
            self.push(
                sm_node,
                "Softmax",
                vec![logits],
                vec![out],
                vec![int("axis", 1)],
            );
        }
        Ok(())
    }

    fn finish(mut self) -> Result<ModelProto> {
        let g = self.g;
        for &t in &g.outputs {
            self.input(t); // a constant graph output (unusual) still needs its initializer
        }
        let inputs: Vec<ValueInfoProto> = g
            .inputs
            .iter()
            .map(|&t| self.tensor_value_info(t))
            .collect();
        let outputs: Vec<ValueInfoProto> = g
            .outputs
            .iter()
            .map(|&t| self.tensor_value_info(t))
            .collect();

        let meta = &g.meta;
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let (producer, version) = if meta.producer_name.is_empty() {
            (
                "mobilenetc".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )
        } else {
            (meta.producer_name.clone(), meta.producer_version.clone())
        };
        let graph = GraphProto {
            node: self.nodes,
            name: Some(if g.name.is_empty() {
                "mobilenetc".into()
            } else {
                g.name.clone()
            }),
            initializer: self.initializers,
            doc_string: opt(&meta.graph_doc_string),
            input: inputs,
            output: outputs,
            value_info: self.value_info,
            ..Default::default()
        };
        Ok(ModelProto {
            ir_version: Some(EXPORT_IR_VERSION),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(EXPORT_OPSET),
            }],
            producer_name: Some(producer),
            producer_version: opt(&version),
            domain: opt(&meta.domain),
            model_version: (meta.model_version != 0).then_some(meta.model_version),
            doc_string: opt(&meta.doc_string),
            graph: Some(graph),
            metadata_props: meta
                .metadata_props
                .iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: Some(k.clone()),
                    value: Some(v.clone()),
                })
                .collect(),
            ..Default::default()
        })
    }
}

/// The activations whose leading dimension is the batch, or `None` if some op ties the graph
/// to its batch size (then a symbolic batch would be a lie).
fn batched_tensors(g: &Graph, order: &[crate::graph::NodeId]) -> Option<HashSet<TensorId>> {
    let mut batched: HashSet<TensorId> = g
        .inputs
        .iter()
        .copied()
        .filter(|&t| !g.shape(t).is_empty())
        .collect();
    if batched.len() != g.inputs.len() {
        return None;
    }
    for &n in order {
        let node = g.node(n);
        let reads: Vec<bool> = node.inputs.iter().map(|t| batched.contains(t)).collect();
        if !reads.iter().any(|&b| b) {
            continue;
        }
        let rank = g.shape(node.inputs[0]).len() as i64;
        let axis0 = |axis: i64| axis == 0 || axis == -rank;
        let keeps_batch = match &node.op {
            Op::Transpose { perm } => perm.first() == Some(&0),
            Op::Reshape { shape, .. } => matches!(shape.first(), Some(0) | Some(-1)),
            Op::Flatten { axis } => !axis0(*axis),
            Op::Softmax { axis } | Op::Concat { axis } => !axis0(*axis),
            Op::Gemm(a) => !a.trans_a && reads[0],
            Op::MatMul => reads[0],
            Op::Pad { pads, .. } => {
                pads.first() == Some(&0) && pads.get(pads.len() / 2) == Some(&0)
            }
            _ => reads[0],
        };
        if !keeps_batch {
            return None;
        }
        batched.extend(
            node.outputs
                .iter()
                .copied()
                .filter(|&t| !g.shape(t).is_empty()),
        );
    }
    Some(batched)
}

fn tensor_proto(name: String, shape: &[usize], dtype: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: shape.iter().map(|&d| d as i64).collect(),
        data_type: Some(dtype as i32),
        name: Some(name),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        ..attr(name, AttributeType::Int)
    }
}

fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        ..attr(name, AttributeType::Float)
    }
}

fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        ..attr(name, AttributeType::String)
    }
}

fn ints<T: Copy + TryInto<i64>>(name: &str, v: &[T]) -> AttributeProto {
    let ints = v
        .iter()
        .map(|&x| x.try_into().unwrap_or(i64::MAX))
        .collect();
    AttributeProto {
        ints,
        ..attr(name, AttributeType::Ints)
    }
}

/// `auto_pad` when set (then ONNX forbids explicit pads), else the explicit pads.
fn padding(auto_pad: AutoPad, pads: &[usize; 4]) -> Vec<AttributeProto> {
    let mode = match auto_pad {
        AutoPad::NotSet => return vec![ints("pads", pads)],
        AutoPad::SameUpper => "SAME_UPPER",
        AutoPad::SameLower => "SAME_LOWER",
        AutoPad::Valid => "VALID",
    };
    vec![string("auto_pad", mode)]
}

fn pool_attrs(op: &Op, p: &PoolAttrs) -> std::result::Result<Vec<AttributeProto>, String> {
    let mut attrs = vec![int("ceil_mode", p.ceil_mode as i64)];
    if matches!(op, Op::AveragePool(_)) {
        attrs.push(int("count_include_pad", p.count_include_pad as i64));
        if p.dilations != [1, 1] {
            return Err(format!(
                "AveragePool dilations {:?} need opset 19; exports are opset {EXPORT_OPSET}",
                p.dilations
            ));
        }
    } else {
        attrs.push(ints("dilations", &p.dilations));
    }
    attrs.push(ints("kernel_shape", &p.kernel));
    attrs.extend(padding(p.auto_pad, &p.pads));
    attrs.push(ints("strides", &p.strides));
    Ok(attrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
    use crate::graph::{ConvAttrs, GemmAttrs, Tensor};

    fn small() -> Graph {
        mobilenet_v1(&MobileNetConfig {
            alpha: 0.25,
            resolution: 32,
            classes: 10,
            ..Default::default()
        })
        .unwrap()
    }

    fn dims(vi: &ValueInfoProto) -> Vec<String> {
        let Some(type_proto::Value::TensorType(t)) = &vi.r#type.as_ref().unwrap().value else {
            panic!()
        };
        t.shape
            .as_ref()
            .unwrap()
            .dim
            .iter()
            .map(|d| match d.value.as_ref().unwrap() {
                dimension::Value::DimValue(v) => v.to_string(),
                dimension::Value::DimParam(p) => p.clone(),
            })
            .collect()
    }

    #[test]
    fn constructor_model_has_the_expected_structure() {
        let g = small();
        let m = to_model_proto(&g, &ExportOptions::default()).unwrap();
        assert_eq!(m.ir_version, Some(8));
        assert_eq!(m.opset_import[0].version, Some(17));
        assert_eq!(m.producer_name.as_deref(), Some("mobilenetc"));
        assert!(m
            .metadata_props
            .iter()
            .any(|p| p.key.as_deref() == Some("mobilenetc.alpha")));
        let gp = m.graph.unwrap();
        assert_eq!(gp.node.len(), g.dag.node_count());
        assert_eq!(gp.input.len(), 1);
        assert_eq!(dims(&gp.input[0]), ["batch", "3", "32", "32"]);
        assert_eq!(dims(&gp.output[0]), ["batch", "10"]);
        // 27 convs, 27 × 4 BN tensors, FC weight + bias, 27 × 2 Clip bounds.
        assert_eq!(gp.initializer.len(), 27 + 27 * 4 + 2 + 27 * 2);
        assert_eq!(gp.value_info.len(), g.dag.node_count() - 1);
        let clip = gp
            .node
            .iter()
            .find(|n| n.name.as_deref() == Some("conv0_relu6"))
            .unwrap();
        assert_eq!(
            clip.input,
            ["conv0_bn", "conv0_relu6_min", "conv0_relu6_max"]
        );
        let min = gp
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some("conv0_relu6_min"))
            .unwrap();
        assert!(min.dims.is_empty());
        assert_eq!(min.raw_data.as_deref(), Some(&0f32.to_le_bytes()[..]));
        // Weights are the IR's bytes.
        let w = gp
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some("fc_w"))
            .unwrap();
        let ir = g
            .constant(g.node(g.find_node("fc").unwrap()).inputs[1])
            .unwrap();
        let back: Vec<f32> = w
            .raw_data
            .as_ref()
            .unwrap()
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(back, ir.data);
        assert_eq!(w.dims, [10, 256]);
    }

    #[test]
    fn fixed_batch_when_asked_or_when_the_graph_needs_it() {
        let g = small();
        let m = to_model_proto(
            &g,
            &ExportOptions {
                symbolic_batch: None,
            },
        )
        .unwrap();
        assert_eq!(dims(&m.graph.unwrap().input[0]), ["1", "3", "32", "32"]);

        let mut g = Graph::new("r");
        let x = g.add_input("x", vec![1, 4, 2, 2]);
        let (_, y) = g.add_op(
            "r",
            Op::Reshape {
                shape: vec![1, 16],
                allowzero: false,
            },
            vec![x],
            vec![1, 16],
        );
        g.outputs.push(y);
        let m = to_model_proto(&g, &ExportOptions::default()).unwrap();
        let gp = m.graph.unwrap();
        assert_eq!(dims(&gp.input[0]), ["1", "4", "2", "2"]);
        let shape = gp
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some("r_shape"))
            .unwrap();
        assert_eq!(shape.data_type, Some(DataType::Int64 as i32));
        assert_eq!(
            shape.raw_data.as_deref().unwrap(),
            [1i64.to_le_bytes(), 16i64.to_le_bytes()].concat()
        );
    }

    #[test]
    fn fused_ops_expand_to_standard_onnx() {
        let mut g = Graph::new("fused");
        let x = g.add_input("x", vec![1, 2, 4, 4]);
        let w = g.add_constant("w", Tensor::new(vec![3, 2, 1, 1], vec![1.0; 6]));
        let conv = ConvAttrs {
            kernel: [1, 1],
            strides: [1, 1],
            pads: [0; 4],
            dilations: [1, 1],
            group: 1,
            auto_pad: AutoPad::NotSet,
            activation: Activation::RELU6,
        };
        let (_, y) = g.add_op("c", Op::Conv(conv), vec![x, w], vec![1, 3, 4, 4]);
        // A tensor already named like the generated one forces a fresh name.
        let (_, y) = g.add_op("c_preact", Op::Relu, vec![y], vec![1, 3, 4, 4]);
        let fw = g.add_constant("fw", Tensor::new(vec![5, 3], vec![0.5; 15]));
        let fb = g.add_constant("fb", Tensor::new(vec![5], vec![0.1; 5]));
        let out = g.add_tensor("probs", vec![1, 5]);
        g.add_node(
            "head",
            Op::Head { softmax: true },
            vec![y, fw, fb],
            vec![out],
        );
        g.outputs.push(out);
        let gem = GemmAttrs {
            activation: Activation::Clip {
                min: f32::NEG_INFINITY,
                max: 1.0,
            },
            ..Default::default()
        };
        let w2 = g.add_constant("w2", Tensor::new(vec![5, 5], vec![0.0; 25]));
        let (_, z) = g.add_op("g2", Op::Gemm(gem), vec![out, w2], vec![1, 5]);
        g.outputs.push(z);
        let gp = to_model_proto(&g, &ExportOptions::default())
            .unwrap()
            .graph
            .unwrap();
        let ops: Vec<_> = gp
            .node
            .iter()
            .map(|n| (n.name.clone().unwrap(), n.op_type.clone().unwrap()))
            .collect();
        let expect = [
            ("c", "Conv"),
            ("c_clip", "Clip"),
            ("c_preact", "Relu"),
            ("head_pool", "GlobalAveragePool"),
            ("head_flatten", "Flatten"),
            ("head_fc", "Gemm"),
            ("head_softmax", "Softmax"),
            ("g2", "Gemm"),
            ("g2_clip", "Clip"),
        ];
        assert_eq!(ops, expect.map(|(a, b)| (a.to_string(), b.to_string())));
        assert_eq!(gp.node[0].output, ["c_preact_1"]);
        assert_eq!(gp.node[1].output, ["c"]);
        assert_eq!(gp.node[6].output, ["probs"]);
        // Clip with only an upper bound: an empty min input.
        assert_eq!(gp.node[8].input, ["g2_preact", "", "g2_clip_max"]);
        let vi: Vec<_> = gp
            .value_info
            .iter()
            .map(|v| v.name.clone().unwrap())
            .collect();
        for t in [
            "c",
            "c_preact_1",
            "head_pool",
            "head_flatten",
            "head_logits",
            "g2_preact",
        ] {
            assert!(vi.contains(&t.to_string()), "{t} missing from {vi:?}");
        }
    }

    #[test]
    fn duplicate_tensor_names_are_refused() {
        let mut g = Graph::new("d");
        let x = g.add_input("x", vec![1]);
        let y = g.add_tensor("x", vec![1]);
        g.add_node("r", Op::Relu, vec![x], vec![y]);
        g.outputs.push(y);
        let e = to_model_proto(&g, &ExportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("'x'"), "{e}");
    }
}
