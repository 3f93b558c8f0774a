//! Property tests: random step lists and random graphs (branches, residual Adds, Concats,
//! views, in-place ops) planned and then checked by an independent simulation of the arena.

mod planner_common;

use mobilenetc::graph::{Activation, AutoPad, ConvAttrs, GemmAttrs, Graph, Op, PoolAttrs, Tensor, TensorId};
use mobilenetc::schedule::{memory_order, plan, plan_graph, schedule_in_order, Buffer, BufferKind, Step};
use planner_common::check_plan;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Random step lists

#[derive(Clone, Debug)]
struct StepSpec {
    reads: Vec<u16>,
    out_bytes: Vec<u16>,
    flags: u8,
}

fn step_spec() -> impl Strategy<Value = StepSpec> {
    (prop::collection::vec(any::<u16>(), 1..4), prop::collection::vec(0u16..3000, 1..3), any::<u8>()).prop_map(|(reads, out_bytes, flags)| StepSpec { reads, out_bytes, flags })
}

/// Builds buffers and steps from the specs. Flags: bit 0 the step is a view of its first read;
/// bit 1 offers its first write in place of its first read; bit 2 makes the first write a graph
/// output; bit 3 offers the first write in place of every read; bit 4 adds a scratch buffer;
/// bit 5 labels the writes as saved activations / gradients (no effect on planning).
fn build_steps(inputs: &[u16], specs: &[StepSpec]) -> (Vec<Buffer>, Vec<Step>) {
    let mut buffers: Vec<Buffer> = inputs.iter().enumerate().map(|(i, &b)| Buffer::new(format!("in{i}"), b as usize, BufferKind::Input)).collect();
    let mut steps = Vec::new();
    for (s, spec) in specs.iter().enumerate() {
        let mut reads: Vec<usize> = Vec::new();
        for &r in &spec.reads {
            let r = r as usize % buffers.len();
            if !reads.contains(&r) {
                reads.push(r);
            }
        }
        let name = format!("s{s}");
        if spec.flags & 1 != 0 {
            let r = reads[0];
            let w = buffers.len();
            buffers.push(Buffer::new(format!("view{s}"), buffers[r].bytes, BufferKind::Activation));
            steps.push(Step::new(name, vec![r], vec![w]).with_alias(r, w));
            continue;
        }
        let kind = if spec.flags & 32 != 0 {
            if s % 2 == 0 {
                BufferKind::Saved
            } else {
                BufferKind::Gradient
            }
        } else {
            BufferKind::Activation
        };
        let mut writes = Vec::new();
        for (k, &bytes) in spec.out_bytes.iter().enumerate() {
            writes.push(buffers.len());
            let kind = if k == 0 && spec.flags & 4 != 0 { BufferKind::Output } else { kind };
            buffers.push(Buffer::new(format!("t{s}_{k}"), bytes as usize, kind));
        }
        if spec.flags & 16 != 0 {
            writes.push(buffers.len());
            buffers.push(Buffer::new(format!("scratch{s}"), 512, BufferKind::Scratch));
        }
        let mut step = Step::new(name, reads.clone(), writes.clone());
        if spec.flags & 2 != 0 {
            step.inplace.push((reads[0], writes[0]));
        }
        if spec.flags & 8 != 0 {
            for &r in &reads {
                if !step.inplace.contains(&(r, writes[0])) {
                    step.inplace.push((r, writes[0]));
                }
            }
        }
        steps.push(step);
    }
    (buffers, steps)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_steps_plan_safely(inputs in prop::collection::vec(1u16..3000, 1..4), specs in prop::collection::vec(step_spec(), 1..40)) {
        let (buffers, steps) = build_steps(&inputs, &specs);
        let p = plan(&buffers, &steps).unwrap();
        if let Err(e) = check_plan(&buffers, &steps, &p) {
            panic!("{e}\nbuffers {buffers:?}\nsteps {steps:?}\nplan {p:?}");
        }
        // Deterministic: planning again (fresh maps, fresh hashers) gives the same plan.
        prop_assert_eq!(&p, &plan(&buffers, &steps).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// Random graphs

#[derive(Clone, Debug)]
struct NodeSpec {
    op: u8,
    a: u16,
    b: u16,
    c: u8,
}

fn node_spec() -> impl Strategy<Value = NodeSpec> {
    (any::<u8>(), any::<u16>(), any::<u16>(), any::<u8>()).prop_map(|(op, a, b, c)| NodeSpec { op, a, b, c })
}

fn conv(kernel: usize, stride: usize, group: usize) -> Op {
    let p = kernel / 2;
    Op::Conv(ConvAttrs { kernel: [kernel, kernel], strides: [stride, stride], pads: [p, p, p, p], dilations: [1, 1], group, auto_pad: AutoPad::NotSet, activation: Activation::None })
}

/// A random network over NCHW activations: pointwise and depthwise convs (some strided),
/// activations, BatchNorm, residual Adds of equal shapes, broadcast Adds of a constant,
/// Concats, pools, views (Flatten, Reshape, Identity, Dropout) and a Gemm head. `c` bit 7
/// makes a node's output a graph output as well.
fn build_graph(specs: &[NodeSpec]) -> Graph {
    let mut g = Graph::new("random");
    let x = g.add_input("x", vec![1, 8, 8, 8]);
    let mut maps: Vec<TensorId> = vec![x]; // 4-D activations
    let mut flats: Vec<TensorId> = Vec::new(); // 2-D activations
    let mut last = x;
    for (i, spec) in specs.iter().enumerate() {
        let name = format!("n{i}");
        let a = maps[spec.a as usize % maps.len()];
        let sa = g.shape(a).to_vec();
        let (c, h) = (sa[1], sa[2]);
        let out = match spec.op % 12 {
            0 => {
                let m = [4, 8, 16][spec.c as usize % 3];
                let w = g.add_constant(format!("{name}.w"), Tensor::zeros(vec![m, c, 1, 1]));
                g.add_op(&name, conv(1, 1, 1), vec![a, w], vec![1, m, h, h]).1
            }
            1 => {
                let s = if h > 2 && spec.c % 3 == 0 { 2 } else { 1 };
                let w = g.add_constant(format!("{name}.w"), Tensor::zeros(vec![c, 1, 3, 3]));
                let b = g.add_constant(format!("{name}.b"), Tensor::zeros(vec![c]));
                g.add_op(&name, conv(3, s, c), vec![a, w, b], vec![1, c, h.div_ceil(s), h.div_ceil(s)]).1
            }
            2 => g.add_op(&name, Op::Relu, vec![a], sa).1,
            3 => g.add_op(&name, Op::Clip { min: 0.0, max: 6.0 }, vec![a], sa).1,
            4 => {
                let params: Vec<TensorId> = ["scale", "bias", "mean", "var"].iter().map(|p| g.add_constant(format!("{name}.{p}"), Tensor::zeros(vec![c]))).collect();
                g.add_op(&name, Op::BatchNorm { epsilon: 1e-5, momentum: 0.9 }, [vec![a], params].concat(), sa).1
            }
            5 | 6 => {
                // Residual Add: the partner is another map of the same shape if there is one.
                let b = maps.iter().cycle().skip(spec.b as usize % maps.len()).take(maps.len()).copied().find(|&t| g.shape(t) == sa.as_slice()).unwrap_or(a);
                let op = [Op::Add, Op::Mul, Op::Sub][spec.c as usize % 3].clone();
                g.add_op(&name, op, vec![a, b], sa).1
            }
            7 => {
                let bias = g.add_constant(format!("{name}.c"), Tensor::zeros(vec![1, c, 1, 1]));
                let inputs = if spec.c % 2 == 0 { vec![a, bias] } else { vec![bias, a] };
                g.add_op(&name, Op::Add, inputs, sa).1
            }
            8 => {
                let b = maps.iter().cycle().skip(spec.b as usize % maps.len()).take(maps.len()).copied().find(|&t| g.shape(t)[2] == h).unwrap_or(a);
                let cb = g.shape(b)[1];
                g.add_op(&name, Op::Concat { axis: 1 }, vec![a, b], vec![1, c + cb, h, h]).1
            }
            9 => {
                let attrs = PoolAttrs { kernel: [2, 2], strides: [2, 2], pads: [0; 4], dilations: [1, 1], auto_pad: AutoPad::NotSet, ceil_mode: false, count_include_pad: false };
                if h >= 2 {
                    g.add_op(&name, Op::MaxPool(attrs), vec![a], vec![1, c, h / 2, h / 2]).1
                } else {
                    g.add_op(&name, Op::Identity, vec![a], sa).1
                }
            }
            10 => match spec.c % 3 {
                0 => g.add_op(&name, Op::Identity, vec![a], sa).1,
                1 => g.add_op(&name, Op::Dropout { ratio: 0.5 }, vec![a], sa).1,
                _ => {
                    let (_, y) = g.add_op(&name, Op::Flatten { axis: 1 }, vec![a], vec![1, c * h * h]);
                    flats.push(y);
                    last = y;
                    if spec.c & 128 != 0 {
                        g.outputs.push(y);
                    }
                    continue;
                }
            },
            _ => {
                // Work on the 2-D side: a Gemm head, a Relu, or a Reshape back to 4-D.
                let Some(&f) = flats.get(spec.b as usize % flats.len().max(1)) else {
                    let (_, y) = g.add_op(&name, Op::Reshape { shape: vec![1, -1], allowzero: false }, vec![a], vec![1, c * h * h]);
                    flats.push(y);
                    last = y;
                    continue;
                };
                let k = g.shape(f)[1];
                let y = match spec.c % 3 {
                    0 => {
                        let w = g.add_constant(format!("{name}.w"), Tensor::zeros(vec![10, k]));
                        g.add_op(&name, Op::Gemm(GemmAttrs { trans_b: true, ..GemmAttrs::default() }), vec![f, w], vec![1, 10]).1
                    }
                    1 => g.add_op(&name, Op::Relu, vec![f], vec![1, k]).1,
                    _ => g.add_op(&name, Op::Softmax { axis: 1 }, vec![f], vec![1, k]).1,
                };
                flats.push(y);
                last = y;
                if spec.c & 128 != 0 {
                    g.outputs.push(y);
                }
                continue;
            }
        };
        maps.push(out);
        last = out;
        if spec.c & 128 != 0 && !g.outputs.contains(&out) {
            g.outputs.push(out);
        }
    }
    if !g.outputs.contains(&last) {
        g.outputs.push(last);
    }
    g.validate().expect("the generator makes valid graphs");
    g
}

fn check_graph_plan(g: &Graph, gp: &mobilenetc::schedule::GraphPlan) {
    let s = &gp.schedule;
    if let Err(e) = check_plan(&s.buffers, &s.steps, &gp.plan) {
        panic!("{e}\nsteps {:?}\nplan {:?}", s.steps, gp.plan);
    }
    // Every node once, in an order that respects the data flow.
    assert_eq!(s.nodes.len(), g.dag.node_count());
    let mut written = vec![false; s.buffers.len()];
    for (i, step) in s.steps.iter().enumerate() {
        let node = g.node(s.nodes[i]);
        assert_eq!(step.name, node.name);
        for &r in &step.reads {
            assert!(written[r] || g.inputs.contains(&s.tensor_of[r]), "step {i} reads '{}' before it is written", s.buffers[r].name);
        }
        for &w in &step.writes {
            written[w] = true;
        }
        // Only elementwise ops run in place, only views alias.
        if !step.inplace.is_empty() {
            assert!(matches!(node.op, Op::Relu | Op::Clip { .. } | Op::BatchNorm { .. } | Op::Add | Op::Sub | Op::Mul), "{} offers in-place", node.op.name());
        }
        if !step.alias.is_empty() {
            assert!(matches!(node.op, Op::Reshape { .. } | Op::Flatten { .. } | Op::Identity | Op::Dropout { .. }), "{} is a view", node.op.name());
        }
    }
    // Constants are not in the arena; every other used tensor is.
    for (t, b) in s.buffer_of.iter().enumerate() {
        if g.is_constant(t) {
            assert!(b.is_none(), "constant '{}' is in the arena", g.tensor(t).name);
        }
    }
    for &t in g.inputs.iter().chain(&g.outputs) {
        assert!(s.buffer_of[t].is_some());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_plan_safely(specs in prop::collection::vec(node_spec(), 1..40)) {
        let g = build_graph(&specs);
        let gp = plan_graph(&g).unwrap();
        check_graph_plan(&g, &gp);
        // Both candidate orders plan safely, whichever won.
        let topo = g.topo_order().unwrap();
        let mem = memory_order(&g, &topo).unwrap();
        for order in [&topo, &mem] {
            let s = schedule_in_order(&g, order).unwrap();
            let p = plan(&s.buffers, &s.steps).unwrap();
            check_graph_plan(&g, &mobilenetc::schedule::GraphPlan { schedule: s, plan: p, memory_order: false });
        }
        // Deterministic, also across a rebuilt graph.
        prop_assert_eq!(&gp, &plan_graph(&g).unwrap());
        prop_assert_eq!(&gp, &plan_graph(&build_graph(&specs)).unwrap());
    }
}

/// Two branches off one input, joined by a Concat: running each branch to its end before
/// starting the other keeps fewer big tensors alive than alternating between them (which is
/// what a plain index-ordered topological sort does here).
#[test]
fn memory_order_lowers_the_peak_of_branches() {
    let mut g = Graph::new("branches");
    let x = g.add_input("x", vec![1, 4, 8, 8]);
    // Created interleaved so that node-index order alternates between the branches.
    let w = |g: &mut Graph, n: &str, m: usize, c: usize| g.add_constant(n, Tensor::zeros(vec![m, c, 1, 1]));
    let w1 = w(&mut g, "w1", 64, 4);
    let (_, a1) = g.add_op("a1", conv(1, 1, 1), vec![x, w1], vec![1, 64, 8, 8]);
    let w2 = w(&mut g, "w2", 64, 4);
    let (_, b1) = g.add_op("b1", conv(1, 1, 1), vec![x, w2], vec![1, 64, 8, 8]);
    let w3 = w(&mut g, "w3", 4, 64);
    let (_, a2) = g.add_op("a2", conv(1, 1, 1), vec![a1, w3], vec![1, 4, 8, 8]);
    let w4 = w(&mut g, "w4", 4, 64);
    let (_, b2) = g.add_op("b2", conv(1, 1, 1), vec![b1, w4], vec![1, 4, 8, 8]);
    let (_, y) = g.add_op("cat", Op::Concat { axis: 1 }, vec![a2, b2], vec![1, 8, 8, 8]);
    g.outputs.push(y);
    g.validate().unwrap();

    let topo = g.topo_order().unwrap();
    let s = schedule_in_order(&g, &topo).unwrap();
    let topo_plan = plan(&s.buffers, &s.steps).unwrap();
    let gp = plan_graph(&g).unwrap();
    check_graph_plan(&g, &gp);
    println!("topological: arena {} lower bound {}; chosen: arena {} lower bound {}", topo_plan.arena_bytes, topo_plan.lower_bound_bytes, gp.plan.arena_bytes, gp.plan.lower_bound_bytes);
    assert!(gp.memory_order, "the memory-aware order should win here");
    assert!(gp.plan.arena_bytes < topo_plan.arena_bytes);
    let names: Vec<&str> = gp.schedule.steps.iter().map(|s| s.name.as_str()).collect();
    assert!(names == ["a1", "a2", "b1", "b2", "cat"] || names == ["b1", "b2", "a1", "a2", "cat"], "{names:?}");
}

#[test]
fn a_wrong_order_is_an_error() {
    let g = build_graph(&[NodeSpec { op: 2, a: 0, b: 0, c: 0 }, NodeSpec { op: 2, a: 1, b: 0, c: 0 }]);
    let mut order = g.topo_order().unwrap();
    order.reverse();
    let err = schedule_in_order(&g, &order).unwrap_err().to_string();
    assert!(err.contains("before 'n0'"), "{err}");
    order.reverse();
    let err = schedule_in_order(&g, &order[..1]).unwrap_err().to_string();
    assert!(err.contains("1 of the graph's 2 nodes"), "{err}");
    let err = schedule_in_order(&g, &[order[0], order[0], order[1]]).unwrap_err().to_string();
    assert!(err.contains("twice"), "{err}");
}
