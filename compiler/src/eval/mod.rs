//! The naive reference evaluator: the oracle for pass tests and kernel tests, never a fast path.
//!
//! One obviously correct function per op, plain loops, f64 accumulation, ONNX semantics (NCHW
//! activations, OIHW conv weights), fused forms included (conv/gemm epilogues, [`Op::Head`]).
//! Values are stored as f32 between ops, as every executor of the graph stores them; only the
//! sums inside an op are carried in f64, so the oracle's own rounding is one f32 rounding per
//! output element.
//!
//! Every op output is checked against the shape recorded in the graph (when one is recorded),
//! so a pass or an importer that writes a wrong static shape is caught here, by name.

mod compare;
mod conv;
mod dense;
mod elementwise;
mod layout;

use std::collections::{BTreeMap, HashMap};

use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op, Tensor, TensorId};

pub use compare::max_rel_diff;
pub use layout::reshape_target;

/// Evaluates the graph on the named inputs; returns the graph outputs in graph-output order.
pub fn evaluate(g: &Graph, inputs: &[(&str, Tensor)]) -> Result<Vec<Tensor>> {
    let mut values = run(g, inputs, false)?;
    g.outputs.iter().map(|t| take_value(g, &mut values, *t)).collect()
}

/// Evaluates the graph and returns every value it computed or was given (inputs, constants,
/// every node output), by tensor id: for debugging a pass or a kernel layer
/// by layer.
pub fn evaluate_all(g: &Graph, inputs: &[(&str, Tensor)]) -> Result<BTreeMap<TensorId, Tensor>> {
    Ok(run(g, inputs, true)?.into_iter().collect())
}

fn take_value(g: &Graph, values: &mut HashMap<TensorId, Tensor>, t: TensorId) -> Result<Tensor> {
    // A tensor may be listed twice among the outputs, so clone rather than remove.
    values.get(&t).cloned().ok_or_else(|| Error::Graph(format!("graph output '{}' was not computed", g.tensor(t).name)))
}

fn run(g: &Graph, inputs: &[(&str, Tensor)], keep_all: bool) -> Result<HashMap<TensorId, Tensor>> {
    let mut values = bind_inputs(g, inputs)?;
    let order = g.topo_order()?;
    // How many more reads each tensor has, so that dead values are dropped as we go (MobileNet
    // 1.0-224 in f32 would otherwise hold every activation at once).
    let mut reads_left: HashMap<TensorId, usize> = HashMap::new();
    for &n in &order {
        for &t in &g.node(n).inputs {
            *reads_left.entry(t).or_default() += 1;
        }
    }
    for &n in &order {
        let node = g.node(n);
        let args = node
            .inputs
            .iter()
            .map(|&t| {
                values.get(&t).or_else(|| g.constant(t)).ok_or_else(|| {
                    Error::node(&node.name, node.op.name(), format!("input '{}' has no value (not produced, not an input, not a constant)", g.tensor(t).name))
                })
            })
            .collect::<Result<Vec<&Tensor>>>()?;
        let outs = eval_node(g, node, &args)?;
        if outs.len() != node.outputs.len() {
            return Err(Error::node(&node.name, node.op.name(), format!("the op gives {} output(s) but the node lists {}", outs.len(), node.outputs.len())));
        }
        for (&t, value) in node.outputs.iter().zip(outs) {
            check_recorded_shape(g, node, t, &value)?;
            values.insert(t, value);
        }
        if !keep_all {
            for &t in &node.inputs {
                let left = reads_left.get_mut(&t).expect("counted above");
                *left -= 1;
                if *left == 0 && !g.outputs.contains(&t) {
                    values.remove(&t);
                }
            }
        }
    }
    if keep_all {
        for (&t, c) in &g.constants {
            values.entry(t).or_insert_with(|| c.clone());
        }
    }
    // A graph output may be a constant itself.
    for &t in &g.outputs {
        if let (std::collections::hash_map::Entry::Vacant(e), Some(c)) = (values.entry(t), g.constant(t)) {
            e.insert(c.clone());
        }
    }
    Ok(values)
}

/// Matches the given inputs to the graph's by name; every graph input exactly once, with its
/// declared shape.
fn bind_inputs(g: &Graph, inputs: &[(&str, Tensor)]) -> Result<HashMap<TensorId, Tensor>> {
    let mut values = HashMap::new();
    for (name, value) in inputs {
        let Some(&t) = g.inputs.iter().find(|&&t| g.tensor(t).name == *name) else {
            let names: Vec<&str> = g.inputs.iter().map(|&t| g.tensor(t).name.as_str()).collect();
            return Err(Error::Invalid(format!("'{name}' is not an input of graph '{}' (its inputs: {})", g.name, names.join(", "))));
        };
        if value.data.len() != value.shape.iter().product::<usize>() {
            return Err(Error::Invalid(format!("input '{name}': {} values for shape {:?}", value.data.len(), value.shape)));
        }
        let declared = g.shape(t);
        if value.shape != declared {
            return Err(Error::Invalid(format!("input '{name}' has shape {:?}, the graph declares {:?}", value.shape, declared)));
        }
        if values.insert(t, value.clone()).is_some() {
            return Err(Error::Invalid(format!("input '{name}' is given twice")));
        }
    }
    let missing: Vec<&str> = g.inputs.iter().filter(|t| !values.contains_key(t)).map(|&t| g.tensor(t).name.as_str()).collect();
    if !missing.is_empty() {
        return Err(Error::Invalid(format!("missing graph input(s): {}", missing.join(", "))));
    }
    Ok(values)
}

fn check_recorded_shape(g: &Graph, node: &Node, t: TensorId, value: &Tensor) -> Result<()> {
    let recorded = g.shape(t);
    // An empty recorded shape is a scalar or not inferred; only a scalar result can match it
    // exactly, so accept any result then (hand-built graphs may leave shapes out).
    if !recorded.is_empty() && recorded != value.shape.as_slice() {
        return Err(Error::shape(
            &node.name,
            node.op.name(),
            format!("computes '{}' with shape {:?} but the graph records {:?}", g.tensor(t).name, value.shape, recorded),
        ));
    }
    Ok(())
}

/// Evaluates one node on its input values.
fn eval_node(g: &Graph, node: &Node, args: &[&Tensor]) -> Result<Vec<Tensor>> {
    let ctx = Ctx { node };
    let one = |t: Result<Tensor>| t.map(|t| vec![t]);
    match &node.op {
        Op::Conv(a) => one(conv::conv(&ctx, a, args)),
        Op::BatchNorm { epsilon, .. } => one(elementwise::batch_norm(&ctx, *epsilon, args)),
        Op::Relu => one(elementwise::unary(&ctx, args, |x| x.max(0.0))),
        Op::Clip { min, max } => {
            let (min, max) = (*min, *max);
            // ONNX Clip is min(max(x, lo), hi): with lo > hi every value becomes hi.
            one(elementwise::unary(&ctx, args, move |x| x.max(min).min(max)))
        }
        Op::GlobalAveragePool => one(conv::global_average_pool(&ctx, args)),
        Op::AveragePool(a) => one(conv::average_pool(&ctx, a, args)),
        Op::MaxPool(a) => one(conv::max_pool(&ctx, a, args)),
        Op::Flatten { axis } => one(layout::flatten(&ctx, *axis, args)),
        Op::Reshape { shape, allowzero } => one(layout::reshape(&ctx, shape, *allowzero, args)),
        Op::Gemm(a) => one(dense::gemm(&ctx, a, args)),
        Op::MatMul => one(dense::matmul(&ctx, args)),
        Op::Add => one(elementwise::binary(&ctx, args, |a, b| a + b)),
        Op::Sub => one(elementwise::binary(&ctx, args, |a, b| a - b)),
        Op::Mul => one(elementwise::binary(&ctx, args, |a, b| a * b)),
        Op::Softmax { axis } => one(dense::softmax(&ctx, *axis, g.meta.opset(), args)),
        Op::Identity => one(elementwise::unary(&ctx, args, |x| x)),
        Op::Dropout { .. } => {
            // Inference: the identity; the optional mask output is all true (1.0 as f32).
            let y = elementwise::unary(&ctx, &args[..args.len().min(1)], |x| x)?;
            let mut outs = vec![y.clone()];
            if node.outputs.len() > 1 {
                outs.push(Tensor::new(y.shape.clone(), vec![1.0; y.data.len()]));
            }
            Ok(outs)
        }
        Op::Transpose { perm } => one(layout::transpose(&ctx, perm, args)),
        Op::Pad { pads, value } => one(layout::pad(&ctx, pads, *value, args)),
        Op::Concat { axis } => one(layout::concat(&ctx, *axis, args)),
        Op::Head { softmax } => one(dense::head(&ctx, *softmax, args)),
    }
}

/// What every op function needs to name the node in its errors.
struct Ctx<'a> {
    node: &'a Node,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>) -> Error {
        Error::shape(&self.node.name, self.node.op.name(), message)
    }

    /// Checks the number of inputs is within [min, max].
    fn arity(&self, args: &[&Tensor], min: usize, max: usize) -> Result<()> {
        if args.len() < min || args.len() > max {
            let want = if min == max { format!("{min}") } else { format!("{min} to {max}") };
            return Err(Error::node(&self.node.name, self.node.op.name(), format!("takes {want} input(s), got {}", args.len())));
        }
        Ok(())
    }

    /// Normalizes an ONNX axis in [-rank, rank) (or [-rank, rank] when `inclusive`).
    fn axis(&self, axis: i64, rank: usize, inclusive: bool) -> Result<usize> {
        let r = rank as i64;
        let hi = if inclusive { r } else { r - 1 };
        if axis < -r || axis > hi {
            return Err(self.err(format!("axis {axis} is out of range for rank {rank}")));
        }
        Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
    }
}

/// Row-major strides of a shape.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

#[cfg(test)]
mod tests;
