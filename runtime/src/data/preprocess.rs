//! What a model asks of its input: geometry (`Fit`), normalization, and augmentation settings.

use super::{DataError, ImageShape, Result};

/// How a dataset's images are brought to the model's height and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fit {
    /// Same size: as is. Larger by at most 8 pixels in each dimension (MNIST's 28 → 32):
    /// zero padding, centered. Anything else: bilinear resize.
    #[default]
    Auto,
    /// Zero padding, centered (the extra pixel of an odd difference goes bottom/right).
    /// An error if the model's input is smaller than the images.
    Pad,
    /// Bilinear resize (see [`super::resize_bilinear`]) to the model's size.
    Resize,
}

/// The geometry step chosen for a (dataset, model) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Geometry {
    Identity,
    Pad { top: usize, left: usize },
    Resize,
}

impl Fit {
    pub(crate) fn resolve(self, src: ImageShape, dst: ImageShape) -> Result<Geometry> {
        let same = src.height == dst.height && src.width == dst.width;
        let larger = dst.height >= src.height && dst.width >= src.width;
        let pad = Geometry::Pad {
            top: (dst.height - src.height.min(dst.height)) / 2,
            left: (dst.width - src.width.min(dst.width)) / 2,
        };
        Ok(match self {
            _ if same => Geometry::Identity,
            Fit::Auto if larger && dst.height - src.height <= 8 && dst.width - src.width <= 8 => {
                pad
            }
            Fit::Auto | Fit::Resize => Geometry::Resize,
            Fit::Pad if larger => pad,
            Fit::Pad => {
                return Err(DataError::Config(format!(
                    "cannot pad {}×{} images to the model's smaller {}×{} input; use resizing",
                    src.height, src.width, dst.height, dst.width
                )))
            }
        })
    }
}

/// Per-channel normalization `(x − mean[c]) / std[c]`, applied to intensities in [0, 1] after
/// padding and augmentation (so padded pixels become `−mean/std`, as with torchvision's
/// `Pad`/`RandomCrop` followed by `Normalize`). One value broadcasts to every channel.
///
/// The default is the identity (mean 0, std 1): inputs in [0, 1], as the seed's Keras script
/// feeds CIFAR-10 (`x / 255`). Presets give the usual dataset statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Default for Normalize {
    fn default() -> Self {
        Normalize::identity()
    }
}

impl Normalize {
    /// Mean 0, std 1: intensities in [0, 1].
    pub fn identity() -> Self {
        Normalize {
            mean: vec![0.0],
            std: vec![1.0],
        }
    }

    /// Maps [0, 1] to [−1, 1].
    pub fn symmetric() -> Self {
        Normalize {
            mean: vec![0.5],
            std: vec![0.5],
        }
    }

    /// Fashion-MNIST training-set statistics (replicated to every channel).
    pub fn fashion_mnist() -> Self {
        Normalize {
            mean: vec![0.2860],
            std: vec![0.3530],
        }
    }

    /// MNIST training-set statistics.
    pub fn mnist() -> Self {
        Normalize {
            mean: vec![0.1307],
            std: vec![0.3081],
        }
    }

    /// CIFAR-10 training-set statistics, per channel (R, G, B).
    pub fn cifar10() -> Self {
        Normalize {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        }
    }

    /// Per-channel mean and (population) standard deviation of a dataset's intensities.
    pub fn from_dataset(data: &super::Dataset) -> Self {
        let plane = data.shape.height * data.shape.width;
        let c = data.shape.channels;
        let mut sum = vec![0u64; c];
        let mut sq = vec![0u64; c];
        for img in data.pixels.chunks_exact(data.shape.len()) {
            for (ch, px) in img.chunks_exact(plane).enumerate() {
                for &p in px {
                    sum[ch] += p as u64;
                    sq[ch] += (p as u64) * (p as u64);
                }
            }
        }
        let n = (data.len() * plane).max(1) as f64;
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for ch in 0..c {
            let m = sum[ch] as f64 / n / 255.0;
            let v = (sq[ch] as f64 / n / (255.0 * 255.0) - m * m).max(0.0);
            mean.push(m as f32);
            std.push((v.sqrt() as f32).max(1e-6));
        }
        Normalize { mean, std }
    }

    /// (mean, 1/std) for each of `channels`, checking lengths and signs.
    pub(crate) fn per_channel(&self, channels: usize) -> Result<Vec<(f32, f32)>> {
        let pick = |v: &[f32], what: &str, c: usize| -> Result<f32> {
            match v.len() {
                1 => Ok(v[0]),
                n if n == channels => Ok(v[c]),
                n => Err(DataError::Config(format!(
                    "normalization has {n} {what} values for a {channels}-channel input (give 1 or {channels})"
                ))),
            }
        };
        (0..channels)
            .map(|c| {
                let m = pick(&self.mean, "mean", c)?;
                let s = pick(&self.std, "std", c)?;
                if !(s.is_finite() && s > 0.0 && m.is_finite()) {
                    return Err(DataError::Config(format!(
                        "normalization of channel {c}: mean {m}, std {s} (std must be positive and finite)"
                    )));
                }
                Ok((m, 1.0 / s))
            })
            .collect()
    }
}

/// Seeded augmentation, drawn independently for every image of every epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Augment {
    /// Random crop: pad each side with this many zero pixels, then crop back to the model's
    /// size at a uniformly random offset (torchvision's `RandomCrop(size, padding)`). 0 = off.
    pub crop_padding: usize,
    /// Mirror left-right with probability 1/2 (after the crop).
    pub hflip: bool,
}

impl Augment {
    /// No augmentation.
    pub const NONE: Augment = Augment {
        crop_padding: 0,
        hflip: false,
    };
    /// The usual CIFAR recipe: 4-pixel padding with random crop, and horizontal flip.
    pub const STANDARD: Augment = Augment {
        crop_padding: 4,
        hflip: true,
    };

    pub fn is_none(&self) -> bool {
        self.crop_padding == 0 && !self.hflip
    }
}

/// One image's draw: crop offsets into the padded image (each in `0..=2·padding`) and flip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AugmentDraw {
    pub dy: usize,
    pub dx: usize,
    pub flip: bool,
}
