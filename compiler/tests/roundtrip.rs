//! Round trip: new → export → import → export gives the same graph and bit-identical weights,
//! and the second export is byte-for-byte the first.

use std::collections::BTreeMap;

use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig, Variant};
use mobilenetc::graph::{Activation, AutoPad, ConvAttrs, Graph, Op, Tensor};
use mobilenetc::onnx::export::{export_file, to_bytes, to_model_proto, ExportOptions};
use mobilenetc::onnx::import::{import_bytes, import_file, ImportOptions};

/// A graph's nodes in order (name, op, input names, output names).
fn nodes(g: &Graph) -> Vec<(String, Op, Vec<String>, Vec<String>)> {
    let names = |ts: &[usize]| {
        ts.iter()
            .map(|&t| g.tensor(t).name.clone())
            .collect::<Vec<_>>()
    };
    g.nodes_in_order()
        .into_iter()
        .map(|(_, n)| {
            (
                n.name.clone(),
                n.op.clone(),
                names(&n.inputs),
                names(&n.outputs),
            )
        })
        .collect()
}

/// Constants by name, with their shapes and the bit patterns of their values.
fn weights(g: &Graph) -> BTreeMap<String, (Vec<usize>, Vec<u32>)> {
    g.constants
        .iter()
        .map(|(&t, c)| {
            (
                g.tensor(t).name.clone(),
                (
                    c.shape.clone(),
                    c.data.iter().map(|v| v.to_bits()).collect(),
                ),
            )
        })
        .collect()
}

/// Constants that some node reads (the importer may keep folded ones unread).
fn used_weights(g: &Graph) -> BTreeMap<String, (Vec<usize>, Vec<u32>)> {
    let read: std::collections::BTreeSet<String> = g
        .dag
        .node_weights()
        .flat_map(|n| n.inputs.iter().map(|&t| g.tensor(t).name.clone()))
        .collect();
    weights(g)
        .into_iter()
        .filter(|(k, _)| read.contains(k))
        .collect()
}

fn assert_round_trip(g: &Graph, opts: &ExportOptions) {
    let first = to_bytes(g, opts).unwrap();
    // A symbolic batch is fixed again by the importer: to the graph's own batch here.
    let batch = g.shape(g.inputs[0])[0];
    let back = import_bytes(
        &first,
        &ImportOptions {
            batch,
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(nodes(&back), nodes(g), "the imported graph differs");
    assert_eq!(
        used_weights(&back),
        weights(g),
        "the imported weights differ"
    );
    assert_eq!(back.meta.producer_name, g.meta.producer_name);
    assert_eq!(back.meta.metadata_props, g.meta.metadata_props);
    assert_eq!(back.meta.doc_string, g.meta.doc_string);
    let io = |g: &Graph| {
        g.inputs
            .iter()
            .chain(&g.outputs)
            .map(|&t| (g.tensor(t).name.clone(), g.shape(t).to_vec()))
            .collect::<Vec<_>>()
    };
    assert_eq!(io(&back), io(g));
    let second = to_bytes(&back, opts).unwrap();
    if first != second {
        // Say where they differ before failing.
        let (a, b) = (
            to_model_proto(g, opts).unwrap(),
            to_model_proto(&back, opts).unwrap(),
        );
        assert_eq!(a, b);
        panic!("the encodings differ although the messages are equal");
    }
}

#[test]
fn mobilenet_224_round_trips_bit_identically() {
    assert_round_trip(
        &mobilenet_v1(&MobileNetConfig::default()).unwrap(),
        &ExportOptions::default(),
    );
}

#[test]
fn variants_and_small_models_round_trip() {
    let configs = [
        MobileNetConfig {
            alpha: 0.25,
            resolution: 32,
            classes: 10,
            channels: 1,
            seed: 7,
            ..Default::default()
        },
        MobileNetConfig {
            alpha: 0.5,
            resolution: 64,
            variant: Variant::FullConv,
            classes: 3,
            ..Default::default()
        },
        MobileNetConfig {
            alpha: 0.75,
            resolution: 96,
            variant: Variant::Shallow,
            batch: 2,
            ..Default::default()
        },
    ];
    for cfg in configs {
        let g = mobilenet_v1(&cfg).unwrap();
        assert_round_trip(&g, &ExportOptions::default());
        assert_round_trip(
            &g,
            &ExportOptions {
                symbolic_batch: None,
            },
        );
    }
}

#[test]
fn fused_graph_exports_as_standard_onnx_that_round_trips() {
    // A fused conv epilogue and head export as plain ops; importing and exporting that again
    // writes the same bytes.
    let mut g = Graph::new("fused");
    let x = g.add_input("x", vec![1, 2, 4, 4]);
    let w = g.add_constant(
        "w",
        Tensor::new(vec![3, 2, 1, 1], vec![0.5, -1.0, 2.0, 0.25, -0.5, 1.5]),
    );
    let attrs = ConvAttrs {
        kernel: [1, 1],
        strides: [1, 1],
        pads: [0; 4],
        dilations: [1, 1],
        group: 1,
        auto_pad: AutoPad::NotSet,
        activation: Activation::RELU6,
    };
    let (_, y) = g.add_op("c", Op::Conv(attrs), vec![x, w], vec![1, 3, 4, 4]);
    let fw = g.add_constant(
        "fw",
        Tensor::new(vec![5, 3], (0..15).map(|i| i as f32 * 0.1).collect()),
    );
    let fb = g.add_constant("fb", Tensor::new(vec![5], vec![0.1, 0.2, 0.3, 0.4, 0.5]));
    let out = g.add_tensor("probs", vec![1, 5]);
    g.add_node(
        "head",
        Op::Head { softmax: true },
        vec![y, fw, fb],
        vec![out],
    );
    g.outputs.push(out);
    let first = to_bytes(&g, &ExportOptions::default()).unwrap();
    let back = import_bytes(&first, &ImportOptions::default()).unwrap();
    let ops: Vec<&str> = back
        .nodes_in_order()
        .iter()
        .map(|(_, n)| n.op.name())
        .collect();
    assert_eq!(
        ops,
        [
            "Conv",
            "Clip",
            "GlobalAveragePool",
            "Flatten",
            "Gemm",
            "Softmax"
        ]
    );
    assert_eq!(to_bytes(&back, &ExportOptions::default()).unwrap(), first);
}

#[test]
fn export_file_writes_what_import_file_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.onnx");
    let g = mobilenet_v1(&MobileNetConfig {
        alpha: 0.25,
        resolution: 32,
        classes: 10,
        ..Default::default()
    })
    .unwrap();
    std::fs::write(&path, b"an old file").unwrap();
    export_file(&g, &path, &ExportOptions::default()).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        to_bytes(&g, &ExportOptions::default()).unwrap()
    );
    let back = import_file(&path, &ImportOptions::default()).unwrap();
    assert_eq!(nodes(&back), nodes(&g));
    // No temporary file is left beside it.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["m.onnx"]);
    // A directory that does not exist is an error naming the path.
    let bad = dir.path().join("missing/m.onnx");
    let e = export_file(&g, &bad, &ExportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing/m.onnx"), "{e}");
}
