//! The paper model through optimize(): no BatchNormalization, Clip, Relu, Identity or Dropout
//! left, and the same output as the unoptimized graph within 1e-5 relative (reference
//! evaluator, random input).

mod passes_common;

use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::graph::{Graph, Op};
use mobilenetc::passes::{optimize, PassOptions};
use passes_common::*;

fn check(alpha: f32, resolution: usize) {
    let cfg = MobileNetConfig { alpha, resolution, seed: 3, ..Default::default() };
    let g = match mobilenet_v1(&cfg) {
        // Until the constructor lands in main (its stub says exactly this), the hand-built
        // Table 1 graphs below carry the check.
        Err(e) if e.to_string() == "constructor not implemented yet" => {
            eprintln!("skipped: {e}");
            return;
        }
        g => g.expect("the constructor builds the paper model"),
    };
    check_graph(&g, alpha, resolution);
}

fn check_graph(g: &Graph, alpha: f32, resolution: usize) {
    let mut after = g.clone();
    let report = optimize(&mut after, &PassOptions::default()).unwrap();
    for op in ["BatchNormalization", "Clip", "Relu", "Identity", "Dropout"] {
        assert_eq!(count(&after, op), 0, "{op} left in α {alpha} ρ {resolution}");
    }
    assert_eq!(count(&after, "Conv"), 27, "1 full conv + 13 × (depthwise + pointwise)");
    assert_eq!(count(&after, "Head"), 1);
    assert!(after.dag.node_weights().all(|n| matches!(n.op, Op::Conv(_) | Op::Head { .. })), "only convs and the head are left");
    let d = assert_same(g, &after);
    eprintln!("MobileNet v1 α {alpha} ρ {resolution}: max rel diff {d:.2e}\n{report}");
}

#[test]
fn alpha_025_at_32() {
    check(0.25, 32);
}

#[test]
fn alpha_025_at_224() {
    check(0.25, 224);
}

/// 569 M mult-adds twice through the f64 evaluator: run in release,
/// `cargo test -p mobilenetc --release --test passes_mobilenet -- --ignored`.
#[test]
#[ignore]
fn alpha_1_at_224() {
    check(1.0, 224);
}

/// Paper Table 1 built here with the test builder (BatchNorm after every conv, ReLU6 as Clip,
/// Dropout before the classifier, Flatten + Gemm(transB) + Softmax): the passes on the full
/// structure, independent of the constructor.
fn table1(alpha: f32, resolution: usize, classes: usize) -> Graph {
    let mut b = Builder::new(11);
    let ch = |c: usize| ((c as f32 * alpha) as usize).max(1);
    let x = b.input("input", &[1, 3, resolution, resolution]);
    let c = b.conv(x, ch(32), 3, 2, 1, 1, false);
    let n = b.bn(c);
    let mut t = b.relu6(n);
    let blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)];
    for (cout, stride) in blocks {
        let cin = b.g.shape(t)[1];
        let d = b.conv(t, cin, 3, stride, 1, cin, false);
        let n = b.bn(d);
        let r = b.relu6(n);
        let p = b.conv(r, ch(cout), 1, 1, 0, 1, false);
        let n = b.bn(p);
        t = b.relu6(n);
    }
    let c = b.g.shape(t)[1];
    let p = b.op("gap", Op::GlobalAveragePool, vec![t], &[1, c, 1, 1]);
    let d = b.unary(p, Op::Dropout { ratio: 0.001 });
    let f = b.op("flatten", Op::Flatten { axis: 1 }, vec![d], &[1, c]);
    let l = b.gemm(f, classes, true, true);
    let y = b.op("softmax", Op::Softmax { axis: 1 }, vec![l], &[1, classes]);
    b.output(y);
    b.g
}

#[test]
fn table1_built_here_alpha_025_at_224() {
    check_graph(&table1(0.25, 224, 1000), 0.25, 224);
}

/// 569 M mult-adds twice through the f64 evaluator (≈ 2-3 min in the test profile).
#[test]
#[ignore]
fn table1_built_here_alpha_1_at_224() {
    check_graph(&table1(1.0, 224, 1000), 1.0, 224);
}
