//! Hostile and broken inputs: each gives a clear error, never a panic or a giant allocation.

mod import_util;

use import_util::*;
use mobilenetc::onnx::import::{decode_model, import_bytes, import_file, ImportOptions};
use mobilenetc::Error;
use mobilenetc_runtime::onnx::*;
use rand::{Rng, SeedableRng};

/// A small valid model: conv → BN → Clip → GAP → Flatten → Gemm → Softmax.
fn valid() -> Model {
    Model::new(13)
        .input("x", &[1, 3, 8, 8])
        .output("y")
        .init(tf32("w", &[4, 3, 3, 3], &weights(108, 1)))
        .init(tf32("s", &[4], &[1.0; 4]))
        .init(tf32("b", &[4], &[0.0; 4]))
        .init(tf32("m", &[4], &[0.0; 4]))
        .init(tf32("v", &[4], &[1.0; 4]))
        .init(tf32("lo", &[], &[0.0]))
        .init(tf32("hi", &[], &[6.0]))
        .init(tf32("fc", &[5, 4], &weights(20, 2)))
        .init(tf32("fcb", &[5], &weights(5, 3)))
        .node(node("Conv", &["x", "w"], &["c"], vec![aints("pads", &[1, 1, 1, 1])]))
        .node(node("BatchNormalization", &["c", "s", "b", "m", "v"], &["bn"], vec![]))
        .node(node("Clip", &["bn", "lo", "hi"], &["r"], vec![]))
        .node(node("GlobalAveragePool", &["r"], &["gap"], vec![]))
        .node(node("Flatten", &["gap"], &["f"], vec![]))
        .node(node("Gemm", &["f", "fc", "fcb"], &["logits"], vec![ai("transB", 1)]))
        .node(node("Softmax", &["logits"], &["y"], vec![]))
}

#[test]
fn the_valid_model_imports() {
    let g = valid().import().unwrap();
    assert_eq!(out_shape(&g, "y"), [1, 5]);
    assert_eq!(g.dag.node_count(), 7);
}

#[test]
fn every_truncation_is_an_error_without_panic() {
    let bytes = valid().bytes();
    let mut decode_errors = 0;
    for len in 0..bytes.len() {
        match import_bytes(&bytes[..len], &ImportOptions::default()) {
            Ok(_) => panic!("truncated to {len} of {} bytes, the model still imported", bytes.len()),
            Err(Error::Decode(_)) => decode_errors += 1,
            Err(_) => {}
        }
    }
    // Most cuts land inside a length-delimited field: a decode error.
    assert!(decode_errors > bytes.len() / 2, "{decode_errors} of {}", bytes.len());
    let e = import_bytes(&bytes[..bytes.len() / 2], &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("not a valid ONNX model") && e.contains("truncated"), "{e}");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for _ in 0..3000 {
        let len = rng.random_range(0..600);
        let buf: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        assert!(import_bytes(&buf, &ImportOptions::default()).is_err());
    }
}

#[test]
fn mutated_models_never_panic() {
    // Flipped bytes inside a valid model reach deeper code than random bytes do.
    let bytes = valid().bytes();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let opts = ImportOptions { max_bytes: 1 << 24, ..Default::default() };
    for _ in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..b.len());
            b[i] = rng.random();
        }
        let _ = import_bytes(&b, &opts);
    }
}

#[test]
fn wrong_wire_types_are_decode_errors() {
    // Field 7 (graph, a message) written as a varint.
    let e = import_bytes(&[0x38, 0x01], &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Decode(_)), "{e}");
    // Field 1 (ir_version, a varint) written as length-delimited.
    let e = decode_model(&[0x0a, 0x02, 0x01, 0x02]).unwrap_err();
    assert!(e.to_string().contains("not a valid ONNX model"), "{e}");
    // A varint that never ends.
    assert!(matches!(decode_model(&[0x08, 0xff, 0xff, 0xff]), Err(Error::Decode(_))));
    // Valid protobuf without a graph.
    let e = import_bytes(&[0x08, 0x07], &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("no graph"), "{e}");
    assert!(import_bytes(&[], &ImportOptions::default()).unwrap_err().to_string().contains("empty"));
}

#[test]
fn deep_nesting_is_refused_by_the_decoder() {
    // A graph in an attribute in a node in a graph ... 200 levels deep.
    let mut g = GraphProto::default();
    for _ in 0..200 {
        let attr = AttributeProto { name: Some("body".into()), g: Some(g), r#type: Some(5), ..Default::default() };
        g = GraphProto { node: vec![NodeProto { op_type: Some("If".into()), attribute: vec![attr], ..Default::default() }], ..Default::default() };
    }
    let bytes = prost::Message::encode_to_vec(&ModelProto { graph: Some(g), ..Default::default() });
    assert!(matches!(decode_model(&bytes), Err(Error::Decode(_))));
}

#[test]
fn a_node_reading_a_tensor_nobody_produces() {
    let mut m = valid();
    m.nodes[3].input[0] = "ghost".into();
    let e = m.import().unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Graph(_)) && text.contains("'ghost'") && text.contains("gap_node") && text.contains("GlobalAveragePool"), "{text}");
}

#[test]
fn a_cycle_is_refused() {
    let mut m = valid();
    m.nodes[0].input[0] = "r".into(); // conv reads the clip's output
    let e = m.import().unwrap_err();
    assert!(matches!(e, Error::Graph(_)) && e.to_string().contains("cycle"), "{e}");
    // A node reading its own output.
    let m = Model::new(13).input("x", &[1]).output("y").node(node("Add", &["x", "y"], &["y"], vec![]));
    assert!(m.import().unwrap_err().to_string().contains("cycle"));
}

#[test]
fn duplicate_names_are_refused() {
    let mut m = valid();
    m.nodes[2].output[0] = "bn".into();
    let e = m.import().unwrap_err().to_string();
    assert!(e.contains("'bn'") && e.contains("two nodes"), "{e}");
    let mut m = valid();
    m.nodes[0].output[0] = "w".into();
    assert!(m.import().unwrap_err().to_string().contains("initializer"));
    let m = valid().init(tf32("w", &[1], &[0.0]));
    assert!(m.import().unwrap_err().to_string().contains("two initializers are named 'w'"));
    let m = valid().output("ghost_out");
    assert!(m.import().unwrap_err().to_string().contains("'ghost_out'"));
}

#[test]
fn a_shape_of_2_pow_40_elements_is_a_limit_error() {
    // As a declared input shape.
    let m = Model::new(13).input("x", &[1 << 20, 1 << 20]).output("y").node(node("Relu", &["x"], &["y"], vec![]));
    assert!(matches!(m.import(), Err(Error::Limit(_))));
    // As an initializer without data.
    let m = valid().init(TensorProto { name: Some("big".into()), dims: vec![1 << 20, 1 << 20], data_type: Some(1), ..Default::default() });
    let e = m.import().unwrap_err();
    assert!(matches!(e, Error::Limit(_)) && e.to_string().contains("'big'"), "{e}");
    // Dims whose product overflows.
    let m = valid().init(TensorProto { name: Some("big".into()), dims: vec![1 << 40, 1 << 40, 1 << 40], data_type: Some(1), ..Default::default() });
    assert!(matches!(m.import(), Err(Error::Limit(_))));
    // Computed by ConstantOfShape, then by broadcasting.
    let m = Model::new(13)
        .input("x", &[1, 4])
        .output("y")
        .init(ti64("shp", &[2], &[1 << 20, 1 << 20]))
        .node(node("ConstantOfShape", &["shp"], &["z"], vec![]))
        .node(node("Add", &["x", "z"], &["y"], vec![]));
    assert!(matches!(m.import(), Err(Error::Limit(_))));
    let m = Model::new(13).input("a", &[1 << 20, 1]).input("b", &[1 << 20]).output("y").node(node("Mul", &["a", "b"], &["y"], vec![]));
    let e = m.import().unwrap_err();
    assert!(matches!(e, Error::Limit(_)) && e.to_string().contains("y_node"), "{e}");
    // The byte limit applies to weights as a whole.
    let opts = ImportOptions { max_bytes: 400, ..Default::default() };
    assert!(matches!(import_bytes(&valid().bytes(), &opts), Err(Error::Limit(_))));
}

#[test]
fn raw_data_length_mismatch() {
    let mut m = valid();
    m.inits[0].raw_data.as_mut().unwrap().truncate(100);
    let e = m.import().unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Decode(_)) && text.contains("'w'") && text.contains("100 bytes") && text.contains("432"), "{text}");
}

#[test]
fn import_file_names_the_file_and_reads_external_data() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.onnx");
    let e = import_file(&missing, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("missing.onnx"), "{e}");
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, &valid().bytes()[..50]).unwrap();
    let e = import_file(&bad, &ImportOptions::default()).unwrap_err();
    assert!(e.to_string().starts_with(&bad.display().to_string()), "{e}");
    assert!(matches!(e.innermost(), Error::Decode(_)));

    // The conv weight stored in an external file next to the model.
    let w = weights(108, 1);
    std::fs::write(dir.path().join("weights.bin"), w.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let mut m = valid();
    m.inits[0].raw_data = None;
    m.inits[0].data_location = Some(1);
    m.inits[0].external_data = vec![StringStringEntryProto { key: Some("location".into()), value: Some("weights.bin".into()) }];
    let path = dir.path().join("ext.onnx");
    std::fs::write(&path, m.bytes()).unwrap();
    let g = import_file(&path, &ImportOptions::default()).unwrap();
    let conv = g.find_node("c_node").unwrap();
    assert_eq!(g.constant(g.node(conv).inputs[1]).unwrap().data, w);
    // From bytes, the file cannot be found: a clear error.
    let e = import_bytes(&m.bytes(), &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("'w'") && e.contains("weights.bin") && e.contains("from its file"), "{e}");
}
