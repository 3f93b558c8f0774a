//! Writes the stand-in network as an ONNX model (opset 13) with prost: NCHW input `input`
//! `[1, 3, r, r]`, Conv (+bias) → Clip(0, 6) per layer, GlobalAveragePool, Flatten, Gemm
//! (transB), Softmax → `output` `[1, classes]`.

use mobilenetc_runtime::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto, AttributeProto, GraphProto, ModelProto,
    NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use prost::Message;

use crate::standin::StandIn;

fn tensor(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Ints as i32), ints: v.iter().map(|&x| x as i64).collect(), ..Default::default() }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(AttributeType::Int as i32), i: Some(v), ..Default::default() }
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[usize]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|&d| tensor_shape_proto::Dimension { value: Some(tensor_shape_proto::dimension::Value::DimValue(d as i64)), ..Default::default() })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The serialized ONNX model of `m`.
pub fn to_onnx(m: &StandIn) -> Vec<u8> {
    let r = m.spec.resolution;
    let mut nodes = Vec::new();
    let mut inits = vec![tensor("clip_min", &[], &[0.0]), tensor("clip_max", &[], &[6.0])];
    let mut x = "input".to_string();
    for l in &m.layers {
        let cv = &l.conv;
        let (w, b, y, z) = (format!("{}_w", l.name), format!("{}_b", l.name), format!("{}_conv", l.name), format!("{}_relu6", l.name));
        inits.push(tensor(&w, &[cv.c_out, cv.c_in / cv.groups, cv.kh, cv.kw], &l.oihw));
        inits.push(tensor(&b, &[cv.c_out], &l.bias));
        let attrs = vec![
            ints("kernel_shape", &[cv.kh, cv.kw]),
            ints("strides", &[cv.sh, cv.sw]),
            ints("pads", &[cv.pad_top, cv.pad_left, cv.pad_bottom, cv.pad_right]),
            ints("dilations", &[cv.dh, cv.dw]),
            int("group", cv.groups as i64),
        ];
        nodes.push(node("Conv", &l.name, &[&x, &w, &b], &y, attrs));
        nodes.push(node("Clip", &format!("{}_clip", l.name), &[&y, "clip_min", "clip_max"], &z, vec![]));
        x = z;
    }
    let h = &m.head;
    inits.push(tensor("fc_w", &[h.classes, h.c], &m.fc_w));
    inits.push(tensor("fc_b", &[h.classes], &m.fc_b));
    nodes.push(node("GlobalAveragePool", "pool", &[&x], "pooled", vec![]));
    nodes.push(node("Flatten", "flatten", &["pooled"], "flat", vec![int("axis", 1)]));
    nodes.push(node("Gemm", "fc", &["flat", "fc_w", "fc_b"], "logits", vec![int("transB", 1)]));
    nodes.push(node("Softmax", "softmax", &["logits"], "output", vec![int("axis", 1)]));
    let graph = GraphProto {
        name: Some(format!("mobilenet_v1_{}", m.spec.name())),
        node: nodes,
        initializer: inits,
        input: vec![value_info("input", &[1, 3, r, r])],
        output: vec![value_info("output", &[1, h.classes])],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        producer_name: Some("mobilenetc-bench".into()),
        graph: Some(graph),
        ..Default::default()
    };
    model.encode_to_vec()
}
