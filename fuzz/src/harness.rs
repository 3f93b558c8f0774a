//! What the fuzz targets run, shared with the replay test (`tests/fuzz_replay.rs` includes this
//! file by path, so a crasher replays through exactly the code that found it, on stable Rust).
//!
//! * [`import_bytes`]: arbitrary bytes → importer → (if it imports) the whole pipeline.
//! * [`mutated`]: the fuzz input is read as a *program of mutations* applied to a small valid
//!   MobileNet-like model ([`seed_model`]): attributes, dims, initializer shapes, op types,
//!   node wiring. Structure survives, so the fuzzer reaches shape inference, the passes, the
//!   planner, lowering and the executor instead of stopping at the protobuf decoder.
//!
//! The pipeline: import (shape inference included) → `lower::compile` (passes, planner,
//! lowering) → `Executor` under the same byte limit → one run on zeros when the model is cheap.
//! Every stage must return `Ok` or a clear `Err`: a panic, an abort on allocation or a hang
//! is a finding.

use mobilenetc::exec::Executor;
use mobilenetc::onnx::import::{import_model, ImportOptions};
use mobilenetc_runtime::onnx::attribute_proto::AttributeType as A;
use mobilenetc_runtime::onnx::tensor_proto::DataType;
use mobilenetc_runtime::onnx::tensor_shape_proto::{dimension::Value as Dim, Dimension};
use mobilenetc_runtime::onnx::type_proto::{Tensor as TT, Value as TV};
use mobilenetc_runtime::onnx::*;
use prost::Message;

/// The byte limit under fuzzing: small, so refusals (not allocations) are what gets exercised.
pub const MAX_BYTES: u64 = 64 << 20;

/// Models with at most this many multiply-accumulates are also executed.
pub const MAX_RUN_MULT_ADDS: u64 = 4_000_000;

/// How far an input got; the replay test prints a histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reached {
    Decode,
    Import,
    Compile,
    Limit,
    Ran,
    Refused,
}

fn options() -> ImportOptions {
    ImportOptions { max_bytes: MAX_BYTES, ..ImportOptions::default() }
}

/// Arbitrary bytes through the whole pipeline.
pub fn import_bytes(data: &[u8]) -> Reached {
    match mobilenetc::onnx::import::decode_model(data) {
        Ok(m) => pipeline(&m),
        Err(_) => Reached::Decode,
    }
}

/// The seed model mutated by the program `data`, through the whole pipeline.
pub fn mutated(data: &[u8]) -> Reached {
    let mut m = seed_model();
    mutate(&mut m, data);
    pipeline(&m)
}

/// Import → compile → execute, each stage allowed to refuse.
pub fn pipeline(m: &ModelProto) -> Reached {
    let opts = options();
    let Ok(g) = import_model(m, &opts) else { return Reached::Import };
    let Ok(schedule) = mobilenetc::lower::compile(&g) else { return Reached::Compile };
    let cheap = schedule.mult_adds <= MAX_RUN_MULT_ADDS;
    let Ok(mut exec) = Executor::with_limit(schedule, opts.max_bytes) else { return Reached::Limit };
    if !cheap {
        return Reached::Refused;
    }
    let inputs: Vec<(String, Vec<f32>)> =
        exec.schedule().inputs.iter().map(|b| (b.name.clone(), (0..b.range.len).map(|i| ((i % 7) as f32 - 3.0) * 0.25).collect())).collect();
    let feeds: Vec<(&str, &[f32])> = inputs.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    match exec.run(&feeds) {
        Ok(_) => Reached::Ran,
        Err(_) => Reached::Refused,
    }
}

// ---- the seed model ----

fn vi(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims.iter().map(|&d| Dimension { denotation: None, value: Some(Dim::DimValue(d)) }).collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { denotation: None, value: Some(TV::TensorType(TT { elem_type: Some(DataType::Float as i32), shape: Some(TensorShapeProto { dim }) })) }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(format!("{output}_node")),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

fn ai(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(A::Int as i32), i: Some(v), ..Default::default() }
}

fn aints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(A::Ints as i32), ints: v.to_vec(), ..Default::default() }
}

fn tf32(name: &str, dims: &[i64]) -> TensorProto {
    let n: i64 = dims.iter().product();
    let data: Vec<f32> = (0..n).map(|i| ((i * 37 % 19) as f32 - 9.0) / 16.0).collect();
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

fn ti64(name: &str, data: &[i64]) -> TensorProto {
    TensorProto { name: Some(name.into()), dims: vec![data.len() as i64], data_type: Some(DataType::Int64 as i32), int64_data: data.to_vec(), ..Default::default() }
}

/// A small MobileNet-like model with every claimed op: stem conv → BN → Clip, depthwise and
/// pointwise convs, a residual Add, Mul, Pad, pools, Concat, Transpose pair, GAP, Flatten,
/// Reshape, Gemm, MatMul, Softmax.
pub fn seed_model() -> ModelProto {
    let inits = vec![
        tf32("w0", &[8, 3, 3, 3]),
        tf32("bn_s", &[8]),
        tf32("bn_b", &[8]),
        tf32("bn_m", &[8]),
        tf32("bn_v", &[8]),
        tf32("lo", &[]),
        tf32("hi", &[]),
        tf32("dw", &[8, 1, 3, 3]),
        tf32("pw", &[8, 8, 1, 1]),
        tf32("pwb", &[8]),
        tf32("scale", &[1, 8, 1, 1]),
        ti64("pads", &[0, 0, 1, 1, 0, 0, 1, 1]),
        tf32("fc", &[10, 16]),
        tf32("fcb", &[10]),
        ti64("shape", &[1, -1]),
        tf32("mm", &[10, 4]),
    ];
    let nodes = vec![
        node("Conv", &["x", "w0"], "c0", vec![aints("pads", &[1, 1, 1, 1]), aints("strides", &[2, 2]), aints("kernel_shape", &[3, 3])]),
        node("BatchNormalization", &["c0", "bn_s", "bn_b", "bn_m", "bn_v"], "bn0", vec![]),
        node("Clip", &["bn0", "lo", "hi"], "r0", vec![]),
        node("Conv", &["r0", "dw"], "d1", vec![ai("group", 8), aints("pads", &[1, 1, 1, 1])]),
        node("Relu", &["d1"], "r1", vec![]),
        node("Conv", &["r1", "pw", "pwb"], "p1", vec![]),
        node("Add", &["p1", "r0"], "res", vec![]),
        node("Mul", &["res", "scale"], "sc", vec![]),
        node("Pad", &["sc", "pads"], "pd", vec![]),
        node("MaxPool", &["pd"], "mp", vec![aints("kernel_shape", &[3, 3]), aints("strides", &[2, 2])]),
        node("AveragePool", &["pd"], "ap", vec![aints("kernel_shape", &[3, 3]), aints("strides", &[2, 2])]),
        node("Concat", &["mp", "ap"], "cat", vec![ai("axis", 1)]),
        node("Transpose", &["cat"], "t0", vec![aints("perm", &[0, 2, 3, 1])]),
        node("Transpose", &["t0"], "t1", vec![aints("perm", &[0, 3, 1, 2])]),
        node("GlobalAveragePool", &["t1"], "gap", vec![]),
        node("Flatten", &["gap"], "flat", vec![]),
        node("Reshape", &["flat", "shape"], "rs", vec![]),
        node("Dropout", &["rs"], "dr", vec![]),
        node("Identity", &["dr"], "id", vec![]),
        node("Gemm", &["id", "fc", "fcb"], "logits", vec![ai("transB", 1)]),
        node("Softmax", &["logits"], "y", vec![ai("axis", 1)]),
        node("MatMul", &["logits", "mm"], "z", vec![]),
    ];
    let mut out_y = vi("y", &[]);
    out_y.r#type = None;
    let mut out_z = vi("z", &[]);
    out_z.r#type = None;
    ModelProto {
        ir_version: Some(8),
        producer_name: Some("mobilenetc-fuzz".into()),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        graph: Some(GraphProto {
            name: Some("seed".into()),
            node: nodes,
            initializer: inits,
            input: vec![vi("x", &[1, 3, 16, 16])],
            output: vec![out_y, out_z],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The seed's bytes (a corpus file of the `import_bytes` target).
pub fn seed_bytes() -> Vec<u8> {
    seed_model().encode_to_vec()
}

// ---- mutations ----

/// Op types a mutation may swap in: the claimed ops, a few unclaimed ones, and nonsense.
const OPS: &[&str] = &[
    "Conv", "BatchNormalization", "Relu", "Clip", "GlobalAveragePool", "AveragePool", "MaxPool", "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Sub", "Mul", "Softmax",
    "Identity", "Dropout", "Transpose", "Pad", "Concat", "Sigmoid", "Shape", "Gather", "Unsqueeze", "Constant", "", "Loop",
];

/// Attribute names a mutation may set.
const ATTRS: &[&str] = &[
    "pads", "strides", "dilations", "kernel_shape", "group", "axis", "perm", "transA", "transB", "alpha", "beta", "epsilon", "auto_pad", "ceil_mode", "count_include_pad",
    "mode", "allowzero", "min", "max", "storage_order", "value", "training_mode",
];

/// Interesting integers: edge values of dims, indices and attributes.
const INTS: &[i64] = &[0, 1, 2, 3, -1, -2, 4, 7, 8, 16, 255, 1 << 20, 1 << 31, -(1 << 31), i64::MAX, i64::MIN, 1 << 40, 65537];

/// Reads the fuzz input as a stream of small numbers.
struct Program<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Program<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn pick(&mut self, n: usize) -> Option<usize> {
        if n == 0 {
            return None;
        }
        Some(self.byte()? as usize % n)
    }
    fn int(&mut self) -> Option<i64> {
        let b = self.byte()?;
        Some(if b < 128 { INTS[b as usize % INTS.len()] } else { (b as i64) - 192 })
    }
    fn ints(&mut self) -> Option<Vec<i64>> {
        let n = self.byte()? % 9;
        (0..n).map(|_| self.int()).collect()
    }
}

/// Applies the program `data` to `m`: each instruction is an opcode byte and its operands.
/// Runs out of bytes → stops; never panics whatever the bytes.
pub fn mutate(m: &mut ModelProto, data: &[u8]) {
    let mut p = Program { data, pos: 0 };
    let _ = (|| -> Option<()> {
        loop {
            let g = m.graph.as_mut()?;
            match p.byte()? % 17 {
                // Set an int attribute or an ints attribute of a node.
                0 | 1 => {
                    let n = p.pick(g.node.len())?;
                    let name = ATTRS[p.pick(ATTRS.len())?];
                    let ints = p.ints()?;
                    let attr = if ints.len() == 1 { ai(name, ints[0]) } else { aints(name, &ints) };
                    let node = &mut g.node[n];
                    node.attribute.retain(|a| a.name.as_deref() != Some(name));
                    node.attribute.push(attr);
                }
                // Drop an attribute.
                2 => {
                    let n = p.pick(g.node.len())?;
                    let node = &mut g.node[n];
                    let a = p.pick(node.attribute.len())?;
                    node.attribute.remove(a);
                }
                // Change the op type.
                3 => {
                    let n = p.pick(g.node.len())?;
                    g.node[n].op_type = Some(OPS[p.pick(OPS.len())?].into());
                }
                // Rewire an input to another value (or a dangling / empty name).
                4 => {
                    let n = p.pick(g.node.len())?;
                    let i = p.pick(g.node[n].input.len())?;
                    let k = p.pick(g.node.len() + 3)?;
                    g.node[n].input[i] = match k.checked_sub(3) {
                        Some(k) => g.node[k].output[0].clone(),
                        None => ["", "x", "nowhere"][k].into(),
                    };
                }
                // Change a dim of the graph input.
                5 => {
                    let d = p.pick(4)?;
                    let v = p.int()?;
                    let Some(TV::TensorType(t)) = g.input.first_mut()?.r#type.as_mut()?.value.as_mut() else { return None };
                    let dims = &mut t.shape.as_mut()?.dim;
                    if d < dims.len() {
                        dims[d].value = Some(Dim::DimValue(v));
                    } else {
                        dims.push(Dimension { denotation: None, value: Some(Dim::DimValue(v)) });
                    }
                }
                // Change an initializer's dims (its data no longer matches, or it is reshaped).
                6 => {
                    let i = p.pick(g.initializer.len())?;
                    g.initializer[i].dims = p.ints()?;
                }
                // Change an int64 initializer's values (pads, shapes).
                7 => {
                    let i = p.pick(g.initializer.len())?;
                    let t = &mut g.initializer[i];
                    if t.int64_data.is_empty() {
                        t.data_type = Some([1, 7, 6, 10, 11, 0, 99][p.pick(7)?]);
                    } else {
                        let j = p.pick(t.int64_data.len())?;
                        t.int64_data[j] = p.int()?;
                    }
                }
                // Remove a node (its consumers dangle).
                8 => {
                    let n = p.pick(g.node.len())?;
                    g.node.remove(n);
                }
                // Duplicate a node (a duplicate output name).
                9 => {
                    let n = p.pick(g.node.len())?;
                    let copy = g.node[n].clone();
                    g.node.push(copy);
                }
                // Feed a node its own consumer's output: a cycle.
                10 => {
                    let a = p.pick(g.node.len())?;
                    let b = p.pick(g.node.len())?;
                    let out = g.node[b].output[0].clone();
                    g.node[a].input.push(out);
                }
                // Swap two nodes (order is not topological any more).
                11 => {
                    let a = p.pick(g.node.len())?;
                    let b = p.pick(g.node.len())?;
                    g.node.swap(a, b);
                }
                // Change the opset.
                12 => {
                    m.opset_import[0].version = Some([1, 6, 7, 9, 11, 12, 13, 14, 18, 21, 22, 25, 26, 1000, -1][p.pick(15)?]);
                }
                // Set a string attribute (auto_pad, mode) to a valid or a bogus value.
                14 => {
                    let n = p.pick(g.node.len())?;
                    let name = ["auto_pad", "mode", "pads", "group"][p.pick(4)?];
                    let value = ["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "constant", "reflect", "", "\u{ff}"][p.pick(8)?];
                    let node = &mut g.node[n];
                    node.attribute.retain(|a| a.name.as_deref() != Some(name));
                    node.attribute.push(AttributeProto { name: Some(name.into()), r#type: Some(A::String as i32), s: Some(value.as_bytes().to_vec()), ..Default::default() });
                }
                // Set a float attribute to an edge value.
                15 => {
                    let n = p.pick(g.node.len())?;
                    let name = ["alpha", "beta", "epsilon", "min", "max", "ratio", "value", "axis"][p.pick(8)?];
                    let f = [0.0, -1.0, 1e-5, 6.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, f32::MIN_POSITIVE][p.pick(9)?];
                    let node = &mut g.node[n];
                    node.attribute.retain(|a| a.name.as_deref() != Some(name));
                    node.attribute.push(AttributeProto { name: Some(name.into()), r#type: Some(A::Float as i32), f: Some(f), ..Default::default() });
                }
                // Change a float initializer's value to an edge value (NaN epsilon, inf bounds).
                16 => {
                    let i = p.pick(g.initializer.len())?;
                    let f = [0.0f32, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30][p.pick(6)?];
                    let t = &mut g.initializer[i];
                    if let Some(raw) = t.raw_data.as_mut() {
                        let j = p.pick(raw.len() / 4)?;
                        raw[4 * j..4 * j + 4].copy_from_slice(&f.to_le_bytes());
                    }
                }
                // Add an output naming an inner value (or nothing real).
                _ => {
                    let k = p.pick(g.node.len() + 1)?;
                    let name = if k < g.node.len() { g.node[k].output[0].clone() } else { "ghost".into() };
                    let mut o = vi(&name, &[]);
                    o.r#type = None;
                    g.output.push(o);
                }
            }
        }
    })();
}
