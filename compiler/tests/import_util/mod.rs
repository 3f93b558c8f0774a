//! Builders for small ONNX models in pure Rust (prost messages), shared by the import tests.
#![allow(dead_code)]

use mobilenetc::graph::{Graph, Op};
use mobilenetc::onnx::import::{import_bytes, ImportOptions};
use mobilenetc::Result;
use mobilenetc_runtime::onnx::attribute_proto::AttributeType as A;
use mobilenetc_runtime::onnx::tensor_proto::DataType;
use mobilenetc_runtime::onnx::tensor_shape_proto::{dimension::Value as Dim, Dimension};
use mobilenetc_runtime::onnx::type_proto::{Tensor as TT, Value as TV};
use mobilenetc_runtime::onnx::*;
use prost::Message;

/// A dim of a declared shape: a number or a symbolic name.
pub enum D {
    V(i64),
    P(&'static str),
    Unknown,
}

pub fn vi(name: &str, dims: &[i64]) -> ValueInfoProto {
    vi_sym(name, &dims.iter().map(|&d| D::V(d)).collect::<Vec<_>>())
}

pub fn vi_sym(name: &str, dims: &[D]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: None,
            value: match d {
                D::V(v) => Some(Dim::DimValue(*v)),
                D::P(p) => Some(Dim::DimParam(p.to_string())),
                D::Unknown => None,
            },
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { denotation: None, value: Some(TV::TensorType(TT { elem_type: Some(DataType::Float as i32), shape: Some(TensorShapeProto { dim }) })) }),
        ..Default::default()
    }
}

pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(outputs.first().map_or(op.to_string(), |o| format!("{o}_node"))),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn attr(name: &str, t: A) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(t as i32), ..Default::default() }
}
pub fn ai(name: &str, v: i64) -> AttributeProto {
    AttributeProto { i: Some(v), ..attr(name, A::Int) }
}
pub fn af(name: &str, v: f32) -> AttributeProto {
    AttributeProto { f: Some(v), ..attr(name, A::Float) }
}
pub fn aints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { ints: v.to_vec(), ..attr(name, A::Ints) }
}
pub fn afloats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto { floats: v.to_vec(), ..attr(name, A::Floats) }
}
pub fn astr(name: &str, v: &str) -> AttributeProto {
    AttributeProto { s: Some(v.as_bytes().to_vec()), ..attr(name, A::String) }
}
pub fn aten(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto { t: Some(t), ..attr(name, A::Tensor) }
}
/// An attribute that refers to the enclosing function's attribute `r`.
pub fn aref(name: &str, r: &str, t: A) -> AttributeProto {
    AttributeProto { ref_attr_name: Some(r.into()), ..attr(name, t) }
}

/// A float32 tensor stored as raw little-endian bytes.
pub fn tf32(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// A float32 tensor stored in `float_data`.
pub fn tf32_typed(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto { name: Some(name.into()), dims: dims.to_vec(), data_type: Some(DataType::Float as i32), float_data: data.to_vec(), ..Default::default() }
}

/// An int64 tensor stored in `int64_data`.
pub fn ti64(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    TensorProto { name: Some(name.into()), dims: dims.to_vec(), data_type: Some(DataType::Int64 as i32), int64_data: data.to_vec(), ..Default::default() }
}

/// Deterministic pseudo-random weights.
pub fn weights(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

pub struct Model {
    pub opset: i64,
    pub inputs: Vec<ValueInfoProto>,
    pub outputs: Vec<ValueInfoProto>,
    pub inits: Vec<TensorProto>,
    pub nodes: Vec<NodeProto>,
    pub functions: Vec<FunctionProto>,
}

impl Model {
    pub fn new(opset: i64) -> Model {
        Model { opset, inputs: vec![], outputs: vec![], inits: vec![], nodes: vec![], functions: vec![] }
    }
    pub fn input(mut self, name: &str, dims: &[i64]) -> Model {
        self.inputs.push(vi(name, dims));
        self
    }
    /// An output with no declared shape (the importer computes it).
    pub fn output(mut self, name: &str) -> Model {
        self.outputs.push(ValueInfoProto { name: Some(name.into()), ..vi(name, &[]) });
        self.outputs.last_mut().unwrap().r#type = None;
        self
    }
    pub fn init(mut self, t: TensorProto) -> Model {
        self.inits.push(t);
        self
    }
    pub fn node(mut self, n: NodeProto) -> Model {
        self.nodes.push(n);
        self
    }
    pub fn proto(&self) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            producer_name: Some("import-tests".into()),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(self.opset) }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                node: self.nodes.clone(),
                initializer: self.inits.clone(),
                input: self.inputs.clone(),
                output: self.outputs.clone(),
                ..Default::default()
            }),
            functions: self.functions.clone(),
            ..Default::default()
        }
    }
    pub fn bytes(&self) -> Vec<u8> {
        self.proto().encode_to_vec()
    }
    pub fn import(&self) -> Result<Graph> {
        import_bytes(&self.bytes(), &ImportOptions::default())
    }
}

/// The ops of the graph in topological order.
pub fn ops(g: &Graph) -> Vec<Op> {
    g.nodes_in_order().into_iter().map(|(_, n)| n.op.clone()).collect()
}

pub fn op_names(g: &Graph) -> Vec<&'static str> {
    g.nodes_in_order().into_iter().map(|(_, n)| n.op.name()).collect()
}

/// The shape of the graph output named `name`.
pub fn out_shape(g: &Graph, name: &str) -> Vec<usize> {
    let t = *g.outputs.iter().find(|&&t| g.tensor(t).name == name).unwrap_or_else(|| panic!("no output named {name}"));
    g.shape(t).to_vec()
}

pub fn err(r: Result<Graph>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}
