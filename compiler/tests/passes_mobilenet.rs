//! The paper model through optimize(): no BatchNormalization, Clip, Relu, Identity or Dropout
//! left, and the same output as the unoptimized graph within 1e-5 relative (reference
//! evaluator, random input).

mod passes_common;

use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::graph::Op;
use mobilenetc::passes::{optimize, PassOptions};
use passes_common::*;

fn check(alpha: f32, resolution: usize) {
    let cfg = MobileNetConfig { alpha, resolution, seed: 3, ..Default::default() };
    let g = mobilenet_v1(&cfg).expect("the constructor builds the paper model");
    let mut after = g.clone();
    let report = optimize(&mut after, &PassOptions::default()).unwrap();
    for op in ["BatchNormalization", "Clip", "Relu", "Identity", "Dropout"] {
        assert_eq!(count(&after, op), 0, "{op} left in α {alpha} ρ {resolution}");
    }
    assert_eq!(count(&after, "Conv"), 27, "1 full conv + 13 × (depthwise + pointwise)");
    assert_eq!(count(&after, "Head"), 1);
    assert!(after.dag.node_weights().all(|n| matches!(n.op, Op::Conv(_) | Op::Head { .. })), "only convs and the head are left");
    let d = assert_same(&g, &after);
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
