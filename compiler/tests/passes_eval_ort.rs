//! The reference evaluator against onnxruntime, op by op (the oracle needs an oracle too):
//! each case is one IR op on random data, exported as a tiny ONNX graph (fused forms as the
//! ops they stand for) and run by onnxruntime through the project's Python venv
//! (MOBILENETC_PYTHON, else <repo>/.venv/bin/python). Tolerance: 1e-5 of each output's scale.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use mobilenetc::eval::{evaluate, max_rel_diff};
use mobilenetc::graph::{Activation, AutoPad, ConvAttrs, GemmAttrs, Graph, Op, PoolAttrs, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const OPSET: i64 = 19;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("MOBILENETC_PYTHON") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(p.exists(), "no Python with onnxruntime: set MOBILENETC_PYTHON or create {}", p.display());
    p
}

fn act_node(a: Activation, input: &str, output: &str) -> Option<Value> {
    match a {
        Activation::None => None,
        Activation::Relu => Some(json!({"op_type": "Relu", "inputs": [input], "outputs": [output]})),
        Activation::Clip { min, max } => Some(json!({"op_type": "Clip", "inputs": [input], "outputs": [output], "operands": [finite(min), finite(max)]})),
    }
}

/// A Clip bound as an operand; an infinite bound is the absent input.
fn finite(v: f32) -> Value {
    if v.is_finite() {
        json!({"f32": v})
    } else {
        Value::Null
    }
}

fn auto_pad(a: AutoPad) -> &'static str {
    match a {
        AutoPad::NotSet => "NOTSET",
        AutoPad::SameUpper => "SAME_UPPER",
        AutoPad::SameLower => "SAME_LOWER",
        AutoPad::Valid => "VALID",
    }
}

fn with_operands(mut node: Value, operands: Value) -> Value {
    node["operands"] = operands;
    node
}

/// The ONNX nodes standing for one IR op reading `ins` and writing "y".
fn onnx_nodes(op: &Op, ins: &[String]) -> Vec<Value> {
    let node = |t: &str, attrs: Value| json!({"op_type": t, "inputs": ins, "outputs": ["y"], "attrs": attrs});
    let with_act = |mut first: Value, a: Activation| match act_node(a, "pre", "y") {
        Some(act) => {
            first["outputs"] = json!(["pre"]);
            vec![first, act]
        }
        None => vec![first],
    };
    match op {
        Op::Conv(a) => {
            let mut attrs = json!({"kernel_shape": a.kernel, "strides": a.strides, "dilations": a.dilations, "group": a.group});
            if a.auto_pad == AutoPad::NotSet {
                attrs["pads"] = json!(a.pads);
            } else {
                attrs["auto_pad"] = json!(auto_pad(a.auto_pad));
            }
            with_act(node("Conv", attrs), a.activation)
        }
        Op::Gemm(a) => with_act(node("Gemm", json!({"alpha": a.alpha, "beta": a.beta, "transA": a.trans_a as i64, "transB": a.trans_b as i64})), a.activation),
        Op::BatchNorm { epsilon, momentum } => vec![node("BatchNormalization", json!({"epsilon": epsilon, "momentum": momentum}))],
        Op::Clip { min, max } => vec![with_operands(node("Clip", json!({})), json!([finite(*min), finite(*max)]))],
        Op::AveragePool(p) => vec![node("AveragePool", json!({"kernel_shape": p.kernel, "strides": p.strides, "pads": p.pads, "ceil_mode": p.ceil_mode as i64, "count_include_pad": p.count_include_pad as i64}))],
        Op::MaxPool(p) => vec![node("MaxPool", json!({"kernel_shape": p.kernel, "strides": p.strides, "pads": p.pads, "dilations": p.dilations, "ceil_mode": p.ceil_mode as i64}))],
        Op::Flatten { axis } => vec![node("Flatten", json!({"axis": axis}))],
        Op::Reshape { shape, allowzero } => vec![with_operands(node("Reshape", json!({"allowzero": *allowzero as i64})), json!([{"i64": shape}]))],
        Op::Softmax { axis } => vec![node("Softmax", json!({"axis": axis}))],
        Op::Transpose { perm } if perm.is_empty() => vec![node("Transpose", json!({}))],
        Op::Transpose { perm } => vec![node("Transpose", json!({"perm": perm}))],
        Op::Pad { pads, value } => vec![with_operands(node("Pad", json!({"mode": "constant"})), json!([{"i64": pads}, {"f32": value}]))],
        Op::Concat { axis } => vec![node("Concat", json!({"axis": axis}))],
        Op::Head { softmax } => {
            let mut v = vec![
                json!({"op_type": "GlobalAveragePool", "inputs": [ins[0]], "outputs": ["pooled"]}),
                json!({"op_type": "Flatten", "inputs": ["pooled"], "outputs": ["flat"], "attrs": {"axis": 1}}),
                json!({"op_type": "Gemm", "inputs": ["flat", ins[1], ins[2]], "outputs": [if *softmax { "logits" } else { "y" }], "attrs": {"transB": 1}}),
            ];
            if *softmax {
                v.push(json!({"op_type": "Softmax", "inputs": ["logits"], "outputs": ["y"], "attrs": {"axis": -1}}));
            }
            v
        }
        other => vec![node(other.name(), json!({}))],
    }
}

/// One case: the op, its input shapes and the value range of each input.
struct Case {
    op: Op,
    shapes: Vec<Vec<usize>>,
    ranges: Vec<(f32, f32)>,
}

fn case(op: Op, shapes: &[&[usize]]) -> Case {
    Case { op, shapes: shapes.iter().map(|s| s.to_vec()).collect(), ranges: vec![(-2.0, 2.0); shapes.len()] }
}

fn conv(k: [usize; 2], s: usize, pads: [usize; 4], d: usize, group: usize, activation: Activation) -> Op {
    Op::Conv(ConvAttrs { kernel: k, strides: [s, s], pads, dilations: [d, d], group, auto_pad: AutoPad::NotSet, activation })
}

fn pool(k: usize, s: usize, p: usize, ceil_mode: bool, count_include_pad: bool) -> PoolAttrs {
    PoolAttrs { kernel: [k, k], strides: [s, s], pads: [p; 4], dilations: [1, 1], auto_pad: AutoPad::NotSet, ceil_mode, count_include_pad }
}

fn cases() -> Vec<Case> {
    let mut bn = case(Op::BatchNorm { epsilon: 1e-3, momentum: 0.9 }, &[&[2, 3, 4, 4], &[3], &[3], &[3], &[3]]);
    bn.ranges[4] = (0.5, 2.0);
    let same = |a: AutoPad, k: usize, s: usize| Op::Conv(ConvAttrs { kernel: [k, k], strides: [s, s], pads: [0; 4], dilations: [1, 1], group: 1, auto_pad: a, activation: Activation::None });
    vec![
        case(conv([3, 3], 2, [1; 4], 1, 1, Activation::None), &[&[2, 3, 9, 8], &[5, 3, 3, 3], &[5]]),
        case(conv([3, 3], 1, [1; 4], 1, 4, Activation::RELU6), &[&[1, 4, 7, 7], &[4, 1, 3, 3]]),
        case(conv([3, 3], 1, [1, 0, 2, 1], 2, 2, Activation::Relu), &[&[1, 4, 9, 9], &[6, 2, 3, 3], &[6]]),
        case(conv([1, 3], 2, [0, 1, 0, 1], 1, 1, Activation::Clip { min: -0.5, max: f32::INFINITY }), &[&[1, 3, 5, 6], &[2, 3, 1, 3]]),
        case(same(AutoPad::SameUpper, 3, 2), &[&[1, 2, 8, 7], &[3, 2, 3, 3]]),
        case(same(AutoPad::SameLower, 2, 1), &[&[1, 2, 5, 5], &[3, 2, 2, 2]]),
        case(same(AutoPad::Valid, 3, 2), &[&[1, 2, 8, 7], &[3, 2, 3, 3]]),
        bn,
        case(Op::Relu, &[&[2, 3, 4]]),
        case(Op::Clip { min: -0.5, max: 0.7 }, &[&[2, 3, 4]]),
        case(Op::Clip { min: f32::NEG_INFINITY, max: 1.0 }, &[&[2, 3, 4]]),
        case(Op::GlobalAveragePool, &[&[2, 3, 5, 4]]),
        case(Op::AveragePool(pool(3, 2, 1, false, false)), &[&[1, 2, 8, 8]]),
        case(Op::AveragePool(pool(3, 2, 1, true, true)), &[&[1, 2, 8, 8]]),
        case(Op::AveragePool(pool(2, 2, 0, true, false)), &[&[1, 2, 7, 7]]),
        case(Op::MaxPool(pool(3, 2, 1, true, false)), &[&[1, 2, 8, 8]]),
        case(Op::MaxPool(PoolAttrs { dilations: [2, 2], ..pool(2, 1, 0, false, false) }), &[&[1, 2, 6, 6]]),
        case(Op::Flatten { axis: 2 }, &[&[2, 3, 4, 5]]),
        case(Op::Reshape { shape: vec![0, -1, 5], allowzero: false }, &[&[2, 3, 4, 5]]),
        case(Op::Gemm(GemmAttrs { alpha: 0.5, beta: 2.0, trans_a: true, trans_b: true, activation: Activation::None }), &[&[4, 3], &[5, 4], &[5]]),
        case(Op::Gemm(GemmAttrs { activation: Activation::RELU6, ..GemmAttrs::default() }), &[&[3, 4], &[4, 5], &[3, 5]]),
        case(Op::Gemm(GemmAttrs::default()), &[&[3, 4], &[4, 5], &[3, 1]]),
        case(Op::MatMul, &[&[2, 3, 4], &[4, 5]]),
        case(Op::MatMul, &[&[3, 1, 2, 4], &[2, 4, 3]]),
        case(Op::MatMul, &[&[4], &[2, 4, 3]]),
        case(Op::Add, &[&[2, 3, 4], &[3, 1]]),
        case(Op::Sub, &[&[2, 1, 4], &[3, 1]]),
        case(Op::Mul, &[&[4], &[2, 3, 4]]),
        case(Op::Softmax { axis: 1 }, &[&[2, 3, 4]]),
        case(Op::Softmax { axis: -1 }, &[&[2, 10]]),
        case(Op::Transpose { perm: vec![0, 2, 3, 1] }, &[&[2, 3, 4, 5]]),
        case(Op::Transpose { perm: vec![] }, &[&[2, 3, 4]]),
        case(Op::Pad { pads: vec![0, 0, 1, 2, 0, 0, 2, 1], value: 0.5 }, &[&[1, 2, 3, 3]]),
        case(Op::Pad { pads: vec![0, 1, -1, 0, 0, -1, 1, 0], value: 0.0 }, &[&[1, 2, 3, 3]]),
        case(Op::Concat { axis: 1 }, &[&[2, 1, 3], &[2, 4, 3], &[2, 2, 3]]),
        case(Op::Identity, &[&[3, 2]]),
        case(Op::Head { softmax: true }, &[&[2, 8, 3, 3], &[5, 8], &[5]]),
        case(Op::Head { softmax: false }, &[&[1, 8, 2, 2], &[5, 8], &[5]]),
    ]
}

/// Runs every spec in one Python process; the outputs of each.
fn run_ort(specs: &[Value]) -> Vec<Vec<Tensor>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/passes_eval_ort/run_onnx.py");
    let mut child = Command::new(python()).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start Python");
    child.stdin.take().unwrap().write_all(Value::from(specs.to_vec()).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "onnxruntime failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let v: Vec<Vec<Value>> = serde_json::from_slice(&out.stdout).unwrap();
    v.iter()
        .map(|outs| {
            outs.iter()
                .map(|t| {
                    let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).unwrap();
                    let data: Vec<f32> = serde_json::from_value(t["data"].clone()).unwrap();
                    Tensor::new(shape, data)
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_op_agrees_with_onnxruntime() {
    let mut rng = StdRng::seed_from_u64(42);
    let cases = cases();
    let mut specs = Vec::new();
    let mut ours = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let mut g = Graph::new("case");
        g.meta.opset_import = vec![(String::new(), OPSET)];
        let mut inputs = Vec::new();
        let mut json_inputs = Vec::new();
        for (k, (shape, (lo, hi))) in c.shapes.iter().zip(&c.ranges).enumerate() {
            let name = format!("in{k}");
            let t = Tensor::new(shape.clone(), (0..shape.iter().product()).map(|_| rng.random_range(*lo..*hi)).collect());
            g.add_input(name.clone(), shape.clone());
            json_inputs.push(json!({"name": name, "shape": shape, "data": t.data}));
            inputs.push((name, t));
        }
        let ids = g.inputs.clone();
        let (_, y) = g.add_op("y", c.op.clone(), ids, vec![]);
        g.outputs.push(y);
        let names: Vec<String> = inputs.iter().map(|(n, _)| n.clone()).collect();
        let spec = json!({"opset": OPSET, "nodes": onnx_nodes(&c.op, &names), "inputs": json_inputs, "outputs": ["y"]});
        ours.push(evaluate(&g, &inputs.iter().map(|(n, t)| (n.as_str(), t.clone())).collect::<Vec<_>>()).unwrap_or_else(|e| panic!("case {i} {:?}: {e}", c.op)).remove(0));
        specs.push(spec);
    }
    let theirs = run_ort(&specs);
    assert_eq!(theirs.len(), cases.len());
    let mut failures = Vec::new();
    for (i, ((c, ours), theirs)) in cases.iter().zip(&ours).zip(&theirs).enumerate() {
        let theirs = &theirs[0];
        let d = max_rel_diff(ours, theirs);
        eprintln!("case {i:2} {:<40} {:?} → {:?}: max rel diff {d:.2e}", format!("{:?}", c.op).chars().take(40).collect::<String>(), c.shapes, ours.shape);
        if d > 1e-5 {
            failures.push(format!("case {i} {:?}: max rel diff {d:e} (ours {:?}, onnxruntime {:?})", c.op, ours.shape, theirs.shape));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
