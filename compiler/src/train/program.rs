//! Lowering a graph to the trainer's forward program: ops on NHWC values, parameters and
//! running statistics by slot.
//!
//! Every value is `[n, h, w, c]` channels-last; a 2-D value `[m, k]` is `[m, 1, 1, k]`, so a
//! Flatten after the global pool is a view (same bytes). Reshape / Flatten are accepted when
//! they keep the bytes in place in NHWC, that is when the source and the target each have
//! `h·w == 1` or `c == 1`.
//!
//! Parameters (trainable initializers: conv weights and biases, BatchNorm scale and bias,
//! Gemm / MatMul weights and biases, constant Add operands) and BatchNorm running statistics
//! are numbered in the order their ops appear in the topological order, and keep their ONNX
//! names, shapes and layouts (OIHW conv weights).

use std::collections::{BTreeSet, HashMap};

use mobilenetc_runtime::kernels::backward::batchnorm::BatchNormTrain;
use mobilenetc_runtime::kernels::{Act, Conv2d, Dense};

use crate::error::{Error, Result, UnsupportedOp};
use crate::graph::{Activation, Graph, Op, TensorId};

pub type ValueId = usize;
pub type Slot = usize;

/// An activation of the program, NHWC.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
}

impl Value {
    pub fn len(&self) -> usize {
        self.n * self.h * self.w * self.c
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether NCHW and NHWC orders of this value are the same bytes.
    fn layout_trivial(&self) -> bool {
        self.h * self.w == 1 || self.c == 1
    }
}

/// A named tensor the trainer owns (a parameter or a running statistic).
#[derive(Clone, Debug, PartialEq)]
pub struct Named {
    pub name: String,
    /// The source graph's tensor.
    pub tensor: TensorId,
    pub shape: Vec<usize>,
}

/// One forward op of the training program.
#[derive(Clone, Debug, PartialEq)]
pub enum FOp {
    Conv { conv: Conv2d, x: ValueId, y: ValueId, w: Slot, b: Option<Slot> },
    /// Training-mode BatchNorm with the activation that follows it fused (`bn.act`).
    BatchNorm { bn: BatchNormTrain, x: ValueId, y: ValueId, scale: Slot, bias: Slot, mean: Slot, var: Slot, momentum: f32 },
    Act { act: Act, x: ValueId, y: ValueId },
    GlobalAvgPool { x: ValueId, y: ValueId },
    /// Flatten / Reshape / Identity / Dropout (dropout is the identity here; see the module
    /// docs of `train`): `y` is `x`'s bytes.
    View { x: ValueId, y: ValueId },
    /// `y [m, n] = x [m, k] · W + b`; W stored `[k, n]`, or `[n, k]` when `trans`.
    Dense { dense: Dense, trans: bool, x: ValueId, y: ValueId, w: Slot, b: Option<Slot> },
    /// `y = x + b` with `b` one value per channel.
    BiasAdd { x: ValueId, y: ValueId, b: Slot },
    Add { a: ValueId, b: ValueId, y: ValueId },
}

impl FOp {
    pub fn inputs(&self) -> Vec<ValueId> {
        match *self {
            FOp::Conv { x, .. } | FOp::BatchNorm { x, .. } | FOp::Act { x, .. } | FOp::GlobalAvgPool { x, .. } | FOp::View { x, .. } | FOp::Dense { x, .. } | FOp::BiasAdd { x, .. } => vec![x],
            FOp::Add { a, b, .. } => vec![a, b],
        }
    }
    pub fn output(&self) -> ValueId {
        match *self {
            FOp::Conv { y, .. } | FOp::BatchNorm { y, .. } | FOp::Act { y, .. } | FOp::GlobalAvgPool { y, .. } | FOp::View { y, .. } | FOp::Dense { y, .. } | FOp::BiasAdd { y, .. } | FOp::Add { y, .. } => y,
        }
    }
    /// Trainable slots this op reads.
    pub fn params(&self) -> Vec<Slot> {
        match *self {
            FOp::Conv { w, b, .. } | FOp::Dense { w, b, .. } => std::iter::once(w).chain(b).collect(),
            FOp::BatchNorm { scale, bias, .. } => vec![scale, bias],
            FOp::BiasAdd { b, .. } => vec![b],
            _ => vec![],
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            FOp::Conv { .. } => "Conv",
            FOp::BatchNorm { .. } => "BatchNormalization",
            FOp::Act { .. } => "Activation",
            FOp::GlobalAvgPool { .. } => "GlobalAveragePool",
            FOp::View { .. } => "View",
            FOp::Dense { .. } => "Dense",
            FOp::BiasAdd { .. } => "BiasAdd",
            FOp::Add { .. } => "Add",
        }
    }
}

/// The forward program for one batch size.
#[derive(Clone, Debug)]
pub struct Program {
    pub values: Vec<Value>,
    /// In execution order.
    pub ops: Vec<FOp>,
    /// Op names (the graph node's), parallel to `ops`.
    pub op_names: Vec<String>,
    /// The image input (NHWC inside; given NCHW by callers).
    pub input: ValueId,
    /// The values the loss reads: `[batch, classes]`.
    pub logits: ValueId,
    pub classes: usize,
    pub params: Vec<Named>,
    /// BatchNorm running means and variances.
    pub stats: Vec<Named>,
}

fn act_of(a: Activation) -> Act {
    match a {
        Activation::None => Act::None,
        Activation::Relu => Act::Relu,
        Activation::Clip { min, max } => Act::Clip { min, max },
    }
}

struct Lowering<'g> {
    g: &'g Graph,
    batch: usize,
    values: Vec<Value>,
    of_tensor: HashMap<TensorId, ValueId>,
    ops: Vec<FOp>,
    op_names: Vec<String>,
    params: Vec<Named>,
    param_of: HashMap<TensorId, Slot>,
    stats: Vec<Named>,
}

impl Lowering<'_> {
    fn value(&mut self, name: &str, n: usize, h: usize, w: usize, c: usize) -> ValueId {
        self.values.push(Value { name: name.into(), n, h, w, c });
        self.values.len() - 1
    }

    fn param(&mut self, node: &str, op: &str, t: TensorId) -> Result<Slot> {
        if !self.g.is_constant(t) {
            return Err(Error::node(node, op, format!("input '{}' must be an initializer to train this op", self.g.tensor(t).name)));
        }
        if self.param_of.contains_key(&t) {
            return Err(Error::node(node, op, format!("initializer '{}' is shared by several ops; training shared weights is not supported", self.g.tensor(t).name)));
        }
        self.params.push(Named { name: self.g.tensor(t).name.clone(), tensor: t, shape: self.g.shape(t).to_vec() });
        self.param_of.insert(t, self.params.len() - 1);
        Ok(self.params.len() - 1)
    }

    fn stat(&mut self, node: &str, op: &str, t: TensorId) -> Result<Slot> {
        if !self.g.is_constant(t) {
            return Err(Error::node(node, op, format!("running statistic '{}' must be an initializer", self.g.tensor(t).name)));
        }
        self.stats.push(Named { name: self.g.tensor(t).name.clone(), tensor: t, shape: self.g.shape(t).to_vec() });
        Ok(self.stats.len() - 1)
    }

    fn input_value(&self, node: &str, op: &str, t: TensorId) -> Result<ValueId> {
        self.of_tensor.get(&t).copied().ok_or_else(|| {
            Error::node(node, op, format!("input '{}' is a constant or comes from an op the trainer does not run; training needs it computed from the image", self.g.tensor(t).name))
        })
    }

    /// The ONNX shape of a graph tensor with the batch (dim 0) replaced.
    fn batched_shape(&self, t: TensorId) -> Vec<usize> {
        let mut s = self.g.shape(t).to_vec();
        if let Some(d) = s.first_mut() {
            *d = self.batch;
        }
        s
    }
}

/// Lowers `g` for `batch` images per step.
pub fn lower(g: &Graph, batch: usize) -> Result<Program> {
    if batch == 0 {
        return Err(Error::Invalid("the training batch must be at least 1".into()));
    }
    let inputs: Vec<TensorId> = g.inputs.iter().copied().filter(|t| !g.is_constant(*t)).collect();
    let [input_t] = inputs[..] else {
        return Err(Error::Invalid(format!("training needs a model with one image input; this one has {}", inputs.len())));
    };
    let in_shape = g.shape(input_t);
    let [_, c, h, w] = in_shape[..] else {
        return Err(Error::Invalid(format!("training needs an NCHW image input; '{}' has shape {in_shape:?}", g.tensor(input_t).name)));
    };
    let &out_t = g.outputs.first().ok_or_else(|| Error::Invalid("the model has no output".into()))?;
    let producers = g.producers();

    // The loss reads the logits: a final Softmax's input, or the output itself.
    let mut logits_t = out_t;
    let mut skip = BTreeSet::new();
    if let Some(&p) = producers.get(&out_t) {
        let node = g.node(p);
        if let Op::Softmax { .. } = node.op {
            logits_t = node.inputs[0];
            skip.insert(p);
        }
    }
    // Only the ops the logits depend on take part in training.
    let mut needed = BTreeSet::new();
    let mut stack = vec![logits_t];
    while let Some(t) = stack.pop() {
        if let Some(&p) = producers.get(&t) {
            if needed.insert(p) {
                stack.extend(g.node(p).inputs.iter().copied());
            }
        }
    }

    let mut lw = Lowering {
        g,
        batch,
        values: vec![],
        of_tensor: HashMap::new(),
        ops: vec![],
        op_names: vec![],
        params: vec![],
        param_of: HashMap::new(),
        stats: vec![],
    };
    let input = lw.value(&g.tensor(input_t).name, batch, h, w, c);
    lw.of_tensor.insert(input_t, input);

    // Every op the trainer cannot differentiate, listed at once before anything else.
    let unsupported: Vec<UnsupportedOp> = g
        .topo_order()?
        .into_iter()
        .filter(|n| needed.contains(n) && !skip.contains(n))
        .map(|n| g.node(n))
        .filter(|node| {
            !matches!(
                node.op,
                Op::Conv(_) | Op::BatchNorm { .. } | Op::Relu | Op::Clip { .. } | Op::GlobalAveragePool | Op::Flatten { .. } | Op::Reshape { .. } | Op::Identity | Op::Dropout { .. } | Op::Gemm(_) | Op::MatMul | Op::Add
            )
        })
        .map(|node| UnsupportedOp { node: node.name.clone(), op: node.op.name().into(), domain: String::new(), opset: g.meta.opset() })
        .collect();
    if !unsupported.is_empty() {
        return Err(Error::Unsupported(unsupported));
    }
    for n in g.topo_order()? {
        if !needed.contains(&n) || skip.contains(&n) {
            continue;
        }
        let node = g.node(n);
        let (name, opname) = (node.name.as_str(), node.op.name());
        let out_t = node.outputs[0];
        let out_name = g.tensor(out_t).name.clone();
        let push = |lw: &mut Lowering, op: FOp| {
            lw.ops.push(op);
            lw.op_names.push(name.to_string());
        };
        match &node.op {
            Op::Conv(a) => {
                let x = lw.input_value(name, opname, node.inputs[0])?;
                let xv = lw.values[x].clone();
                let wshape = g.shape(node.inputs[1]).to_vec();
                if wshape.len() != 4 {
                    return Err(Error::node(name, opname, format!("weight of shape {wshape:?} is not 4-D")));
                }
                let conv = Conv2d::new(xv.n, xv.h, xv.w, xv.c, wshape[0], a.group, a.kernel, a.strides, a.dilations, a.pads, Act::None);
                conv.check().map_err(|e| Error::node(name, opname, e.to_string()))?;
                if wshape[1] * a.group != xv.c || wshape[2..] != a.kernel {
                    return Err(Error::node(name, opname, format!("weight {wshape:?} does not fit input channels {} with group {}", xv.c, a.group)));
                }
                let wslot = lw.param(name, opname, node.inputs[1])?;
                let bslot = match node.inputs.get(2) {
                    Some(&b) => Some(lw.param(name, opname, b)?),
                    None => None,
                };
                let act = act_of(a.activation);
                let y = lw.value(&out_name, xv.n, conv.oh, conv.ow, conv.c_out);
                push(&mut lw, FOp::Conv { conv, x, y, w: wslot, b: bslot });
                let y = if act != Act::None {
                    let z = lw.value(&format!("{out_name}.act"), xv.n, conv.oh, conv.ow, conv.c_out);
                    push(&mut lw, FOp::Act { act, x: y, y: z });
                    z
                } else {
                    y
                };
                lw.of_tensor.insert(out_t, y);
            }
            Op::BatchNorm { epsilon, momentum } => {
                if node.inputs.len() != 5 {
                    return Err(Error::node(name, opname, "needs 5 inputs (x, scale, bias, mean, var)"));
                }
                let x = lw.input_value(name, opname, node.inputs[0])?;
                let xv = lw.values[x].clone();
                let scale = lw.param(name, opname, node.inputs[1])?;
                let bias = lw.param(name, opname, node.inputs[2])?;
                let mean = lw.stat(name, opname, node.inputs[3])?;
                let var = lw.stat(name, opname, node.inputs[4])?;
                for &t in &node.inputs[1..] {
                    if g.shape(t).iter().product::<usize>() != xv.c {
                        return Err(Error::node(name, opname, format!("'{}' has shape {:?}, expected {} values", g.tensor(t).name, g.shape(t), xv.c)));
                    }
                }
                let bn = BatchNormTrain { pixels: xv.n * xv.h * xv.w, c: xv.c, eps: *epsilon, act: Act::None };
                let y = lw.value(&out_name, xv.n, xv.h, xv.w, xv.c);
                push(&mut lw, FOp::BatchNorm { bn, x, y, scale, bias, mean, var, momentum: *momentum });
                lw.of_tensor.insert(out_t, y);
            }
            Op::Relu | Op::Clip { .. } => {
                let act = match node.op {
                    Op::Relu => Act::Relu,
                    Op::Clip { min, max } => Act::Clip { min, max },
                    _ => unreachable!(),
                };
                let x = lw.input_value(name, opname, node.inputs[0])?;
                let xv = lw.values[x].clone();
                let y = lw.value(&out_name, xv.n, xv.h, xv.w, xv.c);
                push(&mut lw, FOp::Act { act, x, y });
                lw.of_tensor.insert(out_t, y);
            }
            Op::GlobalAveragePool => {
                let x = lw.input_value(name, opname, node.inputs[0])?;
                let xv = lw.values[x].clone();
                let y = lw.value(&out_name, xv.n, 1, 1, xv.c);
                push(&mut lw, FOp::GlobalAvgPool { x, y });
                lw.of_tensor.insert(out_t, y);
            }
            Op::Flatten { .. } | Op::Reshape { .. } | Op::Identity | Op::Dropout { .. } => {
                let x = lw.input_value(name, opname, node.inputs[0])?;
                let xv = lw.values[x].clone();
                let target = lw.batched_shape(out_t);
                let (th, tw, tc) = match target[..] {
                    [_, f] => (1, 1, f),
                    [_, c, h, w] => (h, w, c),
                    [_] => (1, 1, 1),
                    _ => return Err(Error::node(name, opname, format!("target shape {target:?} is not 2-D or 4-D"))),
                };
                let y_val = Value { name: out_name.clone(), n: batch, h: th, w: tw, c: tc };
                let same = matches!(node.op, Op::Identity | Op::Dropout { .. });
                if !same && (y_val.len() != xv.len() || !xv.layout_trivial() || !y_val.layout_trivial()) {
                    return Err(Error::node(name, opname, format!(
                        "reshaping [{}, {}, {}, {}] (NCHW) to {target:?} moves data in the channels-last layout; the trainer supports it only where one side has h·w = 1 or c = 1",
                        xv.n, xv.c, xv.h, xv.w)));
                }
                let y = if same { lw.value(&out_name, xv.n, xv.h, xv.w, xv.c) } else { lw.value(&out_name, batch, th, tw, tc) };
                push(&mut lw, FOp::View { x, y });
                lw.of_tensor.insert(out_t, y);
            }
            Op::Gemm(a) => {
                if a.trans_a || a.alpha != 1.0 || (node.inputs.len() > 2 && a.beta != 1.0) {
                    return Err(Error::node(name, opname, "training supports Gemm with transA = 0, alpha = 1, beta = 1"));
                }
                let x = lw.input_value(name, opname, node.inputs[0])?;
                let xv = lw.values[x].clone();
                let k = xv.h * xv.w * xv.c;
                let ws = g.shape(node.inputs[1]).to_vec();
                let nn = if a.trans_b { ws[0] } else { *ws.get(1).unwrap_or(&0) };
                if ws.len() != 2 || ws.iter().product::<usize>() != k * nn || !xv.layout_trivial() {
                    return Err(Error::node(name, opname, format!("weight {ws:?} does not fit an input of {k} features")));
                }
                let w = lw.param(name, opname, node.inputs[1])?;
                let b = match node.inputs.get(2) {
                    Some(&c) => {
                        if g.shape(c).iter().product::<usize>() != nn {
                            return Err(Error::node(name, opname, format!("C of shape {:?}: training supports a bias of {nn} values", g.shape(c))));
                        }
                        Some(lw.param(name, opname, c)?)
                    }
                    None => None,
                };
                let dense = Dense { m: batch, k, n: nn, act: act_of(a.activation) };
                let act = dense.act;
                let dense = Dense { act: Act::None, ..dense };
                let y = lw.value(&out_name, batch, 1, 1, nn);
                push(&mut lw, FOp::Dense { dense, trans: a.trans_b, x, y, w, b });
                let y = if act != Act::None {
                    let z = lw.value(&format!("{out_name}.act"), batch, 1, 1, nn);
                    push(&mut lw, FOp::Act { act, x: y, y: z });
                    z
                } else {
                    y
                };
                lw.of_tensor.insert(out_t, y);
            }
            Op::MatMul => {
                let x = lw.input_value(name, opname, node.inputs[0])?;
                let xv = lw.values[x].clone();
                let k = xv.h * xv.w * xv.c;
                let ws = g.shape(node.inputs[1]).to_vec();
                if ws.len() != 2 || ws[0] != k || !xv.layout_trivial() {
                    return Err(Error::node(name, opname, format!("training supports MatMul of a [batch, {k}] activation by a 2-D initializer; B has shape {ws:?}")));
                }
                let w = lw.param(name, opname, node.inputs[1])?;
                let dense = Dense { m: batch, k, n: ws[1], act: Act::None };
                let y = lw.value(&out_name, batch, 1, 1, ws[1]);
                push(&mut lw, FOp::Dense { dense, trans: false, x, y, w, b: None });
                lw.of_tensor.insert(out_t, y);
            }
            Op::Add => {
                let (ta, tb) = (node.inputs[0], node.inputs[1]);
                let (ca, cb) = (g.is_constant(ta), g.is_constant(tb));
                if ca && cb {
                    return Err(Error::node(name, opname, "both operands are constants"));
                }
                if ca || cb {
                    let (tx, tc) = if ca { (tb, ta) } else { (ta, tb) };
                    let x = lw.input_value(name, opname, tx)?;
                    let xv = lw.values[x].clone();
                    let cs = g.shape(tc).to_vec();
                    let per_channel = cs.iter().product::<usize>() == xv.c && (cs.len() <= 1 || cs.last() == Some(&xv.c) || (cs.len() == 4 && cs[1] == xv.c) || (cs.len() == 3 && cs[0] == xv.c));
                    if !per_channel {
                        return Err(Error::node(name, opname, format!("training supports adding a constant of one value per channel ({}); it has shape {cs:?}", xv.c)));
                    }
                    let b = lw.param(name, opname, tc)?;
                    let y = lw.value(&out_name, xv.n, xv.h, xv.w, xv.c);
                    push(&mut lw, FOp::BiasAdd { x, y, b });
                    lw.of_tensor.insert(out_t, y);
                } else {
                    let a = lw.input_value(name, opname, ta)?;
                    let b = lw.input_value(name, opname, tb)?;
                    let (av, bv) = (lw.values[a].clone(), lw.values[b].clone());
                    if (av.n, av.h, av.w, av.c) != (bv.n, bv.h, bv.w, bv.c) {
                        return Err(Error::node(name, opname, "training supports Add of two activations of the same shape"));
                    }
                    let y = lw.value(&out_name, av.n, av.h, av.w, av.c);
                    push(&mut lw, FOp::Add { a, b, y });
                    lw.of_tensor.insert(out_t, y);
                }
            }
            other => return Err(Error::node(name, other.name(), "not differentiable by the trainer")),
        }
    }
    let logits = lw.of_tensor.get(&logits_t).copied().ok_or_else(|| Error::Invalid("the model's output is not computed from its input".into()))?;
    let lv = &lw.values[logits];
    if !lv.layout_trivial() || lv.h * lv.w * lv.c == 0 {
        return Err(Error::Invalid(format!("the logits '{}' must be [batch, classes]", lv.name)));
    }
    let classes = lv.h * lv.w * lv.c;
    let mut prog = Program { values: lw.values, ops: lw.ops, op_names: lw.op_names, input, logits, classes, params: lw.params, stats: lw.stats };
    fuse_bn_activation(&mut prog);
    Ok(prog)
}

/// BatchNorm followed by ReLU / Clip whose input nothing else reads: the activation moves into
/// the BatchNorm (forward epilogue, backward mask), and the activation's output becomes the
/// BatchNorm's.
fn fuse_bn_activation(p: &mut Program) {
    let mut i = 0;
    while i + 1 < p.ops.len() {
        if let (FOp::BatchNorm { y, .. }, FOp::Act { act, x, y: z }) = (&p.ops[i], &p.ops[i + 1]) {
            let (y, act, x, z) = (*y, *act, *x, *z);
            let readers = p.ops.iter().filter(|o| o.inputs().contains(&y)).count();
            if x == y && readers == 1 && y != p.logits {
                if let FOp::BatchNorm { bn, y: out, .. } = &mut p.ops[i] {
                    bn.act = act;
                    *out = z;
                }
                p.ops.remove(i + 1);
                p.op_names.remove(i + 1);
            }
        }
        i += 1;
    }
}
