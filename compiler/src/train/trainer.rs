//! The training executor: runs a training schedule over the runtime's kernels.
//!
//! The trainer owns every parameter and running statistic in its ONNX layout (conv weights
//! OIHW, Gemm weights as stored, BatchNorm vectors), one gradient per parameter slot in the
//! same layout (so optimizers, checkpoints and export see ONNX tensors), and the forward
//! kernels' packed copies of the weights, re-packed after each update. Activations, saved
//! tensors and activation gradients live in one arena placed by liveness.

use std::collections::HashMap;

use mobilenetc_runtime::kernels::backward::{activation, conv as conv_bwd, dense as dense_bwd, pool as pool_bwd};
use mobilenetc_runtime::kernels::{elementwise, layout, BatchNorm, GlobalAvgPool};
use mobilenetc_runtime::loss::{softmax_cross_entropy, StepStats};
use mobilenetc_runtime::optim::Optimizer;

use super::arena::{place, Placement};
use super::autodiff::{build, Kernel, Schedule};
use super::program::{lower, FOp, Named};
use crate::error::{Error, Result};
use crate::graph::{Graph, Tensor};

/// How the trainer runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainConfig {
    /// Images per training step (the model's batch dimension is replaced by this).
    pub batch: usize,
    /// Threads the kernels split their work over.
    pub threads: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { batch: 128, threads: 1 }
    }
}

/// Memory of one compiled schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReport {
    pub arena_bytes: usize,
    /// The most bytes alive at one step (no placement can do better).
    pub lower_bound_bytes: usize,
    /// One buffer per tensor.
    pub naive_bytes: usize,
    /// Parameters, gradients and running statistics (outside the arena).
    pub parameter_bytes: usize,
}

/// Batch statistics a training-mode BatchNorm saves for its backward.
#[derive(Clone, Debug, Default)]
struct BnSaved {
    mean: Vec<f32>,
    invstd: Vec<f32>,
    var: Vec<f32>,
}

struct Compiled {
    sched: Schedule,
    place: Placement,
    /// Per op (BatchNorm ops only).
    bn: Vec<BnSaved>,
}

/// What one run of a schedule does besides the forward pass.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Inference BatchNorm (running statistics).
    Eval,
    /// Batch statistics; `backward` computes gradients; `update_stats` moves the running ones.
    Train { backward: bool, update_stats: bool },
}

pub struct Trainer {
    source: Graph,
    cfg: TrainConfig,
    params: Vec<Named>,
    stats: Vec<Named>,
    param_data: Vec<Vec<f32>>,
    grad_data: Vec<Vec<f32>>,
    stat_data: Vec<Vec<f32>>,
    /// Per parameter slot: the forward kernel's packed copy (conv / dense weights), if current.
    packed: Vec<Option<Vec<f32>>>,
    compiled: HashMap<(usize, bool), Compiled>,
    arena: mobilenetc_runtime::memory::Arena,
    input_chw: (usize, usize, usize),
    classes: usize,
    zeros: Vec<f32>,
    /// Seconds and calls per step label, when profiling.
    profile: Option<std::collections::BTreeMap<String, (f64, usize)>>,
}

impl Trainer {
    /// Prepares training of `graph` (unfused, BatchNorm kept: the source graph as imported or
    /// constructed). Errors name every op the trainer cannot differentiate.
    pub fn new(graph: &Graph, cfg: TrainConfig) -> Result<Trainer> {
        if cfg.threads == 0 {
            return Err(Error::Invalid("threads must be at least 1".into()));
        }
        let program = lower(graph, cfg.batch)?;
        let get = |n: &Named| -> Result<Vec<f32>> {
            let t = graph.constant(n.tensor).ok_or_else(|| Error::Invalid(format!("initializer '{}' has no data", n.name)))?;
            Ok(t.data.clone())
        };
        let param_data = program.params.iter().map(get).collect::<Result<Vec<_>>>()?;
        let stat_data = program.stats.iter().map(get).collect::<Result<Vec<_>>>()?;
        let grad_data = param_data.iter().map(|p| vec![0.0; p.len()]).collect();
        let v = &program.values[program.input];
        let zeros_len = program.values.iter().map(|v| v.c).max().unwrap_or(0);
        let mut t = Trainer {
            source: graph.clone(),
            cfg: cfg.clone(),
            params: program.params.clone(),
            stats: program.stats.clone(),
            packed: vec![None; param_data.len()],
            param_data,
            grad_data,
            stat_data,
            compiled: HashMap::new(),
            arena: mobilenetc_runtime::memory::zeroed(0),
            input_chw: (v.c, v.h, v.w),
            classes: program.classes,
            zeros: vec![0.0; zeros_len],
            profile: None,
        };
        t.insert_compiled(program, true)?;
        Ok(t)
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Kernel threads from now on.
    pub fn set_threads(&mut self, threads: usize) {
        self.cfg.threads = threads.max(1);
    }

    /// `[channels, height, width]` of one image.
    pub fn image_shape(&self) -> [usize; 3] {
        let (c, h, w) = self.input_chw;
        [c, h, w]
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// One optimization step on a batch (`labels.len()` images, at most the configured batch;
    /// a smaller last batch gets its own schedule). `images` is NCHW like the model's input.
    pub fn train_step(&mut self, images: &[f32], labels: &[u32], opt: &mut dyn Optimizer) -> Result<StepStats> {
        let stats = self.run(images, labels, Mode::Train { backward: true, update_stats: true })?;
        let t0 = std::time::Instant::now();
        opt.step_begin();
        for (slot, (p, g)) in self.param_data.iter_mut().zip(&self.grad_data).enumerate() {
            opt.update(slot, p, g);
        }
        self.packed.iter_mut().for_each(|p| *p = None);
        self.record("optimizer update".into(), t0);
        Ok(stats)
    }

    /// Loss and correct count in inference mode (BatchNorm with running statistics).
    pub fn eval_step(&mut self, images: &[f32], labels: &[u32]) -> Result<StepStats> {
        self.run(images, labels, Mode::Eval)
    }

    /// Forward and backward without updating anything (not even the running statistics):
    /// the loss, and the gradients in [`Trainer::gradients`].
    pub fn compute_gradients(&mut self, images: &[f32], labels: &[u32]) -> Result<StepStats> {
        self.run(images, labels, Mode::Train { backward: true, update_stats: false })
    }

    /// The training-mode loss (batch statistics) without gradients or updates.
    pub fn train_loss(&mut self, images: &[f32], labels: &[u32]) -> Result<StepStats> {
        self.run(images, labels, Mode::Train { backward: false, update_stats: false })
    }

    /// Starts (or stops) timing every step by kind; see [`Trainer::profile_report`].
    pub fn set_profiling(&mut self, on: bool) {
        self.profile = on.then(Default::default);
    }

    /// Time per step kind since profiling started, largest first.
    pub fn profile_report(&self) -> String {
        let Some(p) = &self.profile else { return "profiling is off".into() };
        let total: f64 = p.values().map(|v| v.0).sum();
        let mut rows: Vec<_> = p.iter().collect();
        rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        let mut out = format!("{:<34} {:>10} {:>7} {:>7}\n", "step kind", "seconds", "share", "calls");
        for (k, (t, n)) in rows {
            out += &format!("{k:<34} {t:>10.4} {:>6.1}% {n:>7}\n", 100.0 * t / total.max(1e-12));
        }
        out
    }

    fn record(&mut self, label: String, since: std::time::Instant) {
        if let Some(p) = &mut self.profile {
            let e = p.entry(label).or_insert((0.0, 0));
            e.0 += since.elapsed().as_secs_f64();
            e.1 += 1;
        }
    }

    /// Parameter names in slot order (the optimizer's slots).
    pub fn slot_names(&self) -> Vec<&str> {
        self.params.iter().map(|p| p.name.as_str()).collect()
    }

    /// Length of every parameter slot (for `Optimizer::load_state`).
    pub fn slot_sizes(&self) -> Vec<usize> {
        self.param_data.iter().map(Vec::len).collect()
    }

    /// The gradient of every parameter from the last backward pass, by slot.
    pub fn gradients(&self) -> Vec<(&str, &[f32])> {
        self.params.iter().zip(&self.grad_data).map(|(p, g)| (p.name.as_str(), g.as_slice())).collect()
    }

    /// Trainable parameters (slot order), then BatchNorm running statistics, by ONNX
    /// initializer name, in ONNX shapes and layouts.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        let p = self.params.iter().zip(&self.param_data);
        let s = self.stats.iter().zip(&self.stat_data);
        p.chain(s).map(|(n, d)| (n.name.clone(), Tensor::new(n.shape.clone(), d.clone()))).collect()
    }

    /// Overwrites parameters or running statistics by name (any subset); each must exist and
    /// keep its shape. All-or-nothing.
    pub fn set_parameters(&mut self, values: &[(String, Tensor)]) -> Result<()> {
        let mut plan = Vec::with_capacity(values.len());
        for (name, t) in values {
            let found = self.params.iter().position(|p| &p.name == name).map(|i| (true, i)).or_else(|| self.stats.iter().position(|p| &p.name == name).map(|i| (false, i)));
            let Some((is_param, i)) = found else {
                return Err(Error::Invalid(format!("the model has no trainable tensor or running statistic named '{name}'")));
            };
            let shape = if is_param { &self.params[i].shape } else { &self.stats[i].shape };
            if &t.shape != shape || t.data.len() != shape.iter().product::<usize>() {
                return Err(Error::Invalid(format!("'{name}' has shape {shape:?}; got {:?} with {} values", t.shape, t.data.len())));
            }
            plan.push((is_param, i, t.data.clone()));
        }
        for (is_param, i, data) in plan {
            if is_param {
                self.param_data[i] = data;
                self.packed[i] = None;
            } else {
                self.stat_data[i] = data;
            }
        }
        Ok(())
    }

    /// The source graph with the trained initializers.
    pub fn to_graph(&self) -> Graph {
        let mut g = self.source.clone();
        for (n, d) in self.params.iter().zip(&self.param_data).chain(self.stats.iter().zip(&self.stat_data)) {
            g.constants.insert(n.tensor, Tensor::new(n.shape.clone(), d.clone()));
        }
        g
    }

    /// Arena and parameter memory of the training schedule for `batch` images.
    pub fn memory(&mut self, batch: usize) -> Result<MemoryReport> {
        self.ensure_compiled(batch, true)?;
        let p = &self.compiled[&(batch, true)].place;
        let params: usize = self.param_data.iter().map(|v| 2 * v.len()).sum::<usize>() + self.stat_data.iter().map(Vec::len).sum::<usize>();
        Ok(MemoryReport { arena_bytes: 4 * p.arena_floats, lower_bound_bytes: 4 * p.lower_bound_floats, naive_bytes: 4 * p.naive_floats, parameter_bytes: 4 * params })
    }

    fn insert_compiled(&mut self, program: Program2, training: bool) -> Result<()> {
        let batch = program.values[program.input].n;
        let sched = build(program, training);
        let place = place(&sched)?;
        let bn = sched
            .program
            .ops
            .iter()
            .map(|op| match op {
                FOp::BatchNorm { bn, .. } if training => BnSaved { mean: vec![0.0; bn.c], invstd: vec![0.0; bn.c], var: vec![0.0; bn.c] },
                _ => BnSaved::default(),
            })
            .collect();
        self.compiled.insert((batch, training), Compiled { sched, place, bn });
        Ok(())
    }

    fn ensure_compiled(&mut self, batch: usize, training: bool) -> Result<()> {
        if !self.compiled.contains_key(&(batch, training)) {
            let program = lower(&self.source, batch)?;
            self.insert_compiled(program, training)?;
        }
        Ok(())
    }

    fn run(&mut self, images: &[f32], labels: &[u32], mode: Mode) -> Result<StepStats> {
        let n = labels.len();
        let (c, h, w) = self.input_chw;
        if n == 0 || n > self.cfg.batch.max(n * usize::from(mode == Mode::Eval)) {
            return Err(Error::Invalid(format!("a step takes 1 to {} labelled images; got {n}", self.cfg.batch)));
        }
        if images.len() != n * c * h * w {
            return Err(Error::Invalid(format!("{n} images of {c}×{h}×{w} need {} values; got {}", n * c * h * w, images.len())));
        }
        if let Some(i) = labels.iter().position(|&l| l as usize >= self.classes) {
            return Err(Error::Invalid(format!("label {} of image {i} is not below the model's {} classes", labels[i], self.classes)));
        }
        let training = mode != Mode::Eval;
        self.ensure_compiled(n, training)?;
        let mut comp = self.compiled.remove(&(n, training)).expect("compiled above");
        let result = self.execute(&mut comp, images, labels, mode);
        self.compiled.insert((n, training), comp);
        result
    }

    fn pack(&mut self, prog: &super::program::Program) {
        for op in &prog.ops {
            match op {
                FOp::Conv { conv, w, .. } if self.packed[*w].is_none() => self.packed[*w] = Some(conv_bwd::pack_forward_weights(conv, &self.param_data[*w])),
                FOp::Dense { dense, trans, w, .. } if self.packed[*w].is_none() => self.packed[*w] = Some(dense.pack_weights(&self.param_data[*w], *trans)),
                _ => {}
            }
        }
    }

    fn execute(&mut self, comp: &mut Compiled, images: &[f32], labels: &[u32], mode: Mode) -> Result<StepStats> {
        if self.arena.len() < comp.place.arena_floats {
            self.arena = mobilenetc_runtime::memory::zeroed(comp.place.arena_floats);
        }
        let t0 = std::time::Instant::now();
        self.pack(&comp.sched.program);
        self.record("pack weights".into(), t0);
        let threads = self.cfg.threads;
        let sched = &comp.sched;
        let prog = &sched.program;
        let base = self.arena.as_mut_ptr();
        let offsets = &comp.place.offsets;
        // SAFETY: the placement gives buffers alive at the same step disjoint ranges inside the
        // arena, and each step below borrows each buffer once (in-place rules take one slice).
        let buf = |b: usize| -> &mut [f32] { unsafe { std::slice::from_raw_parts_mut(base.add(offsets[b]), sched.bufs[b].floats) } };
        let vbuf = |v: usize| buf(sched.value_buf[v]);
        let mut stats = StepStats::default();
        for step in &sched.steps {
            let t0 = std::time::Instant::now();
            match &step.kernel {
                Kernel::ImageIn => {
                    let v = &prog.values[prog.input];
                    layout::nchw_to_nhwc(v.n, v.c, v.h, v.w, images, vbuf(prog.input));
                }
                Kernel::Forward { op } => self.forward(&prog.ops[*op], &mut comp.bn[*op], mode, &vbuf, &prog.values),
                Kernel::Loss { dlogits } => {
                    let logits = vbuf(prog.logits);
                    let backward = matches!(mode, Mode::Train { backward: true, .. });
                    let d = if backward { dlogits.map(buf) } else { None };
                    stats = softmax_cross_entropy(logits, labels, prog.classes, d).map_err(|e| Error::Invalid(e.to_string()))?;
                    if !backward {
                        break;
                    }
                }
                Kernel::Backward { op, dy, dx } => {
                    let op_i = *op;
                    let op = &prog.ops[op_i];
                    match *op {
                        FOp::Conv { conv, x, w, b, .. } => {
                            let dyv = buf(*dy);
                            conv_bwd::weight_grad(&conv, vbuf(x), dyv, &mut self.grad_data[w], threads);
                            if let Some(b) = b {
                                conv_bwd::bias_grad(dyv, conv.c_out, &mut self.grad_data[b]);
                            }
                            if let Some(d) = dx[0] {
                                conv_bwd::input_grad(&conv, dyv, &self.param_data[w], buf(d), threads);
                            }
                        }
                        FOp::BatchNorm { bn, x, scale, bias, .. } => {
                            let s = &comp.bn[op_i];
                            let (gs, gb) = two_mut(&mut self.grad_data, scale, bias);
                            bn.backward(vbuf(x), &self.param_data[scale], &self.param_data[bias], &s.mean, &s.invstd, buf(*dy), gs, gb, threads);
                        }
                        FOp::Act { act, y, .. } => activation::act_backward(act, vbuf(y), buf(*dy)),
                        FOp::GlobalAvgPool { x, .. } => {
                            let xv = &prog.values[x];
                            if let Some(d) = dx[0] {
                                pool_bwd::global_avg_pool_backward(xv.n, xv.h * xv.w, xv.c, buf(*dy), buf(d));
                            }
                        }
                        FOp::View { .. } => {}
                        FOp::Dense { dense, trans, x, w, b, .. } => {
                            let dyv = buf(*dy);
                            dense_bwd::weight_grad(&dense, vbuf(x), dyv, trans, &mut self.grad_data[w], threads);
                            if let Some(b) = b {
                                conv_bwd::bias_grad(dyv, dense.n, &mut self.grad_data[b]);
                            }
                            if let Some(d) = dx[0] {
                                dense_bwd::input_grad(&dense, dyv, &self.param_data[w], trans, buf(d), threads);
                            }
                        }
                        FOp::BiasAdd { x, b, .. } => conv_bwd::bias_grad(buf(*dy), prog.values[x].c, &mut self.grad_data[b]),
                        FOp::Add { .. } => {
                            if let Some(d) = dx[1] {
                                if d != *dy {
                                    buf(d).copy_from_slice(buf(*dy));
                                }
                            }
                        }
                    }
                }
                Kernel::Sum { dst, srcs } => {
                    for &s in srcs {
                        if s != *dst {
                            elementwise::accumulate(buf(*dst), buf(s));
                        }
                    }
                }
            }
            if self.profile.is_some() {
                let label = step_label(&step.kernel, prog);
                self.record(label, t0);
            }
        }
        Ok(stats)
    }

    fn forward<'a>(&mut self, op: &FOp, saved: &mut BnSaved, mode: Mode, vbuf: &impl Fn(usize) -> &'a mut [f32], values: &[super::program::Value]) {
        let threads = self.cfg.threads;
        match *op {
            FOp::Conv { conv, x, y, w, b } => {
                let bias = b.map_or(&self.zeros[..conv.c_out], |b| &self.param_data[b][..]);
                conv.run_threads(vbuf(x), self.packed[w].as_ref().expect("packed before the run"), bias, vbuf(y), threads);
            }
            FOp::BatchNorm { bn, x, y, scale, bias, mean, var, momentum } => match mode {
                Mode::Eval => {
                    let k = BatchNorm { outer: bn.pixels, c: bn.c, inner: 1, eps: bn.eps, act: bn.act };
                    let packed = k.pack(&self.param_data[scale], &self.param_data[bias], &self.stat_data[mean], &self.stat_data[var]);
                    k.run(vbuf(x), &packed, vbuf(y));
                }
                Mode::Train { update_stats, .. } => {
                    bn.forward(vbuf(x), &self.param_data[scale], &self.param_data[bias], vbuf(y), &mut saved.mean, &mut saved.invstd, &mut saved.var, threads);
                    if update_stats {
                        let (rm, rv) = two_mut(&mut self.stat_data, mean, var);
                        bn.update_running(rm, rv, &saved.mean, &saved.var, momentum);
                    }
                }
            },
            FOp::Act { act, x, y } => elementwise::activation(act, vbuf(x), vbuf(y)),
            FOp::GlobalAvgPool { x, y } => {
                let v = &values[x];
                GlobalAvgPool { n: v.n, hw: v.h * v.w, c: v.c }.run(vbuf(x), vbuf(y));
            }
            FOp::View { .. } => {}
            FOp::Dense { dense, x, y, w, b, .. } => {
                let bias = b.map_or(&self.zeros[..dense.n], |b| &self.param_data[b][..]);
                dense.run_threads(vbuf(x), self.packed[w].as_ref().expect("packed before the run"), bias, vbuf(y), threads);
            }
            FOp::BiasAdd { x, y, b } => elementwise::add_channel_bias(vbuf(x), &self.param_data[b], vbuf(y)),
            FOp::Add { a, b, y } => elementwise::add(vbuf(a), vbuf(b), vbuf(y)),
        }
    }
}

type Program2 = super::program::Program;

/// A profile label: the phase and the op kind (conv by path).
fn step_label(k: &Kernel, prog: &Program2) -> String {
    let kind = |op: usize| match &prog.ops[op] {
        FOp::Conv { conv, .. } => format!("Conv {:?}", conv.path()),
        other => other.kind().to_string(),
    };
    match k {
        Kernel::ImageIn => "image NCHW→NHWC".into(),
        Kernel::Forward { op } => format!("forward {}", kind(*op)),
        Kernel::Loss { .. } => "loss".into(),
        Kernel::Backward { op, .. } => format!("backward {}", kind(*op)),
        Kernel::Sum { .. } => "gradient sum".into(),
    }
}

/// Two distinct elements of a vector of vectors, mutably.
fn two_mut(v: &mut [Vec<f32>], a: usize, b: usize) -> (&mut [f32], &mut [f32]) {
    assert_ne!(a, b, "two distinct slots");
    if a < b {
        let (l, r) = v.split_at_mut(b);
        (&mut l[a], &mut r[0])
    } else {
        let (l, r) = v.split_at_mut(a);
        (&mut r[0], &mut l[b])
    }
}
