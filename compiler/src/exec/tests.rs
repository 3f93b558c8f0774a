//! The executor against the f64 reference evaluator on small graphs that exercise the layout
//! choices of lowering (channels-last inside, ONNX layout at the edges, views, broadcasts,
//! weights given as runtime inputs). Tolerance: |ours − ref| ≤ 1e-4 · max(1, |ref|).

use super::Executor;
use crate::eval::evaluate;
use crate::graph::{Activation, AutoPad, ConvAttrs, GemmAttrs, Graph, Op, PoolAttrs, Tensor, TensorId};
use crate::lower::Kernel;

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed.wrapping_mul(97)) >> 13) % 2000) as f32 / 1000.0 - 1.0).collect()
}

fn constant(g: &mut Graph, name: &str, shape: Vec<usize>, seed: u32) -> TensorId {
    let n = shape.iter().product();
    g.add_constant(name, Tensor::new(shape, values(n, seed)))
}

fn conv(kernel: usize, stride: usize, pad: usize, group: usize) -> Op {
    Op::Conv(ConvAttrs { kernel: [kernel; 2], strides: [stride; 2], pads: [pad; 4], dilations: [1, 1], group, auto_pad: AutoPad::NotSet, activation: Activation::None })
}

fn pool(kernel: usize, stride: usize, pads: [usize; 4], ceil: bool, include_pad: bool) -> PoolAttrs {
    PoolAttrs { kernel: [kernel; 2], strides: [stride; 2], pads, dilations: [1, 1], auto_pad: AutoPad::NotSet, ceil_mode: ceil, count_include_pad: include_pad }
}

/// Runs the graph with the executor (after the passes) and the reference; compares outputs.
fn check(g: &Graph) -> Executor {
    g.validate().expect("valid test graph");
    let inputs: Vec<(String, Tensor)> = g
        .inputs
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let shape = g.shape(t).to_vec();
            (g.tensor(t).name.clone(), Tensor::new(shape.clone(), values(shape.iter().product(), 100 + i as u32)))
        })
        .collect();
    let refs: Vec<(&str, Tensor)> = inputs.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let want = evaluate(g, &refs).expect("reference");
    let mut exec = Executor::from_graph(g).expect("compile");
    let feed: Vec<(&str, &[f32])> = inputs.iter().map(|(n, t)| (n.as_str(), t.data.as_slice())).collect();
    let got = exec.run(&feed).expect("run");
    assert_eq!(got.len(), want.len());
    for ((name, shape, data), r) in got.iter().zip(&want) {
        assert_eq!(shape, &r.shape, "output {name}: shape");
        for (i, (&o, &e)) in data.iter().zip(&r.data).enumerate() {
            assert!((o - e).abs() <= 1e-4 * e.abs().max(1.0), "output {name}[{i}]: ours {o}, reference {e}");
        }
    }
    exec
}

fn transposes(exec: &Executor) -> usize {
    exec.schedule().steps.iter().filter(|s| matches!(s.kernel, Kernel::Transpose { .. })).count()
}

#[test]
fn tf2onnx_style_nhwc_edges_need_no_conversion() {
    let mut g = Graph::new("nhwc");
    let x = g.add_input("x", vec![1, 6, 6, 3]);
    let (_, t) = g.add_op("to_nchw", Op::Transpose { perm: vec![0, 3, 1, 2] }, vec![x], vec![1, 3, 6, 6]);
    let w = constant(&mut g, "w", vec![4, 3, 3, 3], 1);
    let b = constant(&mut g, "b", vec![4], 2);
    let (_, c) = g.add_op("conv", conv(3, 1, 1, 1), vec![t, w, b], vec![1, 4, 6, 6]);
    let (_, r) = g.add_op("relu", Op::Relu, vec![c], vec![1, 4, 6, 6]);
    let (_, y) = g.add_op("to_nhwc", Op::Transpose { perm: vec![0, 2, 3, 1] }, vec![r], vec![1, 6, 6, 4]);
    g.outputs.push(y);
    let exec = check(&g);
    assert_eq!(transposes(&exec), 0, "NHWC in, NHWC out: channels-last throughout");
}

#[test]
fn nchw_edges_convert_at_most_once_and_residual_adds_stay_channels_last() {
    let mut g = Graph::new("residual");
    let x = g.add_input("x", vec![2, 3, 5, 5]);
    let w0 = constant(&mut g, "w0", vec![4, 3, 3, 3], 3);
    let (_, a) = g.add_op("c0", conv(3, 1, 1, 1), vec![x, w0], vec![2, 4, 5, 5]);
    let w1 = constant(&mut g, "w1", vec![4, 1, 3, 3], 4);
    let (_, b) = g.add_op("dw", conv(3, 1, 1, 4), vec![a, w1], vec![2, 4, 5, 5]);
    let (_, s) = g.add_op("add", Op::Add, vec![a, b], vec![2, 4, 5, 5]);
    // Per-channel scale [1, C, 1, 1] and a rank-3 shift [C, 1, 1]: constants laid out NHWC.
    let k = constant(&mut g, "k", vec![1, 4, 1, 1], 5);
    let (_, m) = g.add_op("mul", Op::Mul, vec![s, k], vec![2, 4, 5, 5]);
    let sh = constant(&mut g, "shift", vec![4, 1, 1], 6);
    let (_, d) = g.add_op("sub", Op::Sub, vec![m, sh], vec![2, 4, 5, 5]);
    // A full-shape constant must be transposed too.
    let full = constant(&mut g, "full", vec![1, 4, 5, 5], 7);
    let (_, e) = g.add_op("add_full", Op::Add, vec![d, full], vec![2, 4, 5, 5]);
    g.outputs.push(e);
    let exec = check(&g);
    // The first conv reads the NCHW input in place; the output is converted back once.
    assert_eq!(exec.schedule().steps[0].kernel.kind(), "conv_nchw");
    assert_eq!(transposes(&exec), 1, "no conversion in, one out");
}

#[test]
fn first_conv_reads_nchw_unless_a_conversion_exists() {
    // The conv comes first: it reads the input in place; the residual add converts the input.
    let mut g = Graph::new("conv_first");
    let x = g.add_input("x", vec![2, 3, 6, 7]);
    let w = constant(&mut g, "w", vec![3, 3, 3, 3], 9);
    let (_, c) = g.add_op("conv", conv(3, 1, 1, 1), vec![x, w], vec![2, 3, 6, 7]);
    let (_, s) = g.add_op("add", Op::Add, vec![c, x], vec![2, 3, 6, 7]);
    g.outputs.push(s);
    let exec = check(&g);
    let kinds: Vec<&str> = exec.schedule().steps.iter().map(|s| s.kernel.kind()).collect();
    assert_eq!(kinds, ["conv_nchw", "transpose", "binary", "transpose"]);
    // A pool converts the input first: the conv then shares that NHWC copy.
    let mut g = Graph::new("pool_first");
    let x = g.add_input("x", vec![1, 3, 6, 6]);
    let (_, p) = g.add_op("maxpool", Op::MaxPool(pool(3, 1, [1, 1, 1, 1], false, false)), vec![x], vec![1, 3, 6, 6]);
    let w = constant(&mut g, "w", vec![4, 3, 3, 3], 10);
    let (_, c) = g.add_op("conv", conv(3, 1, 1, 1), vec![x, w], vec![1, 4, 6, 6]);
    g.outputs.push(p);
    g.outputs.push(c);
    let exec = check(&g);
    let kinds: Vec<&str> = exec.schedule().steps.iter().map(|s| s.kernel.kind()).collect();
    assert_eq!(kinds, ["transpose", "pool", "conv", "transpose", "transpose"]);
}

#[test]
fn pools_pads_concat_and_channel_softmax() {
    let mut g = Graph::new("mixed");
    let x = g.add_input("x", vec![1, 2, 7, 7]);
    let (_, p) = g.add_op("pad", Op::Pad { pads: vec![0, 0, 1, 0, 0, 0, 0, 2], value: 0.5 }, vec![x], vec![1, 2, 8, 9]);
    let w = constant(&mut g, "w", vec![3, 2, 3, 3], 8);
    let (_, c) = g.add_op("conv", conv(3, 2, 1, 1), vec![p, w], vec![1, 3, 4, 5]);
    let (_, mp) = g.add_op("maxpool", Op::MaxPool(pool(2, 1, [0, 0, 1, 1], false, false)), vec![c], vec![1, 3, 4, 5]);
    let (_, ap) = g.add_op("avgpool", Op::AveragePool(pool(3, 1, [1, 1, 1, 1], false, false)), vec![c], vec![1, 3, 4, 5]);
    let (_, cat) = g.add_op("concat", Op::Concat { axis: 1 }, vec![mp, ap, c], vec![1, 9, 4, 5]);
    let (_, sm) = g.add_op("softmax", Op::Softmax { axis: 1 }, vec![cat], vec![1, 9, 4, 5]);
    g.outputs.push(sm);
    let (_, ceil) = g.add_op("ceilpool", Op::AveragePool(pool(2, 2, [0, 0, 0, 0], true, true)), vec![c], vec![1, 3, 2, 3]);
    g.outputs.push(ceil);
    check(&g);
}

#[test]
fn weights_given_as_inputs_are_packed_at_run_time() {
    let mut g = Graph::new("runtime_weights");
    let x = g.add_input("x", vec![1, 4, 5, 5]);
    let w = g.add_input("W", vec![6, 2, 3, 3]);
    let (_, c) = g.add_op("grouped", conv(3, 2, 1, 2), vec![x, w], vec![1, 6, 3, 3]);
    let (_, f) = g.add_op("flatten", Op::Flatten { axis: 1 }, vec![c], vec![1, 54]);
    let b = g.add_input("B", vec![54, 3]);
    let (_, y) = g.add_op("gemm", Op::Gemm(GemmAttrs { alpha: 0.5, ..GemmAttrs::default() }), vec![f, b], vec![1, 3]);
    g.outputs.push(y);
    let a = g.add_input("A", vec![4, 2]);
    let m = g.add_input("M", vec![3, 2, 5]);
    let (_, mm) = g.add_op("matmul", Op::MatMul, vec![a, m], vec![3, 4, 5]);
    g.outputs.push(mm);
    let bt = constant(&mut g, "bt", vec![3, 4], 9);
    let ct = constant(&mut g, "ct", vec![2, 1], 10);
    let (_, gt) = g.add_op("gemm_t", Op::Gemm(GemmAttrs { trans_a: true, trans_b: true, beta: 2.0, ..GemmAttrs::default() }), vec![a, bt, ct], vec![2, 3]);
    g.outputs.push(gt);
    // A graph input that is also an output is copied.
    g.outputs.push(a);
    let exec = check(&g);
    assert!(exec.schedule().packs_at_run_time());
}

#[test]
fn bad_inputs_are_errors_naming_the_input() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", vec![1, 4]);
    let (_, y) = g.add_op("relu", Op::Relu, vec![x], vec![1, 4]);
    g.outputs.push(y);
    let mut exec = Executor::from_graph(&g).unwrap();
    let e = exec.run(&[]).unwrap_err().to_string();
    assert!(e.contains("'x'") && e.contains("missing"), "{e}");
    let e = exec.run(&[("x", &[1.0; 3])]).unwrap_err().to_string();
    assert!(e.contains("3 values") && e.contains("[1, 4]"), "{e}");
    let e = exec.run(&[("x", &[1.0; 4]), ("y", &[0.0])]).unwrap_err().to_string();
    assert!(e.contains("no input 'y'"), "{e}");
    assert_eq!(exec.run(&[("x", &[-1.0, 2.0, -3.0, 4.0])]).unwrap()[0].2, [0.0, 2.0, 0.0, 4.0]);
}

/// A depthwise 3×3 conv (stride `s`) then a pointwise conv, both with bias and ReLU6 (big
/// enough that the kernels split it over threads).
fn dw_pw_graph(s: usize, extra_reader: bool) -> Graph {
    let mut g = Graph::new("dwpw");
    let x = g.add_input("x", vec![1, 32, 28, 28]);
    let relu6 = Activation::Clip { min: 0.0, max: 6.0 };
    let dw_w = constant(&mut g, "dw_w", vec![32, 1, 3, 3], 1);
    let dw_b = constant(&mut g, "dw_b", vec![32], 2);
    let o = (28 + 2 - 3) / s + 1;
    let dw_op = Op::Conv(ConvAttrs { activation: relu6, ..match conv(3, s, 1, 32) { Op::Conv(a) => a, _ => unreachable!() } });
    let (_, d) = g.add_op("dw", dw_op, vec![x, dw_w, dw_b], vec![1, 32, o, o]);
    let pw_w = constant(&mut g, "pw_w", vec![48, 32, 1, 1], 3);
    let pw_b = constant(&mut g, "pw_b", vec![48], 4);
    let pw_op = Op::Conv(ConvAttrs { activation: relu6, ..match conv(1, 1, 0, 1) { Op::Conv(a) => a, _ => unreachable!() } });
    let (_, y) = g.add_op("pw", pw_op, vec![d, pw_w, pw_b], vec![1, 48, o, o]);
    g.outputs.push(y);
    if extra_reader {
        let (_, r) = g.add_op("relu", Op::Relu, vec![d], vec![1, 32, o, o]);
        g.outputs.push(r);
    }
    g
}

fn fused_steps(exec: &Executor) -> usize {
    exec.schedule().steps.iter().filter(|s| matches!(s.kernel, Kernel::DwPw(_))).count()
}

#[test]
fn depthwise_then_pointwise_runs_fused_and_matches_the_reference() {
    for s in [1, 2] {
        let exec = check(&dw_pw_graph(s, false));
        assert_eq!(fused_steps(&exec), 1, "stride {s}: the pair is one fused step");
    }
    // The depthwise output is also a graph output here: it must be written, so no fusion.
    let exec = check(&dw_pw_graph(1, true));
    assert_eq!(fused_steps(&exec), 0);
}

#[test]
fn threads_give_bit_identical_outputs() {
    let g = dw_pw_graph(1, false);
    let x = values(32 * 28 * 28, 9);
    let mut exec = Executor::from_graph(&g).unwrap();
    let one = exec.run(&[("x", &x)]).unwrap();
    for t in [2, 3] {
        exec.set_threads(t);
        assert_eq!(exec.run(&[("x", &x)]).unwrap(), one, "{t} threads");
    }
}
