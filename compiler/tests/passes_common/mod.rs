//! Shared by the pass tests: a small graph builder with random weights and a check that a
//! rewritten graph computes what the original did (reference evaluator, random inputs).
#![allow(dead_code)]

use mobilenetc::eval::{evaluate, max_rel_diff};
use mobilenetc::graph::{Activation, AutoPad, ConvAttrs, GemmAttrs, Graph, Op, Tensor, TensorId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The tolerance every pass test holds: max |after − before| / max |before| per output.
pub const TOL: f64 = 1e-5;

pub struct Builder {
    pub g: Graph,
    pub rng: StdRng,
    count: usize,
}

impl Builder {
    pub fn new(seed: u64) -> Self {
        Builder { g: Graph::new("test"), rng: StdRng::seed_from_u64(seed), count: 0 }
    }

    fn name(&mut self, base: &str) -> String {
        self.count += 1;
        format!("{base}{}", self.count)
    }

    pub fn random(&mut self, shape: &[usize], lo: f32, hi: f32) -> Tensor {
        let n = shape.iter().product();
        Tensor::new(shape.to_vec(), (0..n).map(|_| self.rng.random_range(lo..hi)).collect())
    }

    pub fn input(&mut self, name: &str, shape: &[usize]) -> TensorId {
        self.g.add_input(name, shape.to_vec())
    }

    pub fn constant(&mut self, base: &str, shape: &[usize], lo: f32, hi: f32) -> TensorId {
        let t = self.random(shape, lo, hi);
        let name = self.name(base);
        self.g.add_constant(name, t)
    }

    pub fn op(&mut self, base: &str, op: Op, inputs: Vec<TensorId>, shape: &[usize]) -> TensorId {
        let name = self.name(base);
        self.g.add_op(name, op, inputs, shape.to_vec()).1
    }

    /// A conv with random weights; output shape computed here.
    #[allow(clippy::too_many_arguments)] // reads best as the conv's own parameter list
    pub fn conv(&mut self, x: TensorId, cout: usize, k: usize, stride: usize, pad: usize, group: usize, bias: bool) -> TensorId {
        let xs = self.g.shape(x).to_vec();
        let (n, cin, h, w) = (xs[0], xs[1], xs[2], xs[3]);
        let scale = 1.0 / ((cin / group * k * k) as f32).sqrt();
        let wt = self.constant("w", &[cout, cin / group, k, k], -scale, scale);
        let mut ins = vec![x, wt];
        if bias {
            ins.push(self.constant("b", &[cout], -0.5, 0.5));
        }
        let attrs = ConvAttrs { kernel: [k, k], strides: [stride, stride], pads: [pad; 4], dilations: [1, 1], group, auto_pad: AutoPad::NotSet, activation: Activation::None };
        let oh = (h + 2 * pad - k) / stride + 1;
        let ow = (w + 2 * pad - k) / stride + 1;
        self.op("conv", Op::Conv(attrs), ins, &[n, cout, oh, ow])
    }

    /// BatchNorm with random statistics: scale [0.5, 1.5], bias and mean in [-1, 1] (nonzero
    /// mean), var in [0.5, 2], the given epsilon.
    pub fn bn_eps(&mut self, x: TensorId, epsilon: f32) -> TensorId {
        let shape = self.g.shape(x).to_vec();
        let c = shape[1];
        let ins = vec![x, self.constant("scale", &[c], 0.5, 1.5), self.constant("beta", &[c], -1.0, 1.0), self.constant("mean", &[c], -1.0, 1.0), self.constant("var", &[c], 0.5, 2.0)];
        self.op("bn", Op::BatchNorm { epsilon, momentum: 0.9 }, ins, &shape)
    }

    pub fn bn(&mut self, x: TensorId) -> TensorId {
        self.bn_eps(x, 1e-3)
    }

    pub fn unary(&mut self, x: TensorId, op: Op) -> TensorId {
        let shape = self.g.shape(x).to_vec();
        self.op(&op.name().to_lowercase(), op, vec![x], &shape)
    }

    pub fn relu6(&mut self, x: TensorId) -> TensorId {
        self.unary(x, Op::Clip { min: 0.0, max: 6.0 })
    }

    /// Gemm of x [M, K] with a random B ([K, N], or [N, K] with transB) and optional C [N].
    pub fn gemm(&mut self, x: TensorId, n: usize, trans_b: bool, bias: bool) -> TensorId {
        let xs = self.g.shape(x).to_vec();
        let (m, k) = (xs[0], xs[1]);
        let scale = 1.0 / (k as f32).sqrt();
        let b = if trans_b { self.constant("gw", &[n, k], -scale, scale) } else { self.constant("gw", &[k, n], -scale, scale) };
        let mut ins = vec![x, b];
        if bias {
            ins.push(self.constant("gb", &[n], -0.5, 0.5));
        }
        self.op("gemm", Op::Gemm(GemmAttrs { trans_b, ..GemmAttrs::default() }), ins, &[m, n])
    }

    pub fn output(&mut self, t: TensorId) {
        self.g.outputs.push(t);
    }
}

/// Random inputs for every graph input, in [-2, 2] (so activations clip on both sides).
pub fn random_inputs(g: &Graph, seed: u64) -> Vec<(String, Tensor)> {
    let mut rng = StdRng::seed_from_u64(seed);
    g.inputs
        .iter()
        .map(|&t| {
            let info = g.tensor(t);
            (info.name.clone(), Tensor::new(info.shape.clone(), (0..info.numel()).map(|_| rng.random_range(-2.0f32..2.0)).collect()))
        })
        .collect()
}

/// Evaluates both graphs on the same random inputs; asserts the rewritten one is valid and
/// every output agrees within [`TOL`]. Returns the worst relative difference.
pub fn assert_same(before: &Graph, after: &Graph) -> f64 {
    after.validate().expect("the rewritten graph is valid");
    let owned = random_inputs(before, 7);
    let inputs: Vec<(&str, Tensor)> = owned.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let a = evaluate(before, &inputs).expect("the original evaluates");
    let b = evaluate(after, &inputs).expect("the rewritten graph evaluates");
    assert_eq!(a.len(), b.len());
    let names = |g: &Graph| g.outputs.iter().map(|&t| g.tensor(t).name.clone()).collect::<Vec<_>>();
    assert_eq!(names(before), names(after), "graph output names must not change");
    let mut worst = 0.0f64;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let d = max_rel_diff(y, x);
        assert!(d <= TOL, "output {i}: max rel diff {d:e} > {TOL:e}");
        worst = worst.max(d);
    }
    worst
}

/// Runs a pass on a copy; asserts it changed the graph (or not) and kept its meaning.
pub fn check_pass(g: &Graph, pass: fn(&mut Graph) -> mobilenetc::Result<bool>, expect_change: bool) -> Graph {
    let mut after = g.clone();
    let changed = pass(&mut after).expect("the pass runs");
    assert_eq!(changed, expect_change, "pass changed the graph: {changed}, expected {expect_change}");
    assert_same(g, &after);
    after
}

pub fn count(g: &Graph, op: &str) -> usize {
    g.count_op(op)
}

/// The op of the node that writes `t`.
pub fn producer_op(g: &Graph, t: TensorId) -> Op {
    g.node(g.producer(t).expect("produced")).op.clone()
}
