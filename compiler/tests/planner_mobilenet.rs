//! MobileNet v1 1.0-224, batch 1: the arena is within 5% of the lower bound.
//!
//! The network here is written out from the paper's Table 1 (stride 1 on the 7×7 depthwise
//! layer, see DESIGN.md), in two forms: as imported (Conv → BatchNorm → Clip, then the head
//! GlobalAveragePool → Flatten → Gemm → Softmax) and as the passes leave it (convs with the
//! BatchNorm folded and ReLU6 fused, one Head step).

mod planner_common;

use mobilenetc::graph::{Activation, AutoPad, ConvAttrs, GemmAttrs, Graph, Op, Tensor, TensorId};
use mobilenetc::schedule::{plan_graph, GraphPlan};
use planner_common::check_plan;

/// (depthwise stride, pointwise output channels) of the 13 separable blocks.
const BLOCKS: [(usize, usize); 13] = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024)];

fn conv_op(kernel: usize, stride: usize, group: usize, activation: Activation) -> Op {
    let p = kernel / 2;
    Op::Conv(ConvAttrs { kernel: [kernel, kernel], strides: [stride, stride], pads: [p, p, p, p], dilations: [1, 1], group, auto_pad: AutoPad::NotSet, activation })
}

/// Conv (+ BatchNorm + Clip unless `fused`) from `x` [1, c, h, h] to [1, m, h/s, h/s].
fn layer(g: &mut Graph, name: &str, x: TensorId, m: usize, [kernel, stride]: [usize; 2], depthwise: bool, fused: bool) -> TensorId {
    let s = g.shape(x).to_vec();
    let (c, h) = (s[1], s[2]);
    let out = vec![1, m, h.div_ceil(stride), h.div_ceil(stride)];
    let (group, cin) = if depthwise { (c, 1) } else { (1, c) };
    let w = g.add_constant(format!("{name}.w"), Tensor::zeros(vec![m, cin, kernel, kernel]));
    if fused {
        let b = g.add_constant(format!("{name}.b"), Tensor::zeros(vec![m]));
        return g.add_op(name, conv_op(kernel, stride, group, Activation::RELU6), vec![x, w, b], out).1;
    }
    let (_, y) = g.add_op(name, conv_op(kernel, stride, group, Activation::None), vec![x, w], out.clone());
    let params: Vec<TensorId> = ["scale", "bias", "mean", "var"].iter().map(|p| g.add_constant(format!("{name}.bn.{p}"), Tensor::zeros(vec![m]))).collect();
    let (_, y) = g.add_op(format!("{name}.bn"), Op::BatchNorm { epsilon: 1e-3, momentum: 0.99 }, [vec![y], params].concat(), out.clone());
    g.add_op(format!("{name}.relu6"), Op::Clip { min: 0.0, max: 6.0 }, vec![y], out).1
}

fn table1(fused: bool) -> Graph {
    let mut g = Graph::new(if fused { "mobilenet_v1_table1_fused" } else { "mobilenet_v1_table1" });
    let x = g.add_input("input", vec![1, 3, 224, 224]);
    let mut y = layer(&mut g, "conv0", x, 32, [3, 2], false, fused);
    for (i, &(stride, m)) in BLOCKS.iter().enumerate() {
        let c = g.shape(y)[1];
        y = layer(&mut g, &format!("dw{}", i + 1), y, c, [3, stride], true, fused);
        y = layer(&mut g, &format!("pw{}", i + 1), y, m, [1, 1], false, fused);
    }
    let w = g.add_constant("fc.w", Tensor::zeros(vec![1000, 1024]));
    let b = g.add_constant("fc.b", Tensor::zeros(vec![1000]));
    let out = if fused {
        g.add_op("head", Op::Head { softmax: true }, vec![y, w, b], vec![1, 1000]).1
    } else {
        let (_, p) = g.add_op("pool", Op::GlobalAveragePool, vec![y], vec![1, 1024, 1, 1]);
        let (_, f) = g.add_op("flatten", Op::Flatten { axis: 1 }, vec![p], vec![1, 1024]);
        let gemm = GemmAttrs { trans_b: true, ..GemmAttrs::default() };
        let (_, l) = g.add_op("fc", Op::Gemm(gemm), vec![f, w, b], vec![1, 1000]);
        g.add_op("softmax", Op::Softmax { axis: 1 }, vec![l], vec![1, 1000]).1
    };
    g.outputs.push(out);
    g.validate().unwrap();
    g
}

fn summary(label: &str, gp: &GraphPlan) {
    let p = &gp.plan;
    println!(
        "{label}: {} steps, {} tensors; arena {} B ({:.3} MiB), lower bound {} B, naive {} B ({:.3} MiB); arena/lower = {:.4}; {} in place; {}",
        gp.schedule.steps.len(),
        gp.schedule.buffers.len(),
        p.arena_bytes,
        p.arena_bytes as f64 / 1048576.0,
        p.lower_bound_bytes,
        p.naive_bytes,
        p.naive_bytes as f64 / 1048576.0,
        p.ratio(),
        p.inplace_taken.len(),
        p.strategy.name()
    );
}

/// The peak is the first pointwise conv: its input 112·112·32 and output 112·112·64 floats.
const PEAK: usize = 112 * 112 * (32 + 64) * 4;

#[test]
fn table1_after_passes_is_within_5_percent_of_the_lower_bound() {
    let g = table1(true);
    let gp = plan_graph(&g).unwrap();
    summary("MobileNet v1 1.0-224 (Table 1, fused)", &gp);
    check_plan(&gp.schedule.buffers, &gp.schedule.steps, &gp.plan).unwrap();
    assert_eq!(gp.schedule.steps.len(), 1 + 26 + 1);
    assert_eq!(gp.plan.lower_bound_bytes, PEAK);
    assert!(gp.plan.ratio() <= 1.05, "arena {} vs lower bound {}", gp.plan.arena_bytes, gp.plan.lower_bound_bytes);
    // One buffer per tensor: the input, 27 conv outputs and the 1000 probabilities.
    let mut naive = 224 * 224 * 3 + 1000;
    let mut hw = 112;
    naive += hw * hw * 32;
    let mut c = 32;
    for (s, m) in BLOCKS {
        hw /= s;
        naive += hw * hw * c + hw * hw * m;
        c = m;
    }
    assert_eq!(gp.plan.naive_bytes, naive * 4 + 32 /* 4000 bytes of probabilities round up to 4032 */);
}

#[test]
fn table1_before_passes_is_within_5_percent_of_the_lower_bound() {
    let g = table1(false);
    let gp = plan_graph(&g).unwrap();
    summary("MobileNet v1 1.0-224 (Table 1, as imported)", &gp);
    check_plan(&gp.schedule.buffers, &gp.schedule.steps, &gp.plan).unwrap();
    // BatchNorm and Clip run in place: they add no bytes at the peak.
    assert_eq!(gp.plan.lower_bound_bytes, PEAK);
    assert_eq!(gp.plan.inplace_taken.len(), 2 * 27);
    assert!(gp.plan.ratio() <= 1.05, "arena {} vs lower bound {}", gp.plan.arena_bytes, gp.plan.lower_bound_bytes);
    // The JSON report carries the same totals and every tensor.
    let json = gp.report_json();
    assert_eq!(json["arena_bytes"].as_u64(), Some(gp.plan.arena_bytes as u64));
    assert_eq!(json["tensors"].as_array().unwrap().len(), gp.schedule.buffers.len());
    println!("{}", gp.report_text());
}

/// The hand-built graph as imported, through the real passes (BatchNorm folded, ReLU6 fused,
/// the head fused): planned like the hand-fused form.
#[test]
fn table1_through_the_passes_is_within_5_percent_of_the_lower_bound() {
    use mobilenetc::passes::{optimize, PassOptions};
    let mut g = table1(false);
    optimize(&mut g, &PassOptions::default()).unwrap();
    let gp = plan_graph(&g).unwrap();
    summary("MobileNet v1 1.0-224 (Table 1, after the passes)", &gp);
    check_plan(&gp.schedule.buffers, &gp.schedule.steps, &gp.plan).unwrap();
    assert_eq!(gp.plan.lower_bound_bytes, PEAK);
    assert!(gp.plan.ratio() <= 1.05, "arena {} vs lower bound {}", gp.plan.arena_bytes, gp.plan.lower_bound_bytes);
}

/// The constructor's graph (BatchNorm and Clip after every conv), before and after the passes.
#[test]
fn constructed_mobilenet_is_within_5_percent_of_the_lower_bound() {
    use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
    use mobilenetc::passes::{optimize, PassOptions};
    let mut g = mobilenet_v1(&MobileNetConfig::default()).unwrap();
    let before = plan_graph(&g).unwrap();
    summary("MobileNet v1 1.0-224 (constructor, before the passes)", &before);
    check_plan(&before.schedule.buffers, &before.schedule.steps, &before.plan).unwrap();
    assert_eq!(before.plan.lower_bound_bytes, PEAK);
    assert!(before.plan.ratio() <= 1.05, "arena {} vs lower bound {}", before.plan.arena_bytes, before.plan.lower_bound_bytes);

    optimize(&mut g, &PassOptions::default()).unwrap();
    let after = plan_graph(&g).unwrap();
    summary("MobileNet v1 1.0-224 (constructor, after the passes)", &after);
    check_plan(&after.schedule.buffers, &after.schedule.steps, &after.plan).unwrap();
    assert_eq!(after.plan.lower_bound_bytes, PEAK);
    assert!(after.plan.ratio() <= 1.05, "arena {} vs lower bound {}", after.plan.arena_bytes, after.plan.lower_bound_bytes);
    assert!(after.plan.naive_bytes < before.plan.naive_bytes);
    println!("{}", after.report_text());
}

/// Other widths, resolutions, batches and the paper's comparison variants plan as tightly.
#[test]
fn constructed_variants_are_within_5_percent_of_the_lower_bound() {
    use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig, Variant};
    use mobilenetc::passes::{optimize, PassOptions};
    let configs = [
        MobileNetConfig { alpha: 0.25, resolution: 128, ..MobileNetConfig::default() },
        MobileNetConfig { alpha: 0.5, resolution: 160, batch: 4, ..MobileNetConfig::default() },
        MobileNetConfig { alpha: 1.0, resolution: 32, classes: 10, ..MobileNetConfig::default() },
        MobileNetConfig { variant: Variant::Shallow, ..MobileNetConfig::default() },
        MobileNetConfig { variant: Variant::FullConv, alpha: 0.25, resolution: 96, ..MobileNetConfig::default() },
    ];
    for cfg in configs {
        let mut g = mobilenet_v1(&cfg).unwrap();
        for stage in ["before", "after"] {
            if stage == "after" {
                optimize(&mut g, &PassOptions::default()).unwrap();
            }
            let gp = plan_graph(&g).unwrap();
            summary(&format!("{cfg:?} {stage} the passes"), &gp);
            check_plan(&gp.schedule.buffers, &gp.schedule.steps, &gp.plan).unwrap();
            assert!(gp.plan.ratio() <= 1.05, "{cfg:?} {stage}: arena {} vs lower bound {}", gp.plan.arena_bytes, gp.plan.lower_bound_bytes);
        }
    }
}
