//! Snapshot of the generated Rust for a small model, so that codegen changes show as a
//! readable diff. The weights are referenced with `include_bytes!`, so the snapshot holds no
//! weight bytes.

use mobilenetc::codegen::{self, CodegenOptions, WeightSource};
use mobilenetc::graph::{Activation, AutoPad, ConvAttrs, GemmAttrs, Graph, Op, Tensor};
use mobilenetc::lower::{Arg, Range};

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 200) as f32 / 100.0 - 1.0).collect()
}

fn conv(kernel: usize, stride: usize, pad: usize, group: usize) -> Op {
    Op::Conv(ConvAttrs {
        kernel: [kernel; 2],
        strides: [stride; 2],
        pads: [pad; 4],
        dilations: [1, 1],
        group,
        auto_pad: AutoPad::NotSet,
        activation: Activation::None,
    })
}

/// input [1,3,8,8] → conv 3×3 s2 + BN + ReLU6 → depthwise 3×3 + ReLU6 → pointwise 1×1 + ReLU
/// → GlobalAveragePool → Flatten → Gemm → Softmax: after the passes, 4 fused layers.
fn small_model() -> Graph {
    let mut g = Graph::new("small");
    let x = g.add_input("input", vec![1, 3, 8, 8]);
    let w0 = g.add_constant("w0", Tensor::new(vec![4, 3, 3, 3], values(108, 1)));
    let (_, c0) = g.add_op("conv0", conv(3, 2, 1, 1), vec![x, w0], vec![1, 4, 4, 4]);
    let bn: Vec<_> = ["scale", "bias", "mean", "var"]
        .iter()
        .enumerate()
        .map(|(i, n)| g.add_constant(*n, Tensor::new(vec![4], values(4, 10 + i as u32).iter().map(|v| if i == 3 { v.abs() + 0.5 } else { *v }).collect())))
        .collect();
    let (_, b0) = g.add_op("bn0", Op::BatchNorm { epsilon: 1e-3, momentum: 0.9 }, vec![c0, bn[0], bn[1], bn[2], bn[3]], vec![1, 4, 4, 4]);
    let (_, r0) = g.add_op("relu0", Op::Clip { min: 0.0, max: 6.0 }, vec![b0], vec![1, 4, 4, 4]);
    let w1 = g.add_constant("w1", Tensor::new(vec![4, 1, 3, 3], values(36, 2)));
    let (_, c1) = g.add_op("dw1", conv(3, 1, 1, 4), vec![r0, w1], vec![1, 4, 4, 4]);
    let (_, r1) = g.add_op("relu1", Op::Clip { min: 0.0, max: 6.0 }, vec![c1], vec![1, 4, 4, 4]);
    let w2 = g.add_constant("w2", Tensor::new(vec![8, 4, 1, 1], values(32, 3)));
    let b2 = g.add_constant("b2", Tensor::new(vec![8], values(8, 4)));
    let (_, c2) = g.add_op("pw1", conv(1, 1, 0, 1), vec![r1, w2, b2], vec![1, 8, 4, 4]);
    let (_, r2) = g.add_op("relu2", Op::Relu, vec![c2], vec![1, 8, 4, 4]);
    let (_, p) = g.add_op("pool", Op::GlobalAveragePool, vec![r2], vec![1, 8, 1, 1]);
    let (_, f) = g.add_op("flatten", Op::Flatten { axis: 1 }, vec![p], vec![1, 8]);
    let wf = g.add_constant("fc_w", Tensor::new(vec![5, 8], values(40, 5)));
    let bf = g.add_constant("fc_b", Tensor::new(vec![5], values(5, 6)));
    let (_, y) = g.add_op("fc", Op::Gemm(GemmAttrs { trans_b: true, ..GemmAttrs::default() }), vec![f, wf, bf], vec![1, 5]);
    let (_, s) = g.add_op("softmax", Op::Softmax { axis: 1 }, vec![y], vec![1, 5]);
    g.outputs.push(s);
    g.validate().expect("valid graph");
    g
}

fn options(weights: WeightSource) -> CodegenOptions {
    CodegenOptions { name: "SmallNet".into(), weights, invocation: "codegen_snapshot test".into(), model_hash: "0".repeat(64) }
}

#[test]
fn generated_code_for_a_small_model() {
    let s = mobilenetc::lower::compile(&small_model()).expect("compile");
    let code = codegen::render(&s, &options(WeightSource::IncludeBytes("small_net.weights".into()))).expect("render");
    insta::assert_snapshot!("small_model", code);
}

#[test]
fn the_macro_form_embeds_one_byte_string() {
    let s = mobilenetc::lower::compile(&small_model()).expect("compile");
    let tokens = codegen::generate(&s, &options(WeightSource::ByteString)).expect("generate").to_string();
    // One literal holds every weight: its length is the blob's, and no float array appears.
    let start = tokens.find("b\"").expect("a byte-string literal");
    assert_eq!(tokens.matches("b\"").count(), 1);
    assert!(tokens[start..].len() > s.weights.len() * 4, "the literal holds the whole blob");
    assert!(!tokens.contains("include_bytes"));
}

#[test]
fn models_codegen_cannot_express_are_clear_errors() {
    let s = mobilenetc::lower::compile(&small_model()).expect("compile");
    let err = codegen::generate(&s, &CodegenOptions { name: "9lives".into(), ..options(WeightSource::ByteString) }).unwrap_err();
    assert!(err.to_string().contains("cannot name a Rust type"), "{err}");
    let mut two = small_model();
    let extra = two.outputs[0];
    two.outputs.push(extra);
    let s = mobilenetc::lower::compile(&two).expect("compile");
    let err = codegen::generate(&s, &options(WeightSource::ByteString)).unwrap_err();
    assert!(err.to_string().contains("2 outputs"), "{err}");
}

/// The layers read the model input where the caller keeps it only when every read of its range
/// names exactly that range: a read of part of it (as a view would make) sends `infer` back to
/// copying the input into the arena, and the layer then reads the arena.
#[test]
fn input_is_read_in_place_only_when_every_read_is_exact() {
    let s = mobilenetc::lower::compile(&small_model()).expect("compile");
    let code = codegen::render(&s, &options(WeightSource::IncludeBytes("w".into()))).expect("render");
    assert!(code.contains("INPUT_IN_PLACE: bool = true"), "{code}");
    assert!(code.contains("conv_nchw_0(x, "), "the first conv reads the caller's input");

    let mut partial = s.clone();
    let whole = partial.inputs[0].range;
    partial.steps[0].args[0] = Arg::Arena(Range { offset: whole.offset, len: whole.len - 1 });
    let code = codegen::render(&partial, &options(WeightSource::IncludeBytes("w".into()))).expect("render");
    assert!(code.contains("INPUT_IN_PLACE: bool = false"), "{code}");
    assert!(!code.contains("(x, "), "no layer reads the caller's input");
    assert!(code.contains(".copy_from_slice(input)"), "infer copies the input in");
}
