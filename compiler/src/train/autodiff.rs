//! Reverse-mode differentiation of a [`Program`] into a training schedule: the forward steps
//! (BatchNorm with batch statistics), the fused softmax-cross-entropy loss, then one backward
//! step per op in reverse order, all over buffers that one arena holds.
//!
//! Each backward rule names the forward values it reads ([`saved_values`], as
//! onnxruntime-training's gradient builders do): a conv needs its input (for the weight
//! gradient), BatchNorm its input (statistics, and the pre-activation that masks the fused
//! activation, recomputed from the saved mean and invstd), ReLU/Clip its output, Dense its input;
//! the global pool, views and additions need nothing. Those reads are ordinary reads of the
//! backward step, so the liveness that the planner computes keeps exactly those activations
//! alive, and frees every other activation as soon as the forward pass is done with it.
//!
//! Gradient buffers: the gradient of a value that several ops read is the sum of one
//! contribution per reader (a `Sum` step, in place into the first); ops whose backward is
//! elementwise (BatchNorm, activations, bias additions, views, the first operand of an Add)
//! rewrite their output's gradient in place into their input's, since nothing else reads it.

use super::program::{FOp, Program, ValueId};

pub type BufId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufKind {
    /// The image batch (NHWC), written by the first step.
    Input,
    /// A forward value (kept until the last backward step that needs it).
    Activation,
    Gradient,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Buf {
    pub name: String,
    pub floats: usize,
    pub kind: BufKind,
}

/// What a step runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    /// NCHW images → the input buffer (NHWC).
    ImageIn,
    /// Forward op `op` of the program.
    Forward { op: usize },
    /// Softmax cross-entropy on the logits; writes their gradient when training.
    Loss { dlogits: Option<BufId> },
    /// Backward of op `op`: `dy` is its output's gradient, `dx[i]` the gradient written for its
    /// input `i` (`None`: the input needs none). `dx[i] == Some(dy)` means in place.
    Backward { op: usize, dy: BufId, dx: Vec<Option<BufId>> },
    /// `dst += Σ srcs`.
    Sum { dst: BufId, srcs: Vec<BufId> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct TStep {
    pub kernel: Kernel,
    pub reads: Vec<BufId>,
    pub writes: Vec<BufId>,
}

/// A forward or training schedule over buffers (not yet placed).
#[derive(Clone, Debug)]
pub struct Schedule {
    pub program: Program,
    /// The buffer of each value (views share their source's).
    pub value_buf: Vec<BufId>,
    pub bufs: Vec<Buf>,
    pub steps: Vec<TStep>,
    pub training: bool,
}

/// The forward values op `op`'s backward rule reads.
pub fn saved_values(op: &FOp) -> Vec<ValueId> {
    match *op {
        FOp::Conv { x, .. } | FOp::Dense { x, .. } => vec![x],
        FOp::BatchNorm { x, .. } => vec![x],
        FOp::Act { y, .. } => vec![y],
        FOp::GlobalAvgPool { .. } | FOp::View { .. } | FOp::BiasAdd { .. } | FOp::Add { .. } => vec![],
    }
}

/// Whether the backward of `op` can overwrite its output's gradient with input `i`'s.
fn in_place(op: &FOp, i: usize) -> bool {
    match op {
        FOp::BatchNorm { .. } | FOp::Act { .. } | FOp::View { .. } | FOp::BiasAdd { .. } => true,
        FOp::Add { .. } => i == 0,
        FOp::Conv { .. } | FOp::Dense { .. } | FOp::GlobalAvgPool { .. } => false,
    }
}

/// The forward schedule (`training == false`: inference BatchNorm, loss without gradient), or
/// the training schedule with its backward pass.
pub fn build(program: Program, training: bool) -> Schedule {
    let mut bufs = Vec::new();
    let mut value_buf = vec![usize::MAX; program.values.len()];
    value_buf[program.input] = 0;
    bufs.push(Buf { name: program.values[program.input].name.clone(), floats: program.values[program.input].len(), kind: BufKind::Input });
    let mut steps = vec![TStep { kernel: Kernel::ImageIn, reads: vec![], writes: vec![0] }];
    for (i, op) in program.ops.iter().enumerate() {
        let y = op.output();
        if let FOp::View { x, .. } = *op {
            value_buf[y] = value_buf[x];
            continue;
        }
        value_buf[y] = bufs.len();
        bufs.push(Buf { name: program.values[y].name.clone(), floats: program.values[y].len(), kind: BufKind::Activation });
        steps.push(TStep { kernel: Kernel::Forward { op: i }, reads: op.inputs().iter().map(|&v| value_buf[v]).collect(), writes: vec![value_buf[y]] });
    }
    let logits_buf = value_buf[program.logits];
    if !training {
        steps.push(TStep { kernel: Kernel::Loss { dlogits: None }, reads: vec![logits_buf], writes: vec![] });
        return Schedule { program, value_buf, bufs, steps, training };
    }

    // Which values carry a gradient: those computed from a parameter.
    let mut requires = vec![false; program.values.len()];
    for op in &program.ops {
        requires[op.output()] = !op.params().is_empty() || op.inputs().iter().any(|&v| requires[v]);
    }
    let new_grad = |bufs: &mut Vec<Buf>, v: ValueId| {
        bufs.push(Buf { name: format!("grad.{}", program.values[v].name), floats: program.values[v].len(), kind: BufKind::Gradient });
        bufs.len() - 1
    };
    let mut contrib: Vec<Vec<BufId>> = vec![vec![]; program.values.len()];
    let dlogits = new_grad(&mut bufs, program.logits);
    contrib[program.logits].push(dlogits);
    steps.push(TStep { kernel: Kernel::Loss { dlogits: Some(dlogits) }, reads: vec![logits_buf], writes: vec![dlogits] });

    for (i, op) in program.ops.iter().enumerate().rev() {
        let y = op.output();
        let parts = std::mem::take(&mut contrib[y]);
        let Some((&dy, rest)) = parts.split_first() else { continue };
        if !rest.is_empty() {
            let mut reads = parts.clone();
            reads.dedup();
            steps.push(TStep { kernel: Kernel::Sum { dst: dy, srcs: rest.to_vec() }, reads, writes: vec![dy] });
        }
        let inputs = op.inputs();
        let mut dx = Vec::with_capacity(inputs.len());
        let mut dy_taken = false;
        for (k, &x) in inputs.iter().enumerate() {
            if !requires[x] {
                dx.push(None);
                continue;
            }
            let d = if in_place(op, k) && !dy_taken {
                dy_taken = true;
                dy
            } else {
                new_grad(&mut bufs, x)
            };
            contrib[x].push(d);
            dx.push(Some(d));
        }
        if op.params().is_empty() && dx.iter().all(Option::is_none) {
            continue;
        }
        let mut reads = vec![dy];
        reads.extend(saved_values(op).iter().map(|&v| value_buf[v]));
        let mut writes: Vec<BufId> = dx.iter().flatten().copied().collect();
        // The in-place rules rewrite dy even when the input needs no gradient.
        if matches!(op, FOp::BatchNorm { .. } | FOp::Act { .. }) && !writes.contains(&dy) {
            writes.push(dy);
        }
        steps.push(TStep { kernel: Kernel::Backward { op: i, dy, dx }, reads, writes });
    }
    Schedule { program, value_buf, bufs, steps, training }
}
