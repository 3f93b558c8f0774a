//! The MobileNet v1 constructor (paper Table 1) and its two comparison variants.
//!
//! # The network
//!
//! `conv0` (3×3, stride 2, 32 filters), then 13 depthwise-separable blocks — each a depthwise
//! 3×3 conv and a pointwise 1×1 conv, both followed by BatchNorm and ReLU6 — then global
//! average pooling, a fully connected layer (Gemm, `transB = 1`, with bias) and softmax.
//! Block strides and widths are Table 1's, with its known typo fixed: the depthwise conv on the
//! 7×7×1024 input has stride 1 (as in TF-slim and Keras; only that gives the paper's totals).
//!
//! | block | 1 | 2 | 3 | 4 | 5 | 6 | 7–11 | 12 | 13 |
//! |---|---|---|---|---|---|---|---|---|---|
//! | dw stride | 1 | 2 | 1 | 2 | 1 | 2 | 1 | 2 | 1 |
//! | pw filters | 64 | 128 | 128 | 256 | 256 | 512 | 512 | 1024 | 1024 |
//!
//! Variants: [`Variant::FullConv`] replaces each block by one full 3×3 conv from the block's
//! input to its output channels with the block's stride (Table 4), nodes `blockK_conv`;
//! [`Variant::Shallow`] removes the five 14×14×512 blocks 7–11 (Table 5). Blocks keep their
//! Table 1 numbers, so the shallow network has blocks 1–6, 12, 13.
//!
//! # Conventions (documented choices)
//!
//! - **Width multiplier** α in (0, 1]: every channel count `c` becomes `max(1, floor(c·α))`,
//!   as Keras' `MobileNet(alpha=…)` computes it (`int(filters * alpha)`). α = 0.75/0.5/0.25
//!   give 24/16/8 filters in `conv0` and 768/512/256 before the classifier.
//! - **Resolution** ρ: any multiple of 32 from 32 up; the last feature map is ρ/32 × ρ/32.
//! - **Padding**: explicit symmetric pads of 1 on every 3×3 conv (PyTorch style). For a stride 2
//!   conv on an even input this gives the same output size as TF's 'same' (which pads only
//!   bottom/right); the mult-add and parameter counts are the same.
//! - **No conv bias**: BatchNorm follows every conv. BatchNorm has ε = 1e-3 and momentum 0.99,
//!   like Keras.
//! - **ReLU6** is `Clip(0, 6)`.
//! - **Initialization** from `seed` (one `StdRng` stream, layers in order): conv and FC weights
//!   He-normal, `Normal(0, sqrt(2 / fan_in))` with `fan_in = C_in/group · kH · kW`; the FC bias
//!   `Normal(0, 0.01)`. BatchNorm statistics are random but sane rather than the identity (so
//!   that BatchNorm folding and bias handling are really exercised by tests): scale
//!   `U(0.5, 1.5)`, bias `U(-0.25, 0.25)`, running mean `U(-0.25, 0.25)`, running variance
//!   `U(0.5, 1.5)`.
//!
//! # Names
//!
//! Input `input` [batch, channels, ρ, ρ] (NCHW), output `output` [batch, classes]. Nodes:
//! `conv0`, `conv0_bn`, `conv0_relu6`, `block1_dw`, `block1_dw_bn`, `block1_dw_relu6`,
//! `block1_pw`, …, `pool`, `flatten`, `fc`, `softmax`. Each node's output tensor has the
//! node's name (except `softmax`, which writes `output`); weights are `<node>_w`, the FC bias
//! `fc_b`, BatchNorm tensors `<bn>_scale`, `<bn>_bias`, `<bn>_mean`, `<bn>_var`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::graph::{
    Activation, AutoPad, ConvAttrs, GemmAttrs, Graph, ModelMeta, Op, Tensor, TensorId,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Variant {
    /// The paper's Table 1 body.
    #[default]
    Standard,
    /// Every depthwise-separable block a full 3×3 conv (Table 4).
    FullConv,
    /// The five 14×14×512 blocks removed (Table 5).
    Shallow,
}

impl Variant {
    /// The name used on the command line and in the model's metadata.
    pub fn cli_name(self) -> &'static str {
        match self {
            Variant::Standard => "standard",
            Variant::FullConv => "full-conv",
            Variant::Shallow => "shallow",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MobileNetConfig {
    pub alpha: f32,
    pub resolution: usize,
    pub classes: usize,
    pub channels: usize,
    pub variant: Variant,
    pub seed: u64,
    pub batch: usize,
}

impl Default for MobileNetConfig {
    fn default() -> Self {
        MobileNetConfig {
            alpha: 1.0,
            resolution: 224,
            classes: 1000,
            channels: 3,
            variant: Variant::Standard,
            seed: 0,
            batch: 1,
        }
    }
}

/// BatchNorm epsilon and momentum (Keras' MobileNet values).
pub const BN_EPSILON: f32 = 1e-3;
pub const BN_MOMENTUM: f32 = 0.99;

/// Upper bounds that keep a typo from asking for terabytes (the largest sensible MobileNet
/// is far below each).
const MAX_RESOLUTION: usize = 8192;
const MAX_CLASSES: usize = 1 << 20;
const MAX_CHANNELS: usize = 4096;
const MAX_BATCH: usize = 1 << 16;

/// Table 1's depthwise-separable blocks: (depthwise stride, pointwise filters at α = 1).
const BLOCKS: [(usize, usize); 13] = [
    (1, 64),
    (2, 128),
    (1, 128),
    (2, 256),
    (1, 256),
    (2, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (2, 1024),
    (1, 1024),
];

/// The block numbers (1-based) that the shallow variant drops: the five 14×14×512 blocks.
const SHALLOW_DROPPED: std::ops::RangeInclusive<usize> = 7..=11;

/// A channel count under the width multiplier: `max(1, floor(c·α))` (Keras' rounding). The
/// small epsilon keeps an exact product such as 0.75·32 = 24 from flooring to 23 through
/// f32 → f64 conversion noise.
pub fn scaled_channels(c: usize, alpha: f32) -> usize {
    ((c as f64 * alpha as f64 + 1e-6).floor() as usize).max(1)
}

fn validate(cfg: &MobileNetConfig) -> Result<()> {
    if !(cfg.alpha > 0.0 && cfg.alpha <= 1.0) {
        return Err(Error::Invalid(format!(
            "alpha must be in (0, 1], got {}",
            cfg.alpha
        )));
    }
    if cfg.resolution < 32 || !cfg.resolution.is_multiple_of(32) || cfg.resolution > MAX_RESOLUTION
    {
        return Err(Error::Invalid(format!(
            "resolution must be a multiple of 32 from 32 to {MAX_RESOLUTION} (the network halves it five times), got {}",
            cfg.resolution
        )));
    }
    if cfg.classes == 0 || cfg.classes > MAX_CLASSES {
        return Err(Error::Invalid(format!(
            "classes must be from 1 to {MAX_CLASSES}, got {}",
            cfg.classes
        )));
    }
    if cfg.channels == 0 || cfg.channels > MAX_CHANNELS {
        return Err(Error::Invalid(format!(
            "channels must be from 1 to {MAX_CHANNELS}, got {}",
            cfg.channels
        )));
    }
    if cfg.batch == 0 || cfg.batch > MAX_BATCH {
        return Err(Error::Invalid(format!(
            "batch must be from 1 to {MAX_BATCH}, got {}",
            cfg.batch
        )));
    }
    Ok(())
}

/// Builds the network with BatchNorm after every conv and ReLU6 as Clip(0, 6), one input
/// named `input` of shape [batch, channels, resolution, resolution], output `output` (softmax).
/// Every tensor's shape is set. Invalid parameters give [`Error::Invalid`].
pub fn mobilenet_v1(cfg: &MobileNetConfig) -> Result<Graph> {
    validate(cfg)?;
    let mut b = Builder::new(cfg);

    let x = b.g.add_input(
        "input",
        vec![cfg.batch, cfg.channels, cfg.resolution, cfg.resolution],
    );
    let mut c = scaled_channels(32, cfg.alpha);
    let mut x = b.conv_bn_relu6("conv0", x, c, 3, 2, 1);

    for (i, &(stride, filters)) in BLOCKS.iter().enumerate() {
        let k = i + 1;
        if cfg.variant == Variant::Shallow && SHALLOW_DROPPED.contains(&k) {
            continue;
        }
        let out = scaled_channels(filters, cfg.alpha);
        x = match cfg.variant {
            Variant::Standard | Variant::Shallow => {
                let dw = b.conv_bn_relu6(&format!("block{k}_dw"), x, c, 3, stride, c);
                b.conv_bn_relu6(&format!("block{k}_pw"), dw, out, 1, 1, 1)
            }
            Variant::FullConv => b.conv_bn_relu6(&format!("block{k}_conv"), x, out, 3, stride, 1),
        };
        c = out;
    }

    let n = cfg.batch;
    let (_, pooled) =
        b.g.add_op("pool", Op::GlobalAveragePool, vec![x], vec![n, c, 1, 1]);
    let (_, flat) =
        b.g.add_op("flatten", Op::Flatten { axis: 1 }, vec![pooled], vec![n, c]);
    let w = b.he_normal("fc_w", vec![cfg.classes, c], c);
    let bias = b.normal("fc_b", vec![cfg.classes], 0.01);
    let fc = GemmAttrs {
        trans_b: true,
        ..GemmAttrs::default()
    };
    let (_, logits) = b.g.add_op(
        "fc",
        Op::Gemm(fc),
        vec![flat, w, bias],
        vec![n, cfg.classes],
    );
    let out = b.g.add_tensor("output", vec![n, cfg.classes]);
    b.g.add_node("softmax", Op::Softmax { axis: 1 }, vec![logits], vec![out]);
    b.g.outputs.push(out);

    b.g.validate()?;
    Ok(b.g)
}

/// A short human description of a configuration, e.g. `MobileNet v1 standard α=1 224×224×3 → 1000`.
pub fn describe(cfg: &MobileNetConfig) -> String {
    format!(
        "MobileNet v1 {} α={} {}×{}×{} → {} classes",
        cfg.variant.cli_name(),
        cfg.alpha,
        cfg.resolution,
        cfg.resolution,
        cfg.channels,
        cfg.classes
    )
}

struct Builder {
    g: Graph,
    rng: StdRng,
}

impl Builder {
    fn new(cfg: &MobileNetConfig) -> Self {
        let mut g = Graph::new(format!("mobilenet_v1_{}_{}", cfg.alpha, cfg.resolution));
        g.meta = ModelMeta {
            producer_name: "mobilenetc".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: describe(cfg),
            metadata_props: vec![
                ("mobilenetc.architecture".into(), "mobilenet_v1".into()),
                ("mobilenetc.variant".into(), cfg.variant.cli_name().into()),
                ("mobilenetc.alpha".into(), cfg.alpha.to_string()),
                ("mobilenetc.resolution".into(), cfg.resolution.to_string()),
                ("mobilenetc.classes".into(), cfg.classes.to_string()),
                ("mobilenetc.channels".into(), cfg.channels.to_string()),
                ("mobilenetc.seed".into(), cfg.seed.to_string()),
            ],
            ..ModelMeta::default()
        };
        Builder {
            g,
            rng: StdRng::seed_from_u64(cfg.seed),
        }
    }

    fn normal(&mut self, name: &str, shape: Vec<usize>, std: f32) -> TensorId {
        let dist = Normal::new(0.0f32, std).expect("a positive finite standard deviation");
        let n = shape.iter().product();
        let data = (0..n).map(|_| dist.sample(&mut self.rng)).collect();
        self.g.add_constant(name, Tensor::new(shape, data))
    }

    fn he_normal(&mut self, name: &str, shape: Vec<usize>, fan_in: usize) -> TensorId {
        self.normal(name, shape, (2.0 / fan_in as f32).sqrt())
    }

    fn uniform(&mut self, name: &str, len: usize, lo: f32, hi: f32) -> TensorId {
        let data = (0..len).map(|_| self.rng.random_range(lo..hi)).collect();
        self.g.add_constant(name, Tensor::new(vec![len], data))
    }

    /// A k×k conv (no bias, 'same' pads) from the input's channels to `out`, then BatchNorm
    /// and ReLU6; returns the activation.
    fn conv_bn_relu6(
        &mut self,
        name: &str,
        x: TensorId,
        out: usize,
        k: usize,
        stride: usize,
        group: usize,
    ) -> TensorId {
        let shape = self.g.shape(x).to_vec();
        let (n, c_in, h, w) = (shape[0], shape[1], shape[2], shape[3]);
        let pad = k / 2;
        let (ho, wo) = (
            (h + 2 * pad - k) / stride + 1,
            (w + 2 * pad - k) / stride + 1,
        );
        let fan_in = c_in / group * k * k;
        let weight = self.he_normal(&format!("{name}_w"), vec![out, c_in / group, k, k], fan_in);
        let attrs = ConvAttrs {
            kernel: [k, k],
            strides: [stride, stride],
            pads: [pad; 4],
            dilations: [1, 1],
            group,
            auto_pad: AutoPad::NotSet,
            activation: Activation::None,
        };
        let out_shape = vec![n, out, ho, wo];
        let (_, y) = self
            .g
            .add_op(name, Op::Conv(attrs), vec![x, weight], out_shape.clone());

        let bn = format!("{name}_bn");
        let scale = self.uniform(&format!("{bn}_scale"), out, 0.5, 1.5);
        let bias = self.uniform(&format!("{bn}_bias"), out, -0.25, 0.25);
        let mean = self.uniform(&format!("{bn}_mean"), out, -0.25, 0.25);
        let var = self.uniform(&format!("{bn}_var"), out, 0.5, 1.5);
        let bn_op = Op::BatchNorm {
            epsilon: BN_EPSILON,
            momentum: BN_MOMENTUM,
        };
        let (_, y) = self.g.add_op(
            &bn,
            bn_op,
            vec![y, scale, bias, mean, var],
            out_shape.clone(),
        );
        let (_, y) = self.g.add_op(
            format!("{name}_relu6"),
            Op::Clip { min: 0.0, max: 6.0 },
            vec![y],
            out_shape,
        );
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(g: &Graph) -> Vec<String> {
        g.nodes_in_order()
            .iter()
            .map(|(_, n)| n.name.clone())
            .collect()
    }

    #[test]
    fn standard_network_has_table1_structure() {
        let g = mobilenet_v1(&MobileNetConfig::default()).unwrap();
        assert_eq!(g.count_op("Conv"), 27);
        assert_eq!(g.count_op("BatchNormalization"), 27);
        assert_eq!(g.count_op("Clip"), 27);
        let n = names(&g);
        assert_eq!(
            &n[..6],
            [
                "conv0",
                "conv0_bn",
                "conv0_relu6",
                "block1_dw",
                "block1_dw_bn",
                "block1_dw_relu6"
            ]
        );
        assert_eq!(&n[n.len() - 4..], ["pool", "flatten", "fc", "softmax"]);
        assert_eq!(g.shape(g.inputs[0]), [1, 3, 224, 224]);
        assert_eq!(g.tensor(g.inputs[0]).name, "input");
        assert_eq!(g.tensor(g.outputs[0]).name, "output");
        assert_eq!(g.shape(g.outputs[0]), [1, 1000]);
        // The last feature map is 7×7×1024: block 13's depthwise conv has stride 1.
        let b13 = g.find_node("block13_pw_relu6").unwrap();
        assert_eq!(g.shape(g.node(b13).outputs[0]), [1, 1024, 7, 7]);
        let b12 = g.find_node("block12_dw").unwrap();
        assert_eq!(g.shape(g.node(b12).outputs[0]), [1, 512, 7, 7]);
        match &g.node(b12).op {
            Op::Conv(a) => assert_eq!((a.group, a.strides, a.pads), (512, [2, 2], [1; 4])),
            op => panic!("{op:?}"),
        }
    }

    #[test]
    fn channel_rounding_follows_keras() {
        assert_eq!(scaled_channels(32, 0.75), 24);
        assert_eq!(scaled_channels(1024, 0.25), 256);
        assert_eq!(scaled_channels(32, 0.3), 9);
        assert_eq!(scaled_channels(64, 0.001), 1);
        let g = mobilenet_v1(&MobileNetConfig {
            alpha: 0.5,
            resolution: 128,
            classes: 10,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            g.shape(g.node(g.find_node("conv0").unwrap()).outputs[0]),
            [1, 16, 64, 64]
        );
        assert_eq!(
            g.shape(g.node(g.find_node("block13_pw").unwrap()).outputs[0]),
            [1, 512, 4, 4]
        );
    }

    #[test]
    fn variants_have_their_blocks() {
        let full = mobilenet_v1(&MobileNetConfig {
            variant: Variant::FullConv,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(full.count_op("Conv"), 14);
        let w = full.node(full.find_node("block2_conv").unwrap()).inputs[1];
        assert_eq!(full.shape(w), [128, 64, 3, 3]);
        let shallow = mobilenet_v1(&MobileNetConfig {
            variant: Variant::Shallow,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(shallow.count_op("Conv"), 17);
        assert!(shallow.find_node("block7_dw").is_none());
        assert!(shallow.find_node("block12_dw").is_some());
        assert_eq!(shallow.shape(shallow.outputs[0]), [1, 1000]);
    }

    #[test]
    fn seed_decides_the_weights() {
        let cfg = MobileNetConfig {
            alpha: 0.25,
            resolution: 32,
            classes: 10,
            ..Default::default()
        };
        let a = mobilenet_v1(&cfg).unwrap();
        let b = mobilenet_v1(&cfg).unwrap();
        let c = mobilenet_v1(&MobileNetConfig { seed: 1, ..cfg }).unwrap();
        assert_eq!(a.constants, b.constants);
        assert_ne!(a.constants, c.constants);
    }

    #[test]
    fn he_normal_has_the_right_spread() {
        let g = mobilenet_v1(&MobileNetConfig::default()).unwrap();
        let w = g.node(g.find_node("block13_pw").unwrap()).inputs[1];
        let data = &g.constant(w).unwrap().data;
        let var = data.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / data.len() as f64;
        let expected = 2.0 / 1024.0;
        assert!(
            (var / expected - 1.0).abs() < 0.01,
            "variance {var} vs {expected}"
        );
    }

    #[test]
    fn bad_parameters_are_clear_errors() {
        let bad = [
            (
                MobileNetConfig {
                    alpha: 0.0,
                    ..Default::default()
                },
                "alpha",
            ),
            (
                MobileNetConfig {
                    alpha: 1.5,
                    ..Default::default()
                },
                "alpha",
            ),
            (
                MobileNetConfig {
                    alpha: f32::NAN,
                    ..Default::default()
                },
                "alpha",
            ),
            (
                MobileNetConfig {
                    resolution: 100,
                    ..Default::default()
                },
                "multiple of 32",
            ),
            (
                MobileNetConfig {
                    resolution: 0,
                    ..Default::default()
                },
                "multiple of 32",
            ),
            (
                MobileNetConfig {
                    classes: 0,
                    ..Default::default()
                },
                "classes",
            ),
            (
                MobileNetConfig {
                    channels: 0,
                    ..Default::default()
                },
                "channels",
            ),
            (
                MobileNetConfig {
                    batch: 0,
                    ..Default::default()
                },
                "batch",
            ),
        ];
        for (cfg, word) in bad {
            match mobilenet_v1(&cfg) {
                Err(Error::Invalid(m)) => assert!(m.contains(word), "{m}"),
                other => panic!("{cfg:?}: {other:?}"),
            }
        }
    }
}
