//! The importer on every opset form of the supported ops, on models built with prost.

mod import_util;

use import_util::*;
use mobilenetc::graph::{AutoPad, Op};
use mobilenetc::onnx::import::{import_bytes, ImportOptions};
use mobilenetc::Error;
use mobilenetc_runtime::onnx::attribute_proto::AttributeType as A;
use mobilenetc_runtime::onnx::*;

const FLT_MAX: f32 = f32::MAX;

fn clip_model(opset: i64, attrs: Vec<AttributeProto>, bounds: &[&str], inits: Vec<TensorProto>) -> Model {
    let mut ins = vec!["x"];
    ins.extend_from_slice(bounds);
    let mut m = Model::new(opset).input("x", &[1, 4]).output("y").node(node("Clip", &ins, &["y"], attrs));
    for t in inits {
        m = m.init(t);
    }
    m
}

#[test]
fn clip_attribute_bounds_before_opset_11() {
    for opset in [7, 10] {
        let g = clip_model(opset, vec![af("min", 0.0), af("max", 6.0)], &[], vec![]).import().unwrap();
        assert_eq!(ops(&g), [Op::Clip { min: 0.0, max: 6.0 }], "opset {opset}");
        // Defaults are unbounded.
        let g = clip_model(opset, vec![af("max", 6.0)], &[], vec![]).import().unwrap();
        assert_eq!(ops(&g), [Op::Clip { min: f32::NEG_INFINITY, max: 6.0 }]);
    }
    // The attribute form is not valid from opset 11 on.
    let e = err(clip_model(11, vec![af("min", 0.0)], &[], vec![]).import());
    assert!(e.contains("'min'") && e.contains("Clip"), "{e}");
}

#[test]
fn clip_input_bounds_from_opset_11_with_flt_max_as_unbounded() {
    for opset in [11, 12, 13, 21] {
        let inits = vec![tf32("lo", &[], &[0.0]), tf32("hi", &[], &[6.0])];
        let g = clip_model(opset, vec![], &["lo", "hi"], inits).import().unwrap();
        assert_eq!(ops(&g), [Op::Clip { min: 0.0, max: 6.0 }], "opset {opset}");
        assert!(g.constants.is_empty(), "bounds are folded into the op");
    }
    let inits = vec![tf32("lo", &[], &[0.0]), tf32("hi", &[], &[FLT_MAX])];
    let g = clip_model(13, vec![], &["lo", "hi"], inits).import().unwrap();
    assert_eq!(ops(&g), [Op::Clip { min: 0.0, max: f32::INFINITY }]);
    let inits = vec![tf32("lo", &[1], &[-FLT_MAX]), tf32("hi", &[1], &[6.0])];
    let g = clip_model(13, vec![], &["lo", "hi"], inits).import().unwrap();
    assert_eq!(ops(&g), [Op::Clip { min: f32::NEG_INFINITY, max: 6.0 }]);
    // An omitted optional min ("").
    let g = clip_model(13, vec![], &["", "hi"], vec![tf32("hi", &[], &[6.0])]).import().unwrap();
    assert_eq!(ops(&g), [Op::Clip { min: f32::NEG_INFINITY, max: 6.0 }]);
    // Bounds from a Constant node.
    let m = Model::new(13)
        .input("x", &[1, 4])
        .output("y")
        .node(node("Constant", &[], &["six"], vec![af("value_float", 6.0)]))
        .node(node("Constant", &[], &["zero"], vec![aten("value", tf32("z", &[], &[0.0]))]))
        .node(node("Clip", &["x", "zero", "six"], &["y"], vec![]));
    assert_eq!(ops(&m.import().unwrap()), [Op::Clip { min: 0.0, max: 6.0 }]);
}

#[test]
fn clip_with_a_runtime_bound_is_refused_clearly() {
    let m = Model::new(13).input("x", &[1, 4]).input("hi", &[]).output("y").node(node("Clip", &["x", "", "hi"], &["y"], vec![]));
    let e = err(m.import());
    assert!(e.contains("y_node") && e.contains("'hi'") && e.contains("computed at run time"), "{e}");
}

#[test]
fn relu6_as_six_minus_relu_six_minus_x() {
    let m = Model::new(13)
        .input("x", &[1, 3, 2, 2])
        .output("y")
        .init(tf32("six", &[], &[6.0]))
        .init(tf32("six1", &[1], &[6.0]))
        .node(node("Relu", &["x"], &["r0"], vec![]))
        .node(node("Sub", &["six", "r0"], &["a"], vec![]))
        .node(node("Relu", &["a"], &["b"], vec![]))
        .node(node("Sub", &["six1", "b"], &["y"], vec![]));
    let g = m.import().unwrap();
    assert_eq!(ops(&g), [Op::Clip { min: 0.0, max: 6.0 }]);
    assert_eq!(g.tensor(g.outputs[0]).name, "y");
    assert_eq!(out_shape(&g, "y"), [1, 3, 2, 2]);
    assert!(g.constants.is_empty());

    // Without the leading Relu: min(x, 6) for any x.
    let m = Model::new(13)
        .input("x", &[1, 3])
        .output("y")
        .init(tf32("six", &[], &[6.0]))
        .node(node("Sub", &["six", "x"], &["a"], vec![]))
        .node(node("Relu", &["a"], &["b"], vec![]))
        .node(node("Sub", &["six", "b"], &["y"], vec![]));
    assert_eq!(ops(&m.import().unwrap()), [Op::Clip { min: f32::NEG_INFINITY, max: 6.0 }]);

    // Different constants are not ReLU6: left as written.
    let m = Model::new(13)
        .input("x", &[1, 3])
        .output("y")
        .init(tf32("six", &[], &[6.0]))
        .init(tf32("five", &[], &[5.0]))
        .node(node("Sub", &["six", "x"], &["a"], vec![]))
        .node(node("Relu", &["a"], &["b"], vec![]))
        .node(node("Sub", &["five", "b"], &["y"], vec![]));
    assert_eq!(op_names(&m.import().unwrap()), ["Sub", "Relu", "Sub"]);
}

#[test]
fn softmax_before_13_flattens_to_2d() {
    // [2, 3, 4] with axis 1: rows of 12 — not a one-axis softmax, so lowered.
    let m = Model::new(11).input("x", &[2, 3, 4]).output("y").node(node("Softmax", &["x"], &["y"], vec![]));
    let g = m.import().unwrap();
    assert_eq!(
        ops(&g),
        [Op::Reshape { shape: vec![2, 12], allowzero: false }, Op::Softmax { axis: -1 }, Op::Reshape { shape: vec![2, 3, 4], allowzero: false }]
    );
    assert_eq!(out_shape(&g, "y"), [2, 3, 4]);
    // [N, C] (after Gemm) and [N, C, 1, 1]: the flattened row is the axis itself.
    let m = Model::new(7).input("x", &[2, 10]).output("y").node(node("Softmax", &["x"], &["y"], vec![]));
    assert_eq!(ops(&m.import().unwrap()), [Op::Softmax { axis: 1 }]);
    let m = Model::new(11).input("x", &[2, 10, 1, 1]).output("y").node(node("Softmax", &["x"], &["y"], vec![]));
    assert_eq!(ops(&m.import().unwrap()), [Op::Softmax { axis: 1 }]);
    let m = Model::new(12).input("x", &[2, 3, 4]).output("y").node(node("Softmax", &["x"], &["y"], vec![ai("axis", 0)]));
    assert_eq!(op_names(&m.import().unwrap()), ["Reshape", "Softmax", "Reshape"]);
    // From 13: one axis, default -1.
    let m = Model::new(13).input("x", &[2, 3, 4]).output("y").node(node("Softmax", &["x"], &["y"], vec![]));
    assert_eq!(ops(&m.import().unwrap()), [Op::Softmax { axis: -1 }]);
    let m = Model::new(13).input("x", &[2, 3, 4]).output("y").node(node("Softmax", &["x"], &["y"], vec![ai("axis", 1)]));
    assert_eq!(ops(&m.import().unwrap()), [Op::Softmax { axis: 1 }]);
}

/// x [1, 3, 4, 4] → Shape → Gather(0) → Unsqueeze(0) → Concat(·, [-1]) → Reshape.
fn shape_chain(opset: i64) -> Model {
    let unsq = if opset < 13 { node("Unsqueeze", &["n"], &["n1"], vec![aints("axes", &[0])]) } else { node("Unsqueeze", &["n", "ax0"], &["n1"], vec![]) };
    Model::new(opset)
        .input("x", &[1, 3, 4, 4])
        .output("y")
        .init(ti64("zero", &[], &[0]))
        .init(ti64("minus1", &[1], &[-1]))
        .init(ti64("ax0", &[1], &[0]))
        .node(node("Shape", &["x"], &["s"], vec![]))
        .node(node("Gather", &["s", "zero"], &["n"], vec![ai("axis", 0)]))
        .node(unsq)
        .node(node("Concat", &["n1", "minus1"], &["target"], vec![ai("axis", 0)]))
        .node(node("Reshape", &["x", "target"], &["y"], vec![]))
}

#[test]
fn shape_gather_unsqueeze_concat_reshape_folds() {
    for opset in [7, 11, 13, 14, 21] {
        let g = shape_chain(opset).import().unwrap();
        assert_eq!(ops(&g), [Op::Reshape { shape: vec![1, -1], allowzero: false }], "opset {opset}");
        assert_eq!(out_shape(&g, "y"), [1, 48]);
        assert!(g.constants.is_empty(), "the integer constants are gone");
    }
    // The batch from opts flows through the chain.
    let opts = ImportOptions { batch: 5, ..Default::default() };
    let mut m = shape_chain(13);
    m.inputs = vec![vi_sym("x", &[D::P("N"), D::V(3), D::V(4), D::V(4)])];
    let g = import_bytes(&m.bytes(), &opts).unwrap();
    assert_eq!(ops(&g), [Op::Reshape { shape: vec![5, -1], allowzero: false }]);
    assert_eq!(out_shape(&g, "y"), [5, 48]);
}

#[test]
fn more_folding_slice_cast_arith_constant_of_shape_squeeze() {
    // target = Concat(Slice(Shape(x), 0, 1), Cast(Div(Mul(Shape(x)[2], Shape(x)[3]) * 3, 1)))
    let m = Model::new(13)
        .input("x", &[2, 3, 4, 5])
        .output("y")
        .init(ti64("s0", &[1], &[0]))
        .init(ti64("e1", &[1], &[1]))
        .init(ti64("s2", &[1], &[2]))
        .init(ti64("e4", &[1], &[4]))
        .init(tf32("one", &[1], &[1.0]))
        .node(node("Shape", &["x"], &["s"], vec![]))
        .node(node("Slice", &["s", "s0", "e1"], &["n"], vec![]))
        .node(node("Slice", &["s", "s2", "e4"], &["hw"], vec![]))
        .node(node("Constant", &[], &["c3"], vec![aints("value_ints", &[3])]))
        .node(node("ReduceProd", &["hw"], &["p"], vec![]))
        .node(node("Mul", &["p", "c3"], &["q"], vec![]))
        .node(node("Cast", &["q"], &["qf"], vec![ai("to", 1)]))
        .node(node("Div", &["qf", "one"], &["qd"], vec![]))
        .node(node("Cast", &["qd"], &["qi"], vec![ai("to", 7)]))
        .node(node("Concat", &["n", "qi"], &["t"], vec![ai("axis", 0)]))
        .node(node("Reshape", &["x", "t"], &["y"], vec![]));
    // ReduceProd is not a fold op: it and only it is listed.
    match m.import() {
        Err(Error::Unsupported(list)) => {
            assert_eq!(list.len(), 1, "{list:?}");
            assert_eq!((list[0].op.as_str(), list[0].node.as_str(), list[0].opset), ("ReduceProd", "p_node", 13));
        }
        other => panic!("{other:?}"),
    }
    // The same with Mul of the two gathered dims instead.
    let mut m = m;
    m.nodes[4] = node("Gather", &["hw", "zero"], &["h"], vec![]);
    m.nodes.insert(5, node("Gather", &["hw", "one_i"], &["w"], vec![]));
    m.nodes.insert(6, node("Mul", &["h", "w"], &["p0"], vec![]));
    m.nodes.insert(7, node("Unsqueeze", &["p0", "s0"], &["p"], vec![]));
    m.inits.push(ti64("zero", &[], &[0]));
    m.inits.push(ti64("one_i", &[], &[1]));
    let g = m.import().unwrap();
    assert_eq!(ops(&g), [Op::Reshape { shape: vec![2, 60], allowzero: false }]);
    assert_eq!(out_shape(&g, "y"), [2, 60]);

    // ConstantOfShape + Squeeze/Unsqueeze on runtime data become a Reshape.
    let m = Model::new(13)
        .input("x", &[1, 3, 1, 1])
        .output("y")
        .output("z")
        .init(ti64("axes", &[2], &[2, 3]))
        .init(ti64("shp", &[1], &[3]))
        .node(node("Squeeze", &["x", "axes"], &["y"], vec![]))
        .node(node("ConstantOfShape", &["shp"], &["ones"], vec![aten("value", tf32("v", &[1], &[1.0]))]))
        .node(node("Add", &["y", "ones"], &["z"], vec![]));
    let g = m.import().unwrap();
    assert_eq!(ops(&g), [Op::Reshape { shape: vec![1, 3], allowzero: false }, Op::Add]);
    let add = g.find_node("z_node").unwrap();
    assert_eq!(g.constant(g.node(add).inputs[1]).unwrap().data, vec![1.0; 3]);
}

#[test]
fn reshape_allowzero_and_shape_input() {
    let m = Model::new(14)
        .input("x", &[2, 3, 4])
        .output("y")
        .init(ti64("t", &[2], &[0, -1]))
        .node(node("Reshape", &["x", "t"], &["y"], vec![ai("allowzero", 0)]));
    let g = m.import().unwrap();
    assert_eq!(out_shape(&g, "y"), [2, 12]);
    let m = Model::new(14)
        .input("x", &[2, 3, 4])
        .output("y")
        .init(ti64("t", &[2], &[0, -1]))
        .node(node("Reshape", &["x", "t"], &["y"], vec![ai("allowzero", 1)]));
    let e = err(m.import());
    assert!(e.contains("y_node") && e.contains("Reshape") && e.contains("allowzero"), "{e}");
    // A shape computed at run time.
    let m = Model::new(13).input("x", &[2, 3]).input("t", &[2]).output("y").node(node("Reshape", &["x", "t"], &["y"], vec![]));
    assert!(err(m.import()).contains("computed at run time"));
}

#[test]
fn pad_attribute_input_and_axes_forms() {
    let want = Op::Pad { pads: vec![0, 0, 1, 2, 0, 0, 1, 2], value: 0.0 };
    let m = Model::new(7).input("x", &[1, 2, 3, 3]).output("y").node(node("Pad", &["x"], &["y"], vec![aints("pads", &[0, 0, 1, 2, 0, 0, 1, 2]), astr("mode", "constant")]));
    let g = m.import().unwrap();
    assert_eq!(ops(&g), std::slice::from_ref(&want));
    assert_eq!(out_shape(&g, "y"), [1, 2, 5, 7]);
    for opset in [11, 13, 18, 21] {
        let m = Model::new(opset).input("x", &[1, 2, 3, 3]).output("y").init(ti64("p", &[8], &[0, 0, 1, 2, 0, 0, 1, 2])).node(node("Pad", &["x", "p"], &["y"], vec![]));
        assert_eq!(ops(&m.import().unwrap()), std::slice::from_ref(&want), "opset {opset}");
    }
    // Opset 18: only some axes, with a constant value.
    let m = Model::new(18)
        .input("x", &[1, 2, 3, 3])
        .output("y")
        .init(ti64("p", &[4], &[1, 2, 1, 2]))
        .init(tf32("v", &[], &[-1.5]))
        .init(ti64("ax", &[2], &[2, -1]))
        .node(node("Pad", &["x", "p", "v", "ax"], &["y"], vec![]));
    assert_eq!(ops(&m.import().unwrap()), [Op::Pad { pads: vec![0, 0, 1, 2, 0, 0, 1, 2], value: -1.5 }]);
    // Reflect and edge are refused, naming the node.
    for mode in ["reflect", "edge"] {
        let m = Model::new(11).input("x", &[1, 2, 3, 3]).output("y").init(ti64("p", &[8], &[0; 8])).node(node("Pad", &["x", "p"], &["y"], vec![astr("mode", mode)]));
        let e = err(m.import());
        assert!(e.contains("y_node") && e.contains(mode) && e.contains("only constant"), "{e}");
    }
}

#[test]
fn dropout_forms_and_its_mask() {
    let m = Model::new(10).input("x", &[1, 4]).output("y").node(node("Dropout", &["x"], &["y"], vec![af("ratio", 0.2)]));
    assert_eq!(ops(&m.import().unwrap()), [Op::Dropout { ratio: 0.2 }]);
    let m = Model::new(13).input("x", &[1, 4]).output("y").init(tf32("r", &[], &[0.3])).node(node("Dropout", &["x", "r"], &["y", "mask"], vec![]));
    assert_eq!(ops(&m.import().unwrap()), [Op::Dropout { ratio: 0.3 }]);
    // The mask read by someone: refused.
    let m = Model::new(13).input("x", &[1, 4]).output("y").output("mask").node(node("Dropout", &["x"], &["y", "mask"], vec![]));
    let e = err(m.import());
    assert!(e.contains("mask") && e.contains("y_node"), "{e}");
    // training_mode = true.
    let t = TensorProto { name: Some("t".into()), data_type: Some(9), raw_data: Some(vec![1]), ..Default::default() };
    let m = Model::new(13).input("x", &[1, 4]).output("y").init(t).node(node("Dropout", &["x", "", "t"], &["y"], vec![]));
    assert!(err(m.import()).contains("training_mode"));
}

fn bn_model(opset: i64, outputs: &[&str], attrs: Vec<AttributeProto>) -> Model {
    let mut m = Model::new(opset)
        .input("x", &[2, 3, 4, 4])
        .output("y")
        .init(tf32("s", &[3], &[1.0, 2.0, 3.0]))
        .init(tf32("b", &[3], &[0.0; 3]))
        .init(tf32_typed("m", &[3], &[0.5; 3]))
        .init(tf32("v", &[3], &[1.0; 3]))
        .node(node("BatchNormalization", &["x", "s", "b", "m", "v"], outputs, attrs));
    for o in &outputs[1..] {
        m = m.output(o);
    }
    m
}

#[test]
fn batch_norm_inference_form() {
    for opset in [7, 9, 14, 15] {
        let g = bn_model(opset, &["y"], vec![af("epsilon", 1e-3)]).import().unwrap();
        assert_eq!(ops(&g), [Op::BatchNorm { epsilon: 1e-3, momentum: 0.9 }]);
        assert_eq!(out_shape(&g, "y"), [2, 3, 4, 4]);
        assert_eq!(g.constants.len(), 4);
    }
    let e = err(bn_model(15, &["y", "rm", "rv"], vec![]).import());
    assert!(e.contains("'rm'") && e.contains("inference form"), "{e}");
    assert!(err(bn_model(15, &["y"], vec![ai("training_mode", 1)]).import()).contains("training_mode"));
    assert!(err(bn_model(7, &["y"], vec![ai("spatial", 0)]).import()).contains("spatial"));
}

#[test]
fn gemm_attributes_and_optional_c() {
    let m = Model::new(13)
        .input("x", &[2, 8])
        .output("y")
        .init(tf32("w", &[5, 8], &weights(40, 1)))
        .init(tf32("c", &[5], &weights(5, 2)))
        .node(node("Gemm", &["x", "w", "c"], &["y"], vec![af("alpha", 0.5), af("beta", 2.0), ai("transB", 1)]));
    let g = m.import().unwrap();
    let [Op::Gemm(a)] = &ops(&g)[..] else { panic!() };
    assert_eq!((a.alpha, a.beta, a.trans_a, a.trans_b), (0.5, 2.0, false, true));
    assert_eq!(out_shape(&g, "y"), [2, 5]);
    let m = Model::new(11).input("x", &[8, 2]).output("y").init(tf32("w", &[8, 5], &weights(40, 1))).node(node("Gemm", &["x", "w"], &["y"], vec![ai("transA", 1)]));
    let g = m.import().unwrap();
    assert_eq!(out_shape(&g, "y"), [2, 5]);
    assert_eq!(g.node(g.find_node("y_node").unwrap()).inputs.len(), 2);
    // Shapes that disagree: named.
    let m = Model::new(13).input("x", &[2, 8]).output("y").init(tf32("w", &[5, 8], &weights(40, 1))).node(node("Gemm", &["x", "w"], &["y"], vec![]));
    let e = err(m.import());
    assert!(e.contains("y_node") && e.contains("[2, 8]") && e.contains("[5, 8]") && e.contains("transB"), "{e}");
}

#[test]
fn conv_forms_weights_as_inputs_and_auto_pad() {
    let m = Model::new(11)
        .input("x", &[1, 4, 7, 7])
        .input("w", &[4, 1, 3, 3])
        .output("y")
        .node(node("Conv", &["x", "w"], &["y"], vec![ai("group", 4), aints("strides", &[2, 2]), astr("auto_pad", "SAME_UPPER")]));
    let g = m.import().unwrap();
    let [Op::Conv(a)] = &ops(&g)[..] else { panic!() };
    assert_eq!((a.group, a.kernel, a.pads, a.auto_pad), (4, [3, 3], [1, 1, 1, 1], AutoPad::NotSet));
    assert_eq!(out_shape(&g, "y"), [1, 4, 4, 4]);
    assert_eq!(g.inputs.len(), 2, "the weight is a runtime input");
    // 1-D and 3-D convolutions are refused, naming the node.
    let m = Model::new(11).input("x", &[1, 4, 7]).input("w", &[4, 4, 3]).output("y").node(node("Conv", &["x", "w"], &["y"], vec![]));
    let e = err(m.import());
    assert!(e.contains("y_node") && e.contains("only 2-D"), "{e}");
    let m = Model::new(11).input("x", &[1, 4, 7, 7]).input("w", &[8, 4, 3, 3]).output("y").node(node("Conv", &["x", "w"], &["y"], vec![ai("group", 2)]));
    let e = err(m.import());
    assert!(e.contains("[1, 4, 7, 7]") && e.contains("[8, 4, 3, 3]") && e.contains("group 2"), "{e}");
}

#[test]
fn pools_and_maxpool_indices() {
    let m = Model::new(12)
        .input("x", &[1, 2, 5, 5])
        .output("y")
        .output("z")
        .node(node("MaxPool", &["x"], &["y"], vec![aints("kernel_shape", &[3, 3]), aints("strides", &[2, 2]), ai("ceil_mode", 1)]))
        .node(node("AveragePool", &["x"], &["z"], vec![aints("kernel_shape", &[2, 2]), aints("pads", &[1, 1, 1, 1]), ai("count_include_pad", 1)]));
    let g = m.import().unwrap();
    assert_eq!(out_shape(&g, "y"), [1, 2, 2, 2]);
    assert_eq!(out_shape(&g, "z"), [1, 2, 6, 6]);
    let m = Model::new(12).input("x", &[1, 2, 5, 5]).output("y").output("i").node(node("MaxPool", &["x"], &["y", "i"], vec![aints("kernel_shape", &[3, 3])]));
    assert!(err(m.import()).contains("Indices"));
    // Unused Indices are fine.
    let m = Model::new(12).input("x", &[1, 2, 5, 5]).output("y").node(node("MaxPool", &["x"], &["y", "i"], vec![aints("kernel_shape", &[3, 3])]));
    assert_eq!(out_shape(&m.import().unwrap(), "y"), [1, 2, 3, 3]);
}

#[test]
fn symbolic_dims_take_opts_or_name_the_fix() {
    let mut m = Model::new(13).output("y").node(node("Relu", &["x"], &["y"], vec![]));
    m.inputs = vec![vi_sym("x", &[D::P("batch"), D::V(3), D::P("height"), D::P("width")])];
    let e = err(m.import());
    assert!(e.contains("'x'") && e.contains("--dim height="), "{e}");
    let mut opts = ImportOptions::default();
    opts.dims.insert("height".into(), 8);
    opts.dims.insert("width".into(), 6);
    opts.batch = 2;
    let g = import_bytes(&m.bytes(), &opts).unwrap();
    assert_eq!(out_shape(&g, "y"), [2, 3, 8, 6]);
    opts.dims.insert("batch".into(), 7);
    assert_eq!(out_shape(&import_bytes(&m.bytes(), &opts).unwrap(), "y"), [7, 3, 8, 6]);
    // An unnamed leading dim takes the batch; an unnamed inner dim can be set by position.
    m.inputs = vec![vi_sym("x", &[D::Unknown, D::Unknown])];
    let e = err(m.import());
    assert!(e.contains("--dim x:1="), "{e}");
    let mut opts = ImportOptions::default();
    opts.dims.insert("x:1".into(), 4);
    assert_eq!(out_shape(&import_bytes(&m.bytes(), &opts).unwrap(), "y"), [1, 4]);
}

#[test]
fn shape_errors_mention_fixed_symbolic_dims() {
    let mut m = Model::new(13).output("y").init(tf32("w", &[5, 8], &weights(40, 1))).node(node("MatMul", &["x", "w"], &["y"], vec![]));
    m.inputs = vec![vi_sym("x", &[D::P("N"), D::P("features")])];
    let mut opts = ImportOptions::default();
    opts.dims.insert("features".into(), 7);
    let e = import_bytes(&m.bytes(), &opts).unwrap_err().to_string();
    assert!(e.contains("y_node") && e.contains("MatMul") && e.contains("[1, 7]") && e.contains("[5, 8]") && e.contains("'features' = 7") && e.contains("--dim"), "{e}");
}

#[test]
fn model_local_functions_are_inlined_with_attribute_references() {
    // function Block(X) -> (Y) { T = Mul(X, scale_c); Y = Clip<min=@lo>(T) }  (opset 10 body)
    let body = vec![
        node("Constant", &[], &["c"], vec![aref("value_float", "k", A::Float)]),
        node("Mul", &["X", "c"], &["t"], vec![]),
        node("Clip", &["t"], &["Y"], vec![aref("min", "lo", A::Float), af("max", 6.0)]),
    ];
    let f = FunctionProto {
        name: Some("Block".into()),
        domain: Some("local".into()),
        input: vec!["X".into()],
        output: vec!["Y".into()],
        attribute: vec!["lo".into()],
        attribute_proto: vec![af("k", 2.0)],
        node: body,
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(10) }],
        ..Default::default()
    };
    let mut call1 = node("Block", &["x"], &["h"], vec![af("lo", 0.0)]);
    call1.domain = Some("local".into());
    let mut call2 = node("Block", &["h"], &["y"], vec![af("lo", -1.0), af("k", 3.0)]);
    call2.domain = Some("local".into());
    let mut m = Model::new(13).input("x", &[1, 4]).output("y").node(call1).node(call2);
    m.functions.push(f);
    let mut p = m.proto();
    p.opset_import.push(OperatorSetIdProto { domain: Some("local".into()), version: Some(1) });
    let g = mobilenetc::onnx::import::import_model(&p, &ImportOptions::default()).unwrap();
    assert_eq!(op_names(&g), ["Mul", "Clip", "Mul", "Clip"]);
    let ops = ops(&g);
    assert_eq!(ops[1], Op::Clip { min: 0.0, max: 6.0 });
    assert_eq!(ops[3], Op::Clip { min: -1.0, max: 6.0 });
    // The caller's k overrides the default; inner names are unique per call.
    let muls: Vec<_> = g.nodes_in_order().into_iter().filter(|(_, n)| n.op == Op::Mul).map(|(_, n)| g.constant(n.inputs[1]).unwrap().data[0]).collect();
    assert_eq!(muls, [2.0, 3.0]);
    let names: Vec<_> = g.nodes_in_order().into_iter().map(|(_, n)| g.tensor(n.outputs[0]).name.clone()).collect();
    assert_eq!(names, ["h_node/t", "h", "y_node/t", "y"]);
    g.validate().unwrap();
}

#[test]
fn unsupported_ops_are_listed_at_once() {
    let mut custom = node("MyOp", &["c"], &["d"], vec![]);
    custom.domain = Some("com.example".into());
    let mut m = Model::new(13)
        .input("x", &[1, 4])
        .output("e")
        .node(node("Sigmoid", &["x"], &["a"], vec![]))
        .node(node("Relu", &["a"], &["b"], vec![]))
        .node(node("Tanh", &["b"], &["c"], vec![]))
        .node(custom)
        .node(node("Relu", &["d"], &["e"], vec![]));
    let mut p = m.proto();
    p.opset_import.push(OperatorSetIdProto { domain: Some("com.example".into()), version: Some(3) });
    let e = mobilenetc::onnx::import::import_model(&p, &ImportOptions::default()).unwrap_err();
    let Error::Unsupported(list) = &e else { panic!("{e}") };
    let got: Vec<_> = list.iter().map(|u| (u.node.as_str(), u.op.as_str(), u.domain.as_str(), u.opset)).collect();
    assert_eq!(got, [("a_node", "Sigmoid", "", 13), ("c_node", "Tanh", "", 13), ("d_node", "MyOp", "com.example", 3)]);
    let text = e.to_string();
    assert!(text.starts_with("3 unsupported op(s)") && text.contains("node 'c_node': op Tanh (ai.onnx opset 13)"), "{text}");
    // Too old an opset for an op whose schema changed since (Relu-1 before 6) is listed too.
    m.opset = 5;
    let Error::Unsupported(list) = m.import().unwrap_err() else { panic!() };
    assert_eq!(list.len(), 5);
}

#[test]
fn metadata_and_names_are_kept() {
    let m = Model::new(13).input("input.1", &[1, 4]).output("out:0").node(node("Relu", &["input.1"], &["out:0"], vec![]));
    let mut p = m.proto();
    p.doc_string = Some("a doc".into());
    p.producer_version = Some("9.9".into());
    p.model_version = Some(3);
    p.metadata_props.push(StringStringEntryProto { key: Some("author".into()), value: Some("me".into()) });
    p.graph.as_mut().unwrap().doc_string = Some("graph doc".into());
    let g = mobilenetc::onnx::import::import_model(&p, &ImportOptions::default()).unwrap();
    assert_eq!(g.meta.producer_name, "import-tests");
    assert_eq!(g.meta.producer_version, "9.9");
    assert_eq!((g.meta.ir_version, g.meta.model_version, g.meta.opset()), (8, 3, 13));
    assert_eq!(g.meta.doc_string, "a doc");
    assert_eq!(g.meta.graph_doc_string, "graph doc");
    assert_eq!(g.meta.metadata_props, [("author".to_string(), "me".to_string())]);
    assert_eq!(g.tensor(g.inputs[0]).name, "input.1");
    assert_eq!(g.tensor(g.outputs[0]).name, "out:0");
    assert_eq!(g.name, "g");
}

#[test]
fn weights_from_raw_and_typed_fields_and_non_float_weights() {
    let w = weights(2 * 3 * 3 * 3, 7);
    for t in [tf32("w", &[2, 3, 3, 3], &w), tf32_typed("w", &[2, 3, 3, 3], &w)] {
        let m = Model::new(13).input("x", &[1, 3, 5, 5]).output("y").init(t).node(node("Conv", &["x", "w"], &["y"], vec![]));
        let g = m.import().unwrap();
        let conv = g.find_node("y_node").unwrap();
        let wt = g.constant(g.node(conv).inputs[1]).unwrap();
        assert_eq!((wt.shape.as_slice(), &wt.data), (&[2usize, 3, 3, 3][..], &w));
        assert_eq!(g.tensor(g.node(conv).inputs[1]).name, "w");
    }
    let m = Model::new(13).input("x", &[1, 3, 5, 5]).output("y").init(ti64("w", &[2, 3, 3, 3], &[1; 54])).node(node("Conv", &["x", "w"], &["y"], vec![]));
    let e = err(m.import());
    assert!(e.contains("'w'") && e.contains("INT64") && e.contains("float32"), "{e}");
    // A float16 initializer nobody reads is fine; read, it is refused by name.
    let h = TensorProto { name: Some("h".into()), dims: vec![2], data_type: Some(10), raw_data: Some(vec![0; 4]), ..Default::default() };
    let m = Model::new(13).input("x", &[2]).output("y").init(h.clone()).node(node("Relu", &["x"], &["y"], vec![]));
    m.import().unwrap();
    let m = Model::new(13).input("x", &[2]).output("y").init(h).node(node("Add", &["x", "h"], &["y"], vec![]));
    let e = err(m.import());
    assert!(e.contains("'h'") && e.contains("FLOAT16"), "{e}");
}

#[test]
fn mobilenet_like_pipeline_keras_style() {
    // NHWC input → Transpose → Pad → Conv s2 → BN → Relu6 (Clip) → GAP → Reshape → MatMul + Add → Softmax.
    let m = Model::new(13)
        .input("input", &[1, 32, 32, 3])
        .output("probs")
        .init(tf32("w", &[8, 3, 3, 3], &weights(216, 1)))
        .init(tf32("s", &[8], &[1.0; 8]))
        .init(tf32("b", &[8], &[0.0; 8]))
        .init(tf32("mu", &[8], &[0.0; 8]))
        .init(tf32("var", &[8], &[1.0; 8]))
        .init(ti64("pads", &[8], &[0, 0, 0, 0, 0, 0, 1, 1]))
        .init(tf32("lo", &[], &[0.0]))
        .init(tf32("hi", &[], &[6.0]))
        .init(ti64("flat", &[2], &[-1, 8]))
        .init(tf32("fc", &[8, 10], &weights(80, 2)))
        .init(tf32("fcb", &[10], &weights(10, 3)))
        .node(node("Transpose", &["input"], &["nchw"], vec![aints("perm", &[0, 3, 1, 2])]))
        .node(node("Pad", &["nchw", "pads"], &["padded"], vec![]))
        .node(node("Conv", &["padded", "w"], &["c"], vec![aints("strides", &[2, 2]), aints("kernel_shape", &[3, 3])]))
        .node(node("BatchNormalization", &["c", "s", "b", "mu", "var"], &["bn"], vec![]))
        .node(node("Clip", &["bn", "lo", "hi"], &["r6"], vec![]))
        .node(node("GlobalAveragePool", &["r6"], &["gap"], vec![]))
        .node(node("Reshape", &["gap", "flat"], &["f"], vec![]))
        .node(node("MatMul", &["f", "fc"], &["mm"], vec![]))
        .node(node("Add", &["mm", "fcb"], &["logits"], vec![]))
        .node(node("Softmax", &["logits"], &["probs"], vec![]));
    let g = m.import().unwrap();
    assert_eq!(op_names(&g), ["Transpose", "Pad", "Conv", "BatchNormalization", "Clip", "GlobalAveragePool", "Reshape", "MatMul", "Add", "Softmax"]);
    let shapes: Vec<Vec<usize>> = g.nodes_in_order().into_iter().map(|(_, n)| g.shape(n.outputs[0]).to_vec()).collect();
    assert_eq!(shapes, [vec![1, 3, 32, 32], vec![1, 3, 33, 33], vec![1, 8, 16, 16], vec![1, 8, 16, 16], vec![1, 8, 16, 16], vec![1, 8, 1, 1], vec![1, 8], vec![1, 10], vec![1, 10], vec![1, 10]]);
    assert_eq!(ops(&g)[4], Op::Clip { min: 0.0, max: 6.0 });
}
