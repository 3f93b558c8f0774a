//! The lowering walk: one node at a time, in topological order, into kernel steps over planner
//! buffers; then the memory plan turns buffers into arena ranges.

use std::collections::HashMap;

use mobilenetc_runtime::kernels::pool::GlobalAvgPool;
use mobilenetc_runtime::kernels::{Act, BatchNorm, BinOp, Conv2d, ConvPath, Dense, DwPw, Gemm, GemmC, Head, Pool2d, PoolKind, Softmax};

use super::kernel::{Arg, Kernel, Range, Step};
use super::layout::{nhwc_axis, permute, physical, transpose_data, trivial, Layout, TO_NCHW, TO_NHWC};
use super::{Binding, Schedule};
use crate::error::{Error, Result};
use crate::graph::{Activation, Graph, Node, Op, TensorId};
use crate::schedule::{self as planner, BufferId, BufferKind};

/// Weight slots start on 64-byte boundaries.
const SLOT_ALIGN: usize = 16;

/// A runtime tensor after lowering: the buffer holding it and the order of its bytes.
#[derive(Clone, Copy, Debug)]
struct Value {
    buf: BufferId,
    layout: Layout,
}

/// An operand before planning.
#[derive(Clone, Copy, Debug)]
enum PArg {
    Buf(BufferId),
    Blob(Range),
    PackAtRun(BufferId),
}

struct PStep {
    name: String,
    op: String,
    kernel: Kernel,
    args: Vec<PArg>,
    out: BufferId,
}

pub(super) struct Builder<'g> {
    g: &'g Graph,
    buffers: Vec<planner::Buffer>,
    /// Element count of each buffer.
    lens: Vec<usize>,
    /// The planner's view: kernel steps and alias-only steps, in order.
    plan_steps: Vec<planner::Step>,
    steps: Vec<PStep>,
    weights: Vec<f32>,
    blob_cache: HashMap<(TensorId, &'static str), Range>,
    values: HashMap<TensorId, Value>,
    /// A tensor's copy in the other layout, made once and shared by its readers.
    converted: HashMap<(TensorId, Layout), BufferId>,
    params: u64,
    /// Indices (into `steps`) of depthwise convs to run fused with the pointwise conv in the
    /// step after them.
    fused: Vec<usize>,
}

fn act(a: Activation) -> Act {
    match a {
        Activation::None => Act::None,
        Activation::Relu => Act::Relu,
        Activation::Clip { min, max } => Act::Clip { min, max },
    }
}

impl<'g> Builder<'g> {
    pub(super) fn new(g: &'g Graph) -> Self {
        Builder {
            g,
            buffers: Vec::new(),
            lens: Vec::new(),
            plan_steps: Vec::new(),
            steps: Vec::new(),
            weights: Vec::new(),
            blob_cache: HashMap::new(),
            values: HashMap::new(),
            converted: HashMap::new(),
            params: 0,
            fused: Vec::new(),
        }
    }

    pub(super) fn lower(mut self) -> Result<Schedule> {
        let g = self.g;
        for &t in &g.inputs {
            let buf = self.buffer(&g.tensor(t).name, g.tensor(t).numel(), BufferKind::Input);
            self.values.insert(t, Value { buf, layout: Layout::RowMajor });
        }
        for (_, node) in g.nodes_in_order() {
            self.node(node)?;
        }
        let mut outputs = Vec::new();
        for &t in &g.outputs {
            let buf = if g.inputs.contains(&t) || g.is_constant(t) {
                let src = self.operand(t, Layout::RowMajor)?;
                let name = format!("{}_copy", g.tensor(t).name);
                self.kernel_step(&name, "Identity", Kernel::Copy, vec![src], g.tensor(t).numel())
            } else {
                self.want(t, Layout::RowMajor)?
            };
            self.buffers[buf].kind = BufferKind::Output;
            outputs.push((t, buf));
        }
        let plan = planner::plan(&self.buffers, &self.plan_steps)?;
        let range = |b: BufferId| Range { offset: plan.offsets[b] / 4, len: self.lens[b] };
        let mut steps: Vec<Step> = self
            .steps
            .iter()
            .map(|s| Step {
                name: s.name.clone(),
                op: s.op.clone(),
                kernel: s.kernel.clone(),
                args: s
                    .args
                    .iter()
                    .map(|a| match *a {
                        PArg::Buf(b) => Arg::Arena(range(b)),
                        PArg::Blob(r) => Arg::Blob(r),
                        PArg::PackAtRun(b) => Arg::PackAtRun(range(b)),
                    })
                    .collect(),
                out: range(s.out),
            })
            .collect();
        // Fused pairs: the depthwise step takes the pointwise one's place (its own output
        // buffer, read by nobody else, stays unused).
        for &i in self.fused.iter().rev() {
            let pw = steps.remove(i + 1);
            let dw = &mut steps[i];
            if let (Kernel::Conv(d), Kernel::Conv(p)) = (&dw.kernel, &pw.kernel) {
                dw.kernel = Kernel::DwPw(DwPw { dw: *d, pw: *p });
                dw.op = format!("{} + {}", dw.op, pw.op);
                dw.name = format!("{}+{}", dw.name, pw.name);
                dw.args.extend_from_slice(&pw.args[1..]);
                dw.out = pw.out;
            }
        }
        let binding = |t: TensorId, b: BufferId| Binding { name: g.tensor(t).name.clone(), shape: g.shape(t).to_vec(), range: range(b) };
        let inputs = g.inputs.iter().map(|&t| binding(t, self.values[&t].buf)).collect();
        let outputs = outputs.into_iter().map(|(t, b)| binding(t, b)).collect();
        Ok(Schedule {
            name: g.name.clone(),
            mult_adds: steps.iter().map(|s| s.kernel.mult_adds()).sum(),
            steps,
            weights: self.weights,
            arena_len: plan.arena_bytes / 4,
            arena_lower_bound_bytes: plan.lower_bound_bytes,
            arena_naive_bytes: plan.naive_bytes,
            inputs,
            outputs,
            params: self.params,
        })
    }

    // ---- buffers, blob slots and steps ----

    fn buffer(&mut self, name: &str, len: usize, kind: BufferKind) -> BufferId {
        self.buffers.push(planner::Buffer::new(name, len * 4, kind));
        self.lens.push(len);
        self.buffers.len() - 1
    }

    fn blob(&mut self, data: &[f32]) -> Range {
        let offset = self.weights.len().div_ceil(SLOT_ALIGN) * SLOT_ALIGN;
        self.weights.resize(offset, 0.0);
        self.weights.extend_from_slice(data);
        Range { offset, len: data.len() }
    }

    /// A constant's slot, packed by `pack` once per (tensor, packing).
    fn blob_of(&mut self, t: TensorId, packing: &'static str, pack: impl FnOnce(&[f32]) -> Vec<f32>) -> Range {
        if let Some(&r) = self.blob_cache.get(&(t, packing)) {
            return r;
        }
        let data = pack(&self.g.constant(t).expect("caller checked the constant").data);
        let r = self.blob(&data);
        self.blob_cache.insert((t, packing), r);
        r
    }

    fn kernel_step(&mut self, name: &str, op: &str, kernel: Kernel, args: Vec<PArg>, out_len: usize) -> BufferId {
        let out = self.buffer(name, out_len, BufferKind::Activation);
        let reads = args
            .iter()
            .filter_map(|a| match *a {
                PArg::Buf(b) | PArg::PackAtRun(b) => Some(b),
                PArg::Blob(_) => None,
            })
            .collect();
        self.plan_steps.push(planner::Step::new(name, reads, vec![out]));
        self.steps.push(PStep { name: name.into(), op: op.into(), kernel, args, out });
        out
    }

    /// A view: a new buffer on the same storage as `src` (no data moves).
    fn alias(&mut self, name: &str, src: BufferId) -> BufferId {
        let len = self.lens[src];
        let out = self.buffer(name, len, BufferKind::Activation);
        self.plan_steps.push(planner::Step::new(name, vec![src], vec![out]).with_alias(src, out));
        out
    }

    // ---- operands ----

    /// The lowered value of a runtime tensor; a constant read as an activation is copied
    /// from the blob into the arena once.
    fn value(&mut self, t: TensorId) -> Result<Value> {
        if let Some(&v) = self.values.get(&t) {
            return Ok(v);
        }
        if self.g.is_constant(t) {
            let r = self.blob_of(t, "raw", |d| d.to_vec());
            let name = format!("{}_const", self.g.tensor(t).name);
            let buf = self.kernel_step(&name, "Constant", Kernel::Copy, vec![PArg::Blob(r)], r.len);
            let v = Value { buf, layout: Layout::RowMajor };
            self.values.insert(t, v);
            return Ok(v);
        }
        Err(Error::Graph(format!("tensor '{}' is read before any node writes it", self.g.tensor(t).name)))
    }

    /// The buffer holding runtime tensor `t` in `layout`, converting once if the bytes differ.
    fn want(&mut self, t: TensorId, layout: Layout) -> Result<BufferId> {
        let v = self.value(t)?;
        let shape = self.g.shape(t).to_vec();
        if v.layout == layout || shape.len() != 4 || trivial(&shape) {
            return Ok(v.buf);
        }
        if let Some(&b) = self.converted.get(&(t, layout)) {
            return Ok(b);
        }
        let (pshape, perm) = match layout {
            Layout::Nhwc => (shape.clone(), TO_NHWC),
            Layout::RowMajor => (physical(&shape, Layout::Nhwc), TO_NCHW),
        };
        let suffix = if layout == Layout::Nhwc { "nhwc" } else { "nchw" };
        let name = format!("{}_{suffix}", self.g.tensor(t).name);
        let kernel = Kernel::Transpose { shape: pshape, perm: perm.to_vec() };
        let b = self.kernel_step(&name, "Transpose", kernel, vec![PArg::Buf(v.buf)], shape.iter().product());
        self.converted.insert((t, layout), b);
        Ok(b)
    }

    /// An operand as the kernel reads it: a constant from the blob (transposed to NHWC at
    /// compile time if asked), a runtime tensor from the arena.
    fn operand(&mut self, t: TensorId, layout: Layout) -> Result<PArg> {
        if let Some(c) = self.g.constant(t) {
            if layout == Layout::Nhwc && c.shape.len() == 4 && !trivial(&c.shape) {
                let shape = c.shape.clone();
                return Ok(PArg::Blob(self.blob_of(t, "nhwc", |d| transpose_data(d, &shape, &TO_NHWC))));
            }
            return Ok(PArg::Blob(self.blob_of(t, "raw", |d| d.to_vec())));
        }
        Ok(PArg::Buf(self.want(t, layout)?))
    }

    fn set(&mut self, t: TensorId, buf: BufferId, layout: Layout) {
        self.values.insert(t, Value { buf, layout });
    }

    /// For a pointwise conv on `x`: `(step index, depthwise input buffer)` when `x` is the
    /// output of the step just lowered, a depthwise conv, that nothing else reads, and both convs
    /// take their weights from the blob, so the pair can run as one [`DwPw`].
    fn fusable_depthwise(&self, x: TensorId, pw: &Conv2d, pw_args: &[PArg]) -> Option<(usize, BufferId)> {
        let last = self.steps.last()?;
        let Kernel::Conv(dw) = &last.kernel else { return None };
        let v = self.values.get(&x)?;
        let blobs = |args: &[PArg]| args.iter().all(|a| matches!(a, PArg::Blob(_)));
        let only_reader = self.g.consumers(x).len() == 1 && !self.g.outputs.contains(&x);
        let PArg::Buf(dw_input) = last.args[0] else { return None };
        let ok = pw.path() == ConvPath::Pointwise
            && v.buf == last.out
            && v.layout == Layout::Nhwc
            && only_reader
            && blobs(&last.args[1..])
            && blobs(pw_args)
            && DwPw { dw: *dw, pw: *pw }.check().is_ok();
        ok.then_some((self.steps.len() - 1, dw_input))
    }

    // ---- nodes ----

    fn node(&mut self, node: &Node) -> Result<()> {
        let g = self.g;
        let err = |msg: String| Error::node(&node.name, node.op.name(), msg);
        let out = *node.outputs.first().ok_or_else(|| err("the node has no output".into()))?;
        let out_shape = g.shape(out).to_vec();
        let out_len: usize = out_shape.iter().product();
        let input = |i: usize| node.inputs.get(i).copied().ok_or_else(|| err(format!("input {i} is missing")));
        let name = node.name.as_str();
        let op = node.op.name();
        match &node.op {
            Op::Conv(a) => {
                let (x, w) = (input(0)?, input(1)?);
                let xs = g.shape(x).to_vec();
                if xs.len() != 4 {
                    return Err(err(format!("only 2-D convolutions are supported; the input has shape {xs:?}")));
                }
                let c_out = g.shape(w)[0];
                let conv = Conv2d::new(xs[0], xs[2], xs[3], xs[1], c_out, a.group, a.kernel, a.strides, a.dilations, a.pads, act(a.activation));
                conv.check().map_err(|e| err(e.to_string()))?;
                if [conv.n, conv.c_out, conv.oh, conv.ow] != out_shape[..] {
                    return Err(err(format!("the kernel computes [{}, {}, {}, {}] but the graph says {out_shape:?}", conv.n, conv.c_out, conv.oh, conv.ow)));
                }
                // A first conv on the NCHW image input reads it in place: the transpose to NHWC
                // costs half as much as the conv itself at 224×224 (unless another reader has
                // made it already).
                let v = self.value(x)?;
                let nchw = v.layout == Layout::RowMajor && !trivial(&xs) && conv.reads_nchw() && !self.converted.contains_key(&(x, Layout::Nhwc));
                let xa = PArg::Buf(if nchw { v.buf } else { self.want(x, Layout::Nhwc)? });
                let wa = if g.is_constant(w) {
                    self.params += conv.weights_len() as u64;
                    PArg::Blob(self.blob_of(w, "conv", |d| conv.pack_weights(d)))
                } else {
                    PArg::PackAtRun(self.want(w, Layout::RowMajor)?)
                };
                let ba = self.bias(node.inputs.get(2).copied(), c_out)?;
                let fuse_with = self.fusable_depthwise(x, &conv, &[wa, ba]);
                let kernel = if nchw { Kernel::ConvNchw(conv) } else { Kernel::Conv(conv) };
                let b = self.kernel_step(name, op, kernel, vec![xa, wa, ba], out_len);
                if let Some((i, dw_input)) = fuse_with {
                    // The fused kernel reads the depthwise input while it writes this output:
                    // keep that input alive through this step so the two never share storage.
                    self.plan_steps.last_mut().expect("just pushed").reads.push(dw_input);
                    self.fused.push(i);
                }
                self.set(out, b, Layout::Nhwc);
            }
            Op::Head { softmax } => {
                let (x, w) = (input(0)?, input(1)?);
                let xs = g.shape(x).to_vec();
                let ws = g.shape(w).to_vec();
                if xs.len() != 4 || ws.len() != 2 {
                    return Err(err(format!("expected a 4-D input and a 2-D weight, got {xs:?} and {ws:?}")));
                }
                let c = xs[1];
                // The IR's head weight is [classes, C] (ONNX Gemm transB = 1); accept [C, classes] too.
                let (classes, trans) = if ws[1] == c { (ws[0], true) } else if ws[0] == c { (ws[1], false) } else {
                    return Err(err(format!("weight {ws:?} does not match {c} channels")));
                };
                let head = Head { n: xs[0], hw: xs[2] * xs[3], c, classes, softmax: *softmax };
                let xa = PArg::Buf(self.want(x, Layout::Nhwc)?);
                let wa = if g.is_constant(w) {
                    self.params += (c * classes + classes) as u64;
                    PArg::Blob(self.blob_of(w, "head", |d| head.pack_weights(d, trans)))
                } else {
                    return Err(err("the classifier weights must be constants".into()));
                };
                let ba = self.bias(node.inputs.get(2).copied(), classes)?;
                let b = self.kernel_step(name, op, Kernel::Head(head), vec![xa, wa, ba], out_len);
                self.set(out, b, Layout::RowMajor);
            }
            Op::Gemm(a) => self.gemm(node, a, out, out_len)?,
            Op::MatMul => {
                let (x, w) = (input(0)?, input(1)?);
                let (xs, ws) = (g.shape(x).to_vec(), g.shape(w).to_vec());
                if g.is_constant(w) && ws.len() == 2 && xs.len() >= 2 {
                    let dense = Dense { m: xs[..xs.len() - 1].iter().product(), k: ws[0], n: ws[1], act: Act::None };
                    self.params += (dense.k * dense.n) as u64;
                    let xa = self.operand(x, Layout::RowMajor)?;
                    let wa = PArg::Blob(self.blob_of(w, "dense", |d| dense.pack_weights(d, false)));
                    let ba = PArg::Blob(self.blob(&vec![0.0; dense.n]));
                    let b = self.kernel_step(name, op, Kernel::Dense(dense), vec![xa, wa, ba], out_len);
                    self.set(out, b, Layout::RowMajor);
                } else {
                    let k = mobilenetc_runtime::kernels::MatMul { a_shape: &xs, b_shape: &ws };
                    k.out_shape().map_err(|e| err(e.to_string()))?;
                    let args = vec![self.operand(x, Layout::RowMajor)?, self.operand(w, Layout::RowMajor)?];
                    let b = self.kernel_step(name, op, Kernel::MatMul { a_shape: xs, b_shape: ws }, args, out_len);
                    self.set(out, b, Layout::RowMajor);
                }
            }
            Op::AveragePool(p) | Op::MaxPool(p) => {
                let x = input(0)?;
                let xs = g.shape(x).to_vec();
                if xs.len() != 4 {
                    return Err(err(format!("only 2-D pooling is supported; the input has shape {xs:?}")));
                }
                let kind = match node.op {
                    Op::MaxPool(_) => PoolKind::Max,
                    _ => PoolKind::Avg { count_include_pad: p.count_include_pad },
                };
                let pool = Pool2d::new(xs[0], xs[2], xs[3], xs[1], p.kernel, p.strides, p.dilations, p.pads, p.ceil_mode, kind);
                pool.check().map_err(|e| err(e.to_string()))?;
                let xa = PArg::Buf(self.want(x, Layout::Nhwc)?);
                let b = self.kernel_step(name, op, Kernel::Pool(pool), vec![xa], out_len);
                self.set(out, b, Layout::Nhwc);
            }
            Op::GlobalAveragePool => {
                let x = input(0)?;
                let xs = g.shape(x).to_vec();
                if xs.len() != 4 {
                    return Err(err(format!("only 4-D inputs are supported, got {xs:?}")));
                }
                let k = GlobalAvgPool { n: xs[0], hw: xs[2] * xs[3], c: xs[1] };
                let xa = PArg::Buf(self.want(x, Layout::Nhwc)?);
                let b = self.kernel_step(name, op, Kernel::GlobalAvgPool(k), vec![xa], out_len);
                // [n, c, 1, 1]: both layouts are the same bytes.
                self.set(out, b, Layout::Nhwc);
            }
            Op::Softmax { axis } => {
                let x = input(0)?;
                let xs = g.shape(x).to_vec();
                let r = xs.len() as i64;
                let ax = if *axis < 0 { axis + r } else { *axis };
                if ax < 0 || ax >= r {
                    return Err(err(format!("axis {axis} is out of range for shape {xs:?}")));
                }
                let ax = ax as usize;
                let v = self.value(x)?;
                // Before opset 13, Softmax works on the input flattened to 2-D at `axis`.
                let coerced = self.g.meta.opset() != 0 && self.g.meta.opset() < 13 && ax + 1 < xs.len();
                let (k, layout) = if !coerced && xs.len() == 4 && ax == 1 && v.layout == Layout::Nhwc {
                    let ps = physical(&xs, Layout::Nhwc);
                    (Softmax::for_shape(&ps, 3, false), Layout::Nhwc)
                } else if coerced {
                    let outer = xs[..ax].iter().product();
                    (Some(Softmax { outer, axis: xs[ax..].iter().product(), inner: 1, log: false }), Layout::RowMajor)
                } else {
                    (Softmax::for_shape(&xs, ax as isize, false), Layout::RowMajor)
                };
                let k = k.ok_or_else(|| err(format!("axis {axis} is out of range for shape {xs:?}")))?;
                let xa = PArg::Buf(self.want(x, layout)?);
                let b = self.kernel_step(name, op, Kernel::Softmax(k), vec![xa], out_len);
                self.set(out, b, layout);
            }
            Op::Relu | Op::Clip { .. } => {
                let a = match node.op {
                    Op::Clip { min, max } => Act::Clip { min, max },
                    _ => Act::Relu,
                };
                let x = input(0)?;
                let v = self.value(x)?;
                let b = self.kernel_step(name, op, Kernel::Activation(a), vec![PArg::Buf(v.buf)], out_len);
                self.set(out, b, v.layout);
            }
            Op::Add | Op::Sub | Op::Mul => {
                let bop = match node.op {
                    Op::Add => BinOp::Add,
                    Op::Sub => BinOp::Sub,
                    _ => BinOp::Mul,
                };
                self.binary(node, bop, out, &out_shape)?;
            }
            Op::BatchNorm { epsilon, .. } => {
                let x = input(0)?;
                let xs = g.shape(x).to_vec();
                if xs.len() < 2 {
                    return Err(err(format!("the input {xs:?} has no channel axis")));
                }
                let mut params = Vec::new();
                for i in 1..5 {
                    let t = input(i)?;
                    let c = g.constant(t).ok_or_else(|| err(format!("parameter '{}' must be a constant for inference", g.tensor(t).name)))?;
                    params.push(c.data.clone());
                }
                let (layout, bn) = if xs.len() == 4 {
                    (Layout::Nhwc, BatchNorm { outer: xs[0] * xs[2] * xs[3], c: xs[1], inner: 1, eps: *epsilon, act: Act::None })
                } else {
                    (Layout::RowMajor, BatchNorm { outer: xs[0], c: xs[1], inner: xs[2..].iter().product(), eps: *epsilon, act: Act::None })
                };
                let packed = bn.pack(&params[0], &params[1], &params[2], &params[3]);
                let xa = PArg::Buf(self.want(x, layout)?);
                let pa = PArg::Blob(self.blob(&packed));
                let b = self.kernel_step(name, op, Kernel::BatchNorm(bn), vec![xa, pa], out_len);
                self.set(out, b, layout);
            }
            Op::Flatten { .. } | Op::Reshape { .. } => {
                let src = self.want(input(0)?, Layout::RowMajor)?;
                let b = self.alias(name, src);
                self.set(out, b, Layout::RowMajor);
            }
            Op::Identity | Op::Dropout { .. } => {
                let v = self.value(input(0)?)?;
                let b = self.alias(name, v.buf);
                self.set(out, b, v.layout);
            }
            Op::Transpose { perm } => {
                let x = input(0)?;
                let xs = g.shape(x).to_vec();
                let v = self.value(x)?;
                let as_rm = v.layout == Layout::RowMajor || trivial(&xs);
                let as_nhwc = v.layout == Layout::Nhwc || trivial(&xs);
                if xs.len() == 4 && perm[..] == TO_NCHW && as_rm {
                    // Row-major NHWC read as NCHW: exactly our channels-last storage.
                    let b = self.alias(name, v.buf);
                    self.set(out, b, Layout::Nhwc);
                } else if xs.len() == 4 && perm[..] == TO_NHWC && as_nhwc {
                    let b = self.alias(name, v.buf);
                    self.set(out, b, Layout::RowMajor);
                } else {
                    let xa = PArg::Buf(self.want(x, Layout::RowMajor)?);
                    let k = Kernel::Transpose { shape: xs, perm: perm.clone() };
                    let b = self.kernel_step(name, op, k, vec![xa], out_len);
                    self.set(out, b, Layout::RowMajor);
                }
            }
            Op::Pad { pads, value } => {
                let x = input(0)?;
                let xs = g.shape(x).to_vec();
                let v = self.value(x)?;
                let r = xs.len();
                if pads.len() != 2 * r {
                    return Err(err(format!("{} pads for an input of rank {r}", pads.len())));
                }
                let pads: Vec<isize> = pads.iter().map(|&p| p as isize).collect();
                let layout = if r == 4 { v.layout } else { Layout::RowMajor };
                let (shape, pads) = if layout == Layout::Nhwc {
                    let (b, e) = pads.split_at(4);
                    (physical(&xs, Layout::Nhwc), [permute(b, &TO_NHWC), permute(e, &TO_NHWC)].concat())
                } else {
                    (xs.clone(), pads)
                };
                let xa = PArg::Buf(self.want(x, layout)?);
                let b = self.kernel_step(name, op, Kernel::Pad { shape, pads, value: *value }, vec![xa], out_len);
                self.set(out, b, layout);
            }
            Op::Concat { axis } => {
                let r = out_shape.len() as i64;
                let ax = if *axis < 0 { axis + r } else { *axis };
                if ax < 0 || ax >= r {
                    return Err(err(format!("axis {axis} is out of range for rank {r}")));
                }
                let ax = ax as usize;
                let mut nhwc = r == 4;
                for &t in &node.inputs {
                    if !g.is_constant(t) && self.value(t)?.layout != Layout::Nhwc && !trivial(g.shape(t)) {
                        nhwc = false;
                    }
                }
                let layout = if nhwc { Layout::Nhwc } else { Layout::RowMajor };
                let (pshape, pax) = if nhwc { (physical(&out_shape, layout), nhwc_axis(ax)) } else { (out_shape.clone(), ax) };
                let mut args = Vec::new();
                let mut axis_lens = Vec::new();
                for &t in &node.inputs {
                    args.push(self.operand(t, layout)?);
                    axis_lens.push(physical(g.shape(t), layout)[pax]);
                }
                let k = Kernel::Concat { outer: pshape[..pax].iter().product(), inner: pshape[pax + 1..].iter().product(), axis_lens };
                let b = self.kernel_step(name, op, k, args, out_len);
                self.set(out, b, layout);
            }
        }
        Ok(())
    }

    /// A bias operand: the constant, a runtime tensor, or zeros when the node has none.
    fn bias(&mut self, t: Option<TensorId>, len: usize) -> Result<PArg> {
        match t {
            Some(t) => self.operand(t, Layout::RowMajor),
            None => Ok(PArg::Blob(self.blob(&vec![0.0; len]))),
        }
    }

    fn gemm(&mut self, node: &Node, a: &crate::graph::GemmAttrs, out: TensorId, out_len: usize) -> Result<()> {
        let g = self.g;
        let err = |msg: String| Error::node(&node.name, "Gemm", msg);
        let (x, w) = (node.inputs[0], *node.inputs.get(1).ok_or_else(|| err("input B is missing".into()))?);
        let (xs, ws) = (g.shape(x).to_vec(), g.shape(w).to_vec());
        if xs.len() != 2 || ws.len() != 2 {
            return Err(err(format!("A and B must be 2-D, got {xs:?} and {ws:?}")));
        }
        let (m, k) = if a.trans_a { (xs[1], xs[0]) } else { (xs[0], xs[1]) };
        let (kb, n) = if a.trans_b { (ws[1], ws[0]) } else { (ws[0], ws[1]) };
        if k != kb {
            return Err(err(format!("inner dimensions differ: A {xs:?}, B {ws:?} (transA {}, transB {})", a.trans_a, a.trans_b)));
        }
        let c = node.inputs.get(2).copied();
        let c_kind = match c {
            Some(t) => GemmC::from_shape(g.shape(t), m, n).map_err(|e| err(e.to_string()))?,
            None => GemmC::None,
        };
        let c_const = c.is_none_or(|t| g.is_constant(t));
        // The FC layer of a CNN: a plain dense layer with a fused bias.
        let dense_ok = !a.trans_a && a.alpha == 1.0 && g.is_constant(w) && c_const && (c_kind == GemmC::None || (c_kind == GemmC::Row && a.beta == 1.0));
        let xa = self.operand(x, Layout::RowMajor)?;
        if dense_ok {
            let dense = Dense { m, k, n, act: act(a.activation) };
            self.params += (k * n + if c.is_some() { n } else { 0 }) as u64;
            let trans = a.trans_b;
            let wa = PArg::Blob(self.blob_of(w, if trans { "dense_t" } else { "dense" }, |d| dense.pack_weights(d, trans)));
            let ba = self.bias(c, n)?;
            let b = self.kernel_step(&node.name, "Gemm", Kernel::Dense(dense), vec![xa, wa, ba], out_len);
            self.set(out, b, Layout::RowMajor);
            return Ok(());
        }
        let gemm = Gemm { m, k, n, trans_a: a.trans_a, trans_b: a.trans_b, alpha: a.alpha, beta: a.beta, c: c_kind, act: act(a.activation) };
        let wa = if g.is_constant(w) {
            self.params += (k * n) as u64;
            // The packing depends on trans_b and alpha: cache it per node.
            PArg::Blob(self.blob(&gemm.pack_b(&g.constant(w).expect("constant").data)))
        } else {
            PArg::PackAtRun(self.want(w, Layout::RowMajor)?)
        };
        let ca = match c {
            Some(t) => self.operand(t, Layout::RowMajor)?,
            None => PArg::Blob(Range { offset: 0, len: 0 }),
        };
        let b = self.kernel_step(&node.name, "Gemm", Kernel::Gemm(gemm), vec![xa, wa, ca], out_len);
        self.set(out, b, Layout::RowMajor);
        Ok(())
    }

    fn binary(&mut self, node: &Node, op: BinOp, out: TensorId, out_shape: &[usize]) -> Result<()> {
        let g = self.g;
        let (a, b) = match node.inputs[..] {
            [a, b] => (a, b),
            _ => return Err(Error::node(&node.name, node.op.name(), format!("expected 2 inputs, got {}", node.inputs.len()))),
        };
        // Channels-last when a 4-D operand already is and every other operand can follow
        // (constants are transposed at compile time; runtime operands of lower rank only
        // when their bytes do not move).
        let padded = |t: TensorId| -> Vec<usize> {
            let s = g.shape(t);
            let mut p = vec![1; out_shape.len().saturating_sub(s.len())];
            p.extend_from_slice(s);
            p
        };
        let mut any_nhwc = false;
        let mut all_follow = out_shape.len() == 4;
        for &t in &[a, b] {
            if g.is_constant(t) {
                continue;
            }
            let v = self.value(t)?;
            let s = g.shape(t);
            if s.len() == 4 && v.layout == Layout::Nhwc && !trivial(s) {
                any_nhwc = true;
            }
            if s.len() != 4 && !trivial(&padded(t)) {
                all_follow = false;
            }
        }
        let layout = if any_nhwc && all_follow { Layout::Nhwc } else { Layout::RowMajor };
        let mut args = Vec::new();
        let mut shapes = Vec::new();
        for &t in &[a, b] {
            if layout == Layout::Nhwc {
                let p = padded(t);
                if let Some(c) = g.constant(t) {
                    let data = c.data.clone();
                    let r = if trivial(&p) {
                        self.blob_of(t, "raw", |d| d.to_vec())
                    } else {
                        self.blob_of(t, "nhwc", |_| transpose_data(&data, &p, &TO_NHWC))
                    };
                    args.push(PArg::Blob(r));
                } else if g.shape(t).len() == 4 {
                    args.push(PArg::Buf(self.want(t, Layout::Nhwc)?));
                } else {
                    args.push(PArg::Buf(self.value(t)?.buf));
                }
                shapes.push(physical(&p, Layout::Nhwc));
            } else {
                args.push(self.operand(t, Layout::RowMajor)?);
                shapes.push(g.shape(t).to_vec());
            }
        }
        let k = Kernel::Binary { op, a_shape: shapes[0].clone(), b_shape: shapes[1].clone(), act: Act::None };
        let out_len = out_shape.iter().product();
        let buf = self.kernel_step(&node.name, node.op.name(), k, args, out_len);
        self.set(out, buf, layout);
        Ok(())
    }
}
