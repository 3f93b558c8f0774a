//! Limits: a model whose activation arena needs more than the byte limit is refused before the
//! arena is allocated (every single tensor may fit: the arena is checked as a whole), the limit
//! can be raised, and structural errors (duplicate names, dangling inputs, cycles) are clear.

use mobilenetc::exec::Executor;
use mobilenetc::limits::DEFAULT_MAX_BYTES;
use mobilenetc::onnx::import::{import_model, ImportOptions};
use mobilenetc::Error;
use mobilenetc_runtime::onnx::tensor_proto::DataType;
use mobilenetc_runtime::onnx::tensor_shape_proto::{dimension::Value as Dim, Dimension};
use mobilenetc_runtime::onnx::type_proto::{Tensor as TT, Value as TV};
use mobilenetc_runtime::onnx::*;

fn vi(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims.iter().map(|&d| Dimension { denotation: None, value: Some(Dim::DimValue(d)) }).collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { denotation: None, value: Some(TV::TensorType(TT { elem_type: Some(DataType::Float as i32), shape: Some(TensorShapeProto { dim }) })) }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(format!("{output}_node")),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

/// `y = (x + x) * x` on an input of `dims`: three tensors of the input's size.
fn model(dims: &[i64], inputs: Vec<ValueInfoProto>, nodes: Vec<NodeProto>) -> ModelProto {
    let mut y = vi("y", &[]);
    y.r#type = None;
    let input = if inputs.is_empty() { vec![vi("x", dims)] } else { inputs };
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }],
        graph: Some(GraphProto { name: Some("limits".into()), node: nodes, input, output: vec![y], ..Default::default() }),
        ..Default::default()
    }
}

fn square_double(dims: &[i64]) -> ModelProto {
    model(dims, vec![], vec![node("Add", &["x", "x"], "a"), node("Mul", &["a", "x"], "y")])
}

#[test]
fn an_arena_over_the_limit_is_refused_and_the_limit_can_be_raised() {
    // Each tensor is 4 MiB, under a 6 MiB limit; the arena holds at least two of them.
    let m = square_double(&[1, 16, 256, 256]);
    let limit = 6 << 20;
    let g = import_model(&m, &ImportOptions { max_bytes: limit, ..Default::default() }).expect("every tensor fits the limit");
    let e = Executor::from_graph_with_limit(&g, limit).err().expect("the arena does not fit");
    let text = e.to_string();
    assert!(matches!(e, Error::Limit(_)) && text.contains("arena") && text.contains(&limit.to_string()) && text.contains("--max-bytes"), "{text}");
    // Raised: it runs, and computes (x + x) * x.
    let mut exec = Executor::from_graph_with_limit(&g, 64 << 20).unwrap();
    assert!(exec.schedule().arena_bytes() as u64 > limit);
    let x: Vec<f32> = (0..16 * 256 * 256).map(|i| (i % 13) as f32 - 6.0).collect();
    let out = exec.run(&[("x", &x)]).unwrap();
    assert_eq!(out[0].1, [1, 16, 256, 256]);
    assert!(out[0].2.iter().zip(&x).all(|(&y, &x)| y == 2.0 * x * x));
}

#[test]
fn the_default_limit_refuses_an_8_gib_arena_before_allocating_it() {
    // 4e9 bytes per tensor (under the 4 GiB default), so only the arena as a whole is too big;
    // had the executor allocated it, this test would take seconds and gigabytes.
    let m = square_double(&[1, 1000, 1000, 1000]);
    let g = import_model(&m, &ImportOptions::default()).expect("each tensor fits the default limit");
    let start = std::time::Instant::now();
    let e = Executor::from_graph(&g).err().expect("an arena of 8 GB or more is refused");
    assert!(matches!(e, Error::Limit(_)) && e.to_string().contains(&DEFAULT_MAX_BYTES.to_string()), "{e}");
    assert!(start.elapsed().as_secs() < 30);
}

#[test]
fn a_tensor_over_the_limit_is_refused_at_import() {
    let m = square_double(&[1, 16, 256, 256]);
    let e = import_model(&m, &ImportOptions { max_bytes: 1 << 20, ..Default::default() }).unwrap_err();
    assert!(matches!(e, Error::Limit(_)) && e.to_string().contains("'x'"), "{e}");
    let e = import_model(&square_double(&[1 << 40, 1 << 40]), &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e}");
}

#[test]
fn duplicate_names_dangling_inputs_and_cycles_are_clear_errors() {
    let dims = [1, 4];
    // Two graph inputs with one name.
    let m = model(&dims, vec![vi("x", &dims), vi("x", &dims)], vec![node("Relu", &["x"], "y")]);
    let e = import_model(&m, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("two graph inputs are named 'x'"), "{e}");
    // Two nodes writing one name.
    let m = model(&dims, vec![], vec![node("Relu", &["x"], "y"), node("Relu", &["x"], "y")]);
    let e = import_model(&m, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("'y'") && e.contains("two nodes"), "{e}");
    // A node reading a value nobody produces.
    let m = model(&dims, vec![], vec![node("Add", &["x", "ghost"], "y")]);
    let e = import_model(&m, &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Graph(_)) && e.to_string().contains("'ghost'") && e.to_string().contains("y_node"), "{e}");
    // A cycle of two nodes.
    let m = model(&dims, vec![], vec![node("Add", &["x", "b"], "a"), node("Relu", &["a"], "b"), node("Relu", &["b"], "y")]);
    let e = import_model(&m, &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Graph(_)) && e.to_string().contains("cycle"), "{e}");
    // An output nobody produces.
    let mut m = model(&dims, vec![], vec![node("Relu", &["x"], "z")]);
    m.graph.as_mut().unwrap().output[0].name = Some("nothing".into());
    let e = import_model(&m, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("'nothing'"), "{e}");
}
