//! One ONNX node → folded constants or IR ops, for every opset form from 7 on: attributes
//! that later opsets turned into inputs (Clip bounds, Pad pads, Dropout ratio, Unsqueeze
//! axes, Slice bounds) are read from wherever this node's opset keeps them.

use mobilenetc_runtime::onnx::tensor_proto::DataType;

use super::attrs::Attrs;
use super::builder::{Importer, Value};
use super::fold::{self, Arith, FoldError};
use super::functions::FlatNode;
use super::tensors::{decode_tensor, Const, Data};
use crate::error::{Error, Result};
use crate::graph::shape::fmt;
use crate::graph::{Activation, AutoPad, ConvAttrs, GemmAttrs, Op, PoolAttrs, TensorId};

/// Ops that become IR ops.
const IR_OPS: &[&str] = &[
    "Conv", "BatchNormalization", "Relu", "Clip", "GlobalAveragePool", "AveragePool", "MaxPool", "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Sub", "Mul", "Softmax",
    "Identity", "Dropout", "Transpose", "Pad", "Concat",
];

/// Ops evaluated at import when their operands are constants (static shape arithmetic).
/// Squeeze/Unsqueeze of a runtime tensor become a Reshape, Cast to float an Identity.
const FOLD_OPS: &[&str] = &[
    "Constant", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Add", "Sub", "Mul", "Div", "ConstantOfShape", "Reshape", "Identity",
];

pub fn is_known(op: &str) -> bool {
    IR_OPS.contains(&op) || FOLD_OPS.contains(&op)
}

/// The earliest opset whose schema of `op` is the one in force at opset 7 (its `since_version`
/// there): older models of an op that has not changed since are read the same way, while older
/// schemas that differ (Relu-1's consumed_inputs, Cast-1's string `to`, Reshape-1's shape
/// attribute) are refused as unsupported.
pub fn min_opset(op: &str) -> i64 {
    match op {
        "Conv" | "GlobalAveragePool" | "AveragePool" | "MaxPool" | "Flatten" | "MatMul" | "Softmax" | "Identity" | "Transpose" | "Constant" | "Shape" | "Gather" | "Unsqueeze" | "Squeeze" | "Slice" => 1,
        "Pad" => 2,
        "Concat" => 4,
        "Reshape" => 5,
        // Version 6 of these differs from 7 only by legacy attributes read below
        // (BatchNorm/Dropout is_test, Gemm/Add/Sub/Mul broadcast and axis).
        "Relu" | "Clip" | "Cast" | "BatchNormalization" | "Dropout" | "Gemm" | "Add" | "Sub" | "Mul" => 6,
        "ConstantOfShape" => 9,
        _ => 7,
    }
}

/// The i-th input's name, None when absent or empty (an omitted optional input).
fn arg(n: &FlatNode, i: usize) -> Option<&str> {
    n.proto.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
}

fn op_of(n: &FlatNode) -> &str {
    n.proto.op_type.as_deref().unwrap_or("")
}

fn err(n: &FlatNode, message: impl Into<String>) -> Error {
    Error::node(&n.name, op_of(n), message)
}

fn need<'a>(n: &'a FlatNode, i: usize, what: &str) -> Result<&'a str> {
    arg(n, i).ok_or_else(|| err(n, format!("is missing its required input {i} ({what})")))
}

fn out(n: &FlatNode) -> Result<&str> {
    n.proto.output.first().map(String::as_str).filter(|s| !s.is_empty()).ok_or_else(|| err(n, "has no output"))
}

fn fold_err(n: &FlatNode, e: FoldError) -> Error {
    match e {
        FoldError::Bad(m) => err(n, m),
        FoldError::Limit(m) => Error::Limit(format!("node '{}' ({}): {m}", n.name, op_of(n))),
    }
}

/// Refuses a node whose optional outputs from `from` on are read: we compute only the first.
fn first_output_only(im: &Importer, n: &FlatNode, what: &str) -> Result<()> {
    for o in n.proto.output.iter().skip(1).filter(|o| !o.is_empty()) {
        if im.used.contains(o) {
            return Err(err(n, format!("its {what} output '{o}' is used by the model; mobilenetc supports only the inference form, which has one output")));
        }
    }
    Ok(())
}

/// A constant operand (a shape, axes, a bound): refused clearly when computed at run time.
fn const_input(im: &Importer, n: &FlatNode, i: usize, what: &str) -> Result<Option<Const>> {
    let Some(name) = arg(n, i) else { return Ok(None) };
    im.value(n, name)?;
    im.constant(name)
        .map(Some)
        .ok_or_else(|| err(n, format!("its {what} input '{name}' is computed at run time; mobilenetc needs it to be a constant (an initializer or a foldable shape expression)")))
}

fn const_ints(im: &Importer, n: &FlatNode, i: usize, what: &str) -> Result<Option<Vec<i64>>> {
    match const_input(im, n, i, what)? {
        None => Ok(None),
        Some(c) => c.ints().map(|v| Some(v.to_vec())).ok_or_else(|| err(n, format!("its {what} input must hold integers, found {}", c.type_name()))),
    }
}

/// A one-element numeric constant as f64.
fn const_scalar(im: &Importer, n: &FlatNode, i: usize, what: &str) -> Result<Option<f64>> {
    match const_input(im, n, i, what)? {
        None => Ok(None),
        Some(c) if c.data.len() == 1 => Ok(Some(c.data.as_f64()[0])),
        Some(c) => Err(err(n, format!("its {what} input must hold one value, found shape {}", fmt(&c.shape)))),
    }
}

/// Converts or folds one node. Ok(false): not supported in this form (a fold-only op on
/// runtime data); the caller lists it with the unsupported ops.
pub fn convert(im: &mut Importer, n: &FlatNode) -> Result<bool> {
    let op = op_of(n);
    if FOLD_OPS.contains(&op) && foldable(im, n) {
        fold_node(im, n)?;
        return Ok(true);
    }
    let a = Attrs::new(&n.name, &n.proto);
    let y = out(n)?.to_string();
    match op {
        "Conv" => conv(im, n, &a, &y)?,
        "AveragePool" | "MaxPool" => pool(im, n, &a, &y)?,
        "BatchNormalization" => batch_norm(im, n, &a, &y)?,
        "Clip" => clip(im, n, &a, &y)?,
        "Softmax" => softmax(im, n, &a, &y)?,
        "Dropout" => dropout(im, n, &a, &y)?,
        "Pad" => pad(im, n, &a, &y)?,
        "Gemm" => {
            a.allow(if n.opset < 7 { &["alpha", "beta", "transA", "transB", "broadcast"] } else { &["alpha", "beta", "transA", "transB"] })?;
            let attrs = GemmAttrs { alpha: a.float_or("alpha", 1.0)?, beta: a.float_or("beta", 1.0)?, trans_a: a.flag("transA", false)?, trans_b: a.flag("transB", false)?, activation: Activation::None };
            let mut ins = vec![im.tensor(n, need(n, 0, "A")?)?, im.tensor(n, need(n, 1, "B")?)?];
            if let Some(c) = arg(n, 2) {
                ins.push(im.tensor(n, c)?);
            }
            im.emit(&n.name, Op::Gemm(attrs), ins, &y)?;
        }
        "Add" | "Sub" | "Mul" if n.opset < 7 => legacy_binary(im, n, &a, &y)?,
        "Relu" | "GlobalAveragePool" | "Identity" | "MatMul" | "Add" | "Sub" | "Mul" => {
            a.allow(&[])?;
            let (ir, arity) = match op {
                "Relu" => (Op::Relu, 1),
                "GlobalAveragePool" => (Op::GlobalAveragePool, 1),
                "Identity" => (Op::Identity, 1),
                "MatMul" => (Op::MatMul, 2),
                "Add" => (Op::Add, 2),
                "Sub" => (Op::Sub, 2),
                _ => (Op::Mul, 2),
            };
            let ins = (0..arity).map(|i| im.tensor(n, need(n, i, "operand")?)).collect::<Result<Vec<_>>>()?;
            im.emit(&n.name, ir, ins, &y)?;
        }
        "Flatten" => {
            a.allow(&["axis"])?;
            let x = im.tensor(n, need(n, 0, "input")?)?;
            im.emit(&n.name, Op::Flatten { axis: a.int_or("axis", 1)? }, vec![x], &y)?;
        }
        "Reshape" => {
            a.allow(&["allowzero"])?;
            let x = im.tensor(n, need(n, 0, "data")?)?;
            let shape = const_ints(im, n, 1, "shape")?.ok_or_else(|| err(n, "is missing its shape input"))?;
            im.emit(&n.name, Op::Reshape { shape, allowzero: a.flag("allowzero", false)? }, vec![x], &y)?;
        }
        "Transpose" => {
            a.allow(&["perm"])?;
            let x = im.tensor(n, need(n, 0, "input")?)?;
            let perm = match a.ints("perm")? {
                None => vec![],
                Some(p) => p.iter().map(|&v| usize::try_from(v).map_err(|_| err(n, format!("perm {p:?} has a negative entry")))).collect::<Result<_>>()?,
            };
            im.emit(&n.name, Op::Transpose { perm }, vec![x], &y)?;
        }
        "Concat" => {
            a.allow(&["axis"])?;
            let axis = a.int("axis")?.ok_or_else(|| err(n, "is missing its required attribute 'axis'"))?;
            let ins = n.proto.input.iter().filter(|s| !s.is_empty()).map(|s| im.tensor(n, s)).collect::<Result<Vec<_>>>()?;
            im.emit(&n.name, Op::Concat { axis }, ins, &y)?;
        }
        "Squeeze" | "Unsqueeze" => {
            // On a runtime tensor these only change the (static) shape: a Reshape.
            let x_name = need(n, 0, "data")?;
            let shape = im.shape_of(n, x_name)?;
            let axes = axes(im, n, &a)?;
            let target = if op == "Squeeze" { fold::squeeze_shape(&shape, axes.as_deref()) } else { fold::unsqueeze_shape(&shape, axes.as_deref().unwrap_or(&[])) }.map_err(|e| fold_err(n, e))?;
            let x = im.tensor(n, x_name)?;
            im.emit(&n.name, Op::Reshape { shape: target.iter().map(|&d| d as i64).collect(), allowzero: false }, vec![x], &y)?;
        }
        "Cast" => {
            a.allow(&["to", "saturate", "round_mode"])?;
            if a.int("to")? != Some(DataType::Float as i32 as i64) {
                return Ok(false);
            }
            // Our runtime tensors are float32 already.
            let x = im.tensor(n, need(n, 0, "input")?)?;
            im.emit(&n.name, Op::Identity, vec![x], &y)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn foldable(im: &Importer, n: &FlatNode) -> bool {
    match op_of(n) {
        "Constant" => true,
        "Shape" => arg(n, 0).is_some_and(|x| matches!(im.values.get(x), Some(Value::Ir(_) | Value::Const(_)))),
        _ => n.proto.input.iter().filter(|s| !s.is_empty()).all(|s| im.is_constant(s)) && n.proto.input.iter().any(|s| !s.is_empty()),
    }
}

/// The axes of Squeeze/Unsqueeze: an attribute before opset 13, an input from 13 on.
fn axes(im: &Importer, n: &FlatNode, a: &Attrs) -> Result<Option<Vec<i64>>> {
    if n.opset < 13 {
        a.allow(&["axes"])?;
        a.ints("axes")
    } else {
        a.allow(&[])?;
        const_ints(im, n, 1, "axes")
    }
}

fn fold_node(im: &mut Importer, n: &FlatNode) -> Result<()> {
    let a = Attrs::new(&n.name, &n.proto);
    let max = im.src.max_bytes;
    let input = |i: usize| -> Result<Const> { im.constant(need(n, i, "operand")?).ok_or_else(|| err(n, "operand is not constant")) };
    let result = match op_of(n) {
        "Constant" => constant(im, n, &a)?,
        "Shape" => {
            a.allow(&["start", "end"])?;
            fold::shape(&im.shape_of(n, need(n, 0, "data")?)?, a.int_or("start", 0)?, a.int("end")?)
        }
        "Identity" => {
            a.allow(&[])?;
            input(0)?
        }
        "Gather" => {
            a.allow(&["axis"])?;
            fold::gather(&input(0)?, &input(1)?, a.int_or("axis", 0)?, max).map_err(|e| fold_err(n, e))?
        }
        "Unsqueeze" => {
            let axes = axes(im, n, &a)?.ok_or_else(|| err(n, "is missing its axes"))?;
            fold::unsqueeze(&input(0)?, &axes).map_err(|e| fold_err(n, e))?
        }
        "Squeeze" => {
            let c = input(0)?;
            let shape = fold::squeeze_shape(&c.shape, axes(im, n, &a)?.as_deref()).map_err(|e| fold_err(n, e))?;
            Const { shape, ..c }
        }
        "Concat" => {
            a.allow(&["axis"])?;
            let axis = a.int("axis")?.ok_or_else(|| err(n, "is missing its required attribute 'axis'"))?;
            let parts = n.proto.input.iter().filter(|s| !s.is_empty()).map(|s| im.constant(s).ok_or_else(|| err(n, "operand is not constant"))).collect::<Result<Vec<_>>>()?;
            fold::concat(&parts, axis, max).map_err(|e| fold_err(n, e))?
        }
        "Cast" => {
            a.allow(&["to", "saturate", "round_mode"])?;
            let to = a.int("to")?.ok_or_else(|| err(n, "is missing its required attribute 'to'"))?;
            fold::cast(&input(0)?, to as i32).map_err(|e| fold_err(n, e))?
        }
        "Slice" => {
            let (starts, ends, axes, steps) = if n.opset < 10 {
                a.allow(&["starts", "ends", "axes"])?;
                let req = |k: &str| a.ints(k)?.ok_or_else(|| err(n, format!("is missing its required attribute '{k}'")));
                (req("starts")?, req("ends")?, a.ints("axes")?, None)
            } else {
                a.allow(&[])?;
                let req = |i, k: &str| const_ints(im, n, i, k)?.ok_or_else(|| err(n, format!("is missing its {k} input")));
                (req(1, "starts")?, req(2, "ends")?, const_ints(im, n, 3, "axes")?, const_ints(im, n, 4, "steps")?)
            };
            fold::slice(&input(0)?, &starts, &ends, axes.as_deref(), steps.as_deref(), max).map_err(|e| fold_err(n, e))?
        }
        op @ ("Add" | "Sub" | "Mul" | "Div") => {
            a.allow(&[])?;
            let k = match op {
                "Add" => Arith::Add,
                "Sub" => Arith::Sub,
                "Mul" => Arith::Mul,
                _ => Arith::Div,
            };
            fold::arith(k, &input(0)?, &input(1)?, max).map_err(|e| fold_err(n, e))?
        }
        "ConstantOfShape" => {
            a.allow(&["value"])?;
            let value = a.tensor("value")?.map(|t| decode_tensor(t, &format!("node '{}' attribute 'value'", n.name), &im.src)).transpose()?;
            fold::constant_of_shape(&input(0)?, value, max).map_err(|e| fold_err(n, e))?
        }
        "Reshape" => {
            a.allow(&["allowzero"])?;
            let shape = const_ints(im, n, 1, "shape")?.ok_or_else(|| err(n, "is missing its shape input"))?;
            fold::reshape(&input(0)?, &shape, a.flag("allowzero", false)?).map_err(|e| fold_err(n, e))?
        }
        other => unreachable!("{other} is not a fold op"),
    };
    im.set_const(out(n)?, result);
    Ok(())
}

/// A Constant node's value, in any of its attribute forms.
fn constant(im: &Importer, n: &FlatNode, a: &Attrs) -> Result<Const> {
    a.allow(&["value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string", "value_strings"])?;
    if n.proto.attribute.len() != 1 {
        return Err(err(n, format!("must have exactly one value attribute, found {}", n.proto.attribute.len())));
    }
    if let Some(t) = a.tensor("value")? {
        return decode_tensor(t, &format!("node '{}' value", n.name), &im.src);
    }
    if let Some(v) = a.float("value_float")? {
        return Ok(Const { dtype: DataType::Float as i32, shape: vec![], data: Data::F32(vec![v]) });
    }
    if let Some(v) = a.floats("value_floats")? {
        return Ok(Const { dtype: DataType::Float as i32, shape: vec![v.len()], data: Data::F32(v) });
    }
    if let Some(v) = a.int("value_int")? {
        return Ok(Const::i64s(vec![], vec![v]));
    }
    if let Some(v) = a.ints("value_ints")? {
        return Ok(Const::i64s(vec![v.len()], v));
    }
    Err(err(n, "holds a sparse or string value, which mobilenetc does not support"))
}

fn auto_pad(n: &FlatNode, a: &Attrs) -> Result<AutoPad> {
    Ok(match a.string("auto_pad")?.as_deref() {
        None | Some("NOTSET") | Some("") => AutoPad::NotSet,
        Some("SAME_UPPER") => AutoPad::SameUpper,
        Some("SAME_LOWER") => AutoPad::SameLower,
        Some("VALID") => AutoPad::Valid,
        Some(s) => return Err(err(n, format!("auto_pad '{s}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID"))),
    })
}

/// The 2-D window attributes common to Conv and the pools.
struct Window {
    kernel: [usize; 2],
    strides: [usize; 2],
    pads: [usize; 4],
    dilations: [usize; 2],
    auto_pad: AutoPad,
}

fn window(im: &Importer, n: &FlatNode, a: &Attrs, x: &str, kernel_from_weight: Option<&[usize]>) -> Result<Window> {
    let xs = im.shape_of(n, x)?;
    if xs.len() != 4 {
        return Err(err(n, format!("input '{x}' has shape {}; only 2-D {}s on 4-D [N, C, H, W] inputs are supported", fmt(&xs), op_of(n))));
    }
    let kernel = match (a.ints("kernel_shape")?, kernel_from_weight) {
        (Some(k), _) if k.len() == 2 && k.iter().all(|&v| v > 0) => [k[0] as usize, k[1] as usize],
        (Some(k), _) => return Err(err(n, format!("kernel_shape {k:?} must hold 2 positive sizes; only 2-D windows are supported"))),
        (None, Some(w)) if w.len() == 4 => [w[2], w[3]],
        (None, Some(w)) => return Err(err(n, format!("weight has shape {}; only 2-D convolutions (4-D weights) are supported", fmt(w)))),
        (None, None) => return Err(err(n, "is missing its required attribute 'kernel_shape'")),
    };
    let strides = a.sizes("strides", 2, 1)?;
    let dilations = a.sizes("dilations", 2, 1)?;
    let pads = a.sizes("pads", 4, 0)?;
    let auto_pad = auto_pad(n, a)?;
    if auto_pad != AutoPad::NotSet && pads.iter().any(|&p| p != 0) {
        return Err(err(n, format!("has both auto_pad and explicit pads {pads:?}; ONNX allows only one")));
    }
    Ok(Window { kernel, strides: [strides[0], strides[1]], pads: [pads[0], pads[1], pads[2], pads[3]], dilations: [dilations[0], dilations[1]], auto_pad })
}

fn conv(im: &mut Importer, n: &FlatNode, a: &Attrs, y: &str) -> Result<()> {
    a.allow(&["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])?;
    let (xn, wn) = (need(n, 0, "X")?, need(n, 1, "W")?);
    let ws = im.shape_of(n, wn)?;
    let w = window(im, n, a, xn, Some(&ws))?;
    let group = a.int_or("group", 1)?;
    if group < 1 {
        return Err(err(n, format!("group {group} must be at least 1")));
    }
    let attrs = ConvAttrs { kernel: w.kernel, strides: w.strides, pads: w.pads, dilations: w.dilations, group: group as usize, auto_pad: w.auto_pad, activation: Activation::None };
    let mut ins = vec![im.tensor(n, xn)?, im.tensor(n, wn)?];
    if let Some(b) = arg(n, 2) {
        ins.push(im.tensor(n, b)?);
    }
    im.emit(&n.name, Op::Conv(attrs), ins, y)?;
    Ok(())
}

fn pool(im: &mut Importer, n: &FlatNode, a: &Attrs, y: &str) -> Result<()> {
    let max = op_of(n) == "MaxPool";
    if max {
        a.allow(&["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"])?;
        first_output_only(im, n, "Indices")?;
    } else {
        a.allow(&["auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"])?;
    }
    let xn = need(n, 0, "X")?;
    let w = window(im, n, a, xn, None)?;
    let attrs = PoolAttrs {
        kernel: w.kernel,
        strides: w.strides,
        pads: w.pads,
        dilations: w.dilations,
        auto_pad: w.auto_pad,
        ceil_mode: a.flag("ceil_mode", false)?,
        count_include_pad: a.flag("count_include_pad", false)?,
    };
    let x = im.tensor(n, xn)?;
    im.emit(&n.name, if max { Op::MaxPool(attrs) } else { Op::AveragePool(attrs) }, vec![x], y)?;
    Ok(())
}

/// Add/Sub/Mul before opset 7: with `broadcast=1`, B's dims line up with A's from `axis` on
/// (suffix when absent). A reshape of B that appends 1-dims turns that into numpy broadcasting.
fn legacy_binary(im: &mut Importer, n: &FlatNode, a: &Attrs, y: &str) -> Result<()> {
    a.allow(&["broadcast", "axis"])?;
    let (an, bn) = (need(n, 0, "A")?, need(n, 1, "B")?);
    let (sa, sb) = (im.shape_of(n, an)?, im.shape_of(n, bn)?);
    let (x, mut b) = (im.tensor(n, an)?, im.tensor(n, bn)?);
    if a.flag("broadcast", false)? {
        if let Some(axis) = a.int("axis")? {
            let ax = if axis < 0 { axis + sa.len() as i64 } else { axis };
            if ax < 0 || ax as usize + sb.len() > sa.len() {
                return Err(err(n, format!("B {} cannot be aligned with A {} at axis {axis}", fmt(&sb), fmt(&sa))));
            }
            let trailing = sa.len() - ax as usize - sb.len();
            if trailing > 0 {
                let shape = sb.iter().map(|&d| d as i64).chain(std::iter::repeat_n(1, trailing)).collect();
                let name = im.fresh(&format!("{bn}/aligned"));
                b = im.emit(&format!("{}/align", n.name), Op::Reshape { shape, allowzero: false }, vec![b], &name)?;
            }
        }
    } else if sa != sb {
        return Err(err(n, format!("A {} and B {} differ and broadcast is 0", fmt(&sa), fmt(&sb))));
    }
    let op = match op_of(n) {
        "Add" => Op::Add,
        "Sub" => Op::Sub,
        _ => Op::Mul,
    };
    im.emit(&n.name, op, vec![x, b], y)?;
    Ok(())
}

fn batch_norm(im: &mut Importer, n: &FlatNode, a: &Attrs, y: &str) -> Result<()> {
    a.allow(&["epsilon", "momentum", "spatial", "training_mode", "is_test"])?;
    if n.opset < 7 && !a.flag("is_test", false)? {
        return Err(err(n, "is_test=0 normalizes with batch statistics; mobilenetc imports the inference form (export the model in eval mode)"));
    }
    if n.opset < 9 && !a.flag("spatial", true)? {
        return Err(err(n, "spatial=0 (per-element statistics) is not supported; only per-channel BatchNorm is"));
    }
    if a.flag("training_mode", false)? {
        return Err(err(n, "training_mode=1 normalizes with batch statistics; mobilenetc imports the inference form (export the model in eval mode)"));
    }
    first_output_only(im, n, "training statistics")?;
    let ins = ["X", "scale", "B", "input_mean", "input_var"].iter().enumerate().map(|(i, w)| im.tensor(n, need(n, i, w)?)).collect::<Result<Vec<TensorId>>>()?;
    im.emit(&n.name, Op::BatchNorm { epsilon: a.float_or("epsilon", 1e-5)?, momentum: a.float_or("momentum", 0.9)? }, ins, y)?;
    Ok(())
}

/// ±FLT_MAX (what exporters write for "no bound") means unbounded.
fn bound(n: &FlatNode, v: f64, unbounded: f32) -> Result<f32> {
    if v.is_nan() {
        return Err(err(n, "a bound is NaN"));
    }
    Ok(if v.abs() >= f32::MAX as f64 { unbounded.copysign(v as f32) } else { v as f32 })
}

fn clip(im: &mut Importer, n: &FlatNode, a: &Attrs, y: &str) -> Result<()> {
    let (lo, hi) = if n.opset < 11 {
        a.allow(&["min", "max"])?;
        (a.float("min")?.map(f64::from), a.float("max")?.map(f64::from))
    } else {
        a.allow(&[])?;
        (const_scalar(im, n, 1, "min")?, const_scalar(im, n, 2, "max")?)
    };
    let min = lo.map_or(Ok(f32::NEG_INFINITY), |v| bound(n, v, f32::INFINITY))?;
    let max = hi.map_or(Ok(f32::INFINITY), |v| bound(n, v, f32::INFINITY))?;
    let x = im.tensor(n, need(n, 0, "input")?)?;
    im.emit(&n.name, Op::Clip { min, max }, vec![x], y)?;
    Ok(())
}

/// Softmax before opset 13 flattens the input to 2-D at `axis` (default 1) and normalizes the
/// rows. Where that differs from a one-axis softmax it is lowered to Reshape → Softmax(-1) →
/// Reshape.
fn softmax(im: &mut Importer, n: &FlatNode, a: &Attrs, y: &str) -> Result<()> {
    a.allow(&["axis"])?;
    let xn = need(n, 0, "input")?;
    let x = im.tensor(n, xn)?;
    if n.opset >= 13 {
        im.emit(&n.name, Op::Softmax { axis: a.int_or("axis", -1)? }, vec![x], y)?;
        return Ok(());
    }
    let shape = im.g.shape(x).to_vec();
    let axis = a.int_or("axis", 1)?;
    let r = shape.len() as i64;
    let ax = if axis < 0 { axis + r } else { axis };
    if ax < 0 || ax >= r.max(1) {
        return Err(err(n, format!("axis {axis} is out of range for input {}", fmt(&shape))));
    }
    let ax = ax as usize;
    if shape[ax + 1..].iter().product::<usize>() == 1 {
        // The flattened row is exactly the axis: a plain one-axis softmax.
        im.emit(&n.name, Op::Softmax { axis: ax as i64 }, vec![x], y)?;
        return Ok(());
    }
    let outer: usize = shape[..ax].iter().product();
    let inner: usize = shape[ax..].iter().product();
    let flat = im.fresh(&format!("{y}/flat"));
    let soft = im.fresh(&format!("{y}/softmax"));
    let f = im.emit(&format!("{}/flatten", n.name), Op::Reshape { shape: vec![outer as i64, inner as i64], allowzero: false }, vec![x], &flat)?;
    let s = im.emit(&n.name, Op::Softmax { axis: -1 }, vec![f], &soft)?;
    im.emit(&format!("{}/unflatten", n.name), Op::Reshape { shape: shape.iter().map(|&d| d as i64).collect(), allowzero: false }, vec![s], y)?;
    Ok(())
}

fn dropout(im: &mut Importer, n: &FlatNode, a: &Attrs, y: &str) -> Result<()> {
    first_output_only(im, n, "mask")?;
    let ratio = if n.opset < 12 {
        // is_test (opset 6) only says whether the training graph drops: inference never does.
        a.allow(&["ratio", "is_test"])?;
        a.float_or("ratio", 0.5)? as f64
    } else {
        a.allow(&["seed"])?;
        if const_scalar(im, n, 2, "training_mode")?.is_some_and(|t| t != 0.0) {
            return Err(err(n, "training_mode is true, so it drops values at inference; mobilenetc imports the inference form (export in eval mode)"));
        }
        const_scalar(im, n, 1, "ratio")?.unwrap_or(0.5)
    };
    let x = im.tensor(n, need(n, 0, "data")?)?;
    im.emit(&n.name, Op::Dropout { ratio: ratio as f32 }, vec![x], y)?;
    Ok(())
}

fn pad(im: &mut Importer, n: &FlatNode, a: &Attrs, y: &str) -> Result<()> {
    let xn = need(n, 0, "data")?;
    let rank = im.shape_of(n, xn)?.len();
    let (pads, value, axes) = if n.opset < 11 {
        a.allow(&["mode", "pads", "value"])?;
        (a.ints("pads")?.ok_or_else(|| err(n, "is missing its required attribute 'pads'"))?, a.float_or("value", 0.0)?, None)
    } else {
        a.allow(&["mode"])?;
        let pads = const_ints(im, n, 1, "pads")?.ok_or_else(|| err(n, "is missing its pads input"))?;
        let value = const_scalar(im, n, 2, "constant_value")?.unwrap_or(0.0) as f32;
        let axes = if n.opset >= 18 { const_ints(im, n, 3, "axes")? } else { None };
        (pads, value, axes)
    };
    let mode = a.string("mode")?.unwrap_or_else(|| "constant".into());
    if mode != "constant" {
        return Err(err(n, format!("mode '{mode}' is not supported; only constant padding is (pad with zeros or re-export without {mode} padding)")));
    }
    let pads = match axes {
        None => pads,
        Some(axes) => {
            if pads.len() != 2 * axes.len() {
                return Err(err(n, format!("has {} pads for {} axes; it needs two per axis", pads.len(), axes.len())));
            }
            let mut full = vec![0; 2 * rank];
            for (i, &ax) in axes.iter().enumerate() {
                let k = if ax < 0 { ax + rank as i64 } else { ax };
                if k < 0 || k >= rank as i64 {
                    return Err(err(n, format!("axis {ax} is out of range for rank {rank}")));
                }
                full[k as usize] = pads[i];
                full[k as usize + rank] = pads[i + axes.len()];
            }
            full
        }
    };
    let x = im.tensor(n, xn)?;
    im.emit(&n.name, Op::Pad { pads, value }, vec![x], y)?;
    Ok(())
}
