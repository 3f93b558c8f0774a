//! The MobileNet v1 constructor (paper Table 1) and its comparison variants.
//! (API contract; the constructor helper fills it in.)

use crate::error::{Error, Result};
use crate::graph::Graph;

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
        MobileNetConfig { alpha: 1.0, resolution: 224, classes: 1000, channels: 3, variant: Variant::Standard, seed: 0, batch: 1 }
    }
}

/// Builds the network with BatchNorm after every conv and ReLU6 as Clip(0, 6), one input
/// named `input` of shape [batch, channels, resolution, resolution], output `output` (softmax).
pub fn mobilenet_v1(cfg: &MobileNetConfig) -> Result<Graph> {
    let _ = cfg;
    Err(Error::Invalid("constructor not implemented yet".into()))
}
