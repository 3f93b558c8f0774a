//! Datasets, preprocessing, seeded augmentation and batching for training.
//!
//! Every source (CIFAR-10 binary batches, IDX files of MNIST / Fashion-MNIST, a folder of
//! PNG/JPEG images with one sub-folder per class, and the Fashion-MNIST sample the repository
//! ships) loads into one [`Dataset`]: 8-bit pixels in NCHW order plus `u32` labels. Pixel value
//! `p` stands for the intensity `p / 255` in [0, 1]; [`Dataset::image_f32`] and
//! [`Dataset::to_f32`] give those f32 values. Pixels stay 8-bit in memory because all these
//! formats are 8-bit and the full CIFAR-10 training set would take 614 MB as f32 (154 MB as u8).
//!
//! A [`Loader`] turns a dataset into batches of what a model asks for (channel count,
//! resolution, normalization, layout), with per-epoch shuffling and seeded augmentation
//! (random crop with zero padding, horizontal flip). The same seed gives the same batches;
//! epoch `e`'s batches depend only on `(seed, e)`, so a resumed run sees the same data.
//!
//! [`open`] resolves the CLI's `--data` argument (`sample`, `fashion-mnist`, `cifar10`, a path).

mod cifar;
mod error;
mod folder;
mod idx;
mod loader;
mod open;
mod preprocess;
mod resize;
mod rng;
mod sample;

pub use cifar::{parse_cifar10_batch, CIFAR10_CLASSES, CIFAR10_RECORD};
pub use error::{DataError, Result};
pub use folder::{decode_image, load_image, DecodedImage};
pub use idx::{
    encode_idx, parse_idx, read_idx, IdxArray, FASHION_MNIST_CLASSES, FASHION_MNIST_SYSTEM_DIR,
};
pub use loader::{Batch, Epoch, Layout, Loader, LoaderConfig};
pub use open::open;
pub use preprocess::{Augment, AugmentDraw, Fit, Normalize};
pub use resize::{resize_bilinear, Resizer};
pub use rng::SplitMix64;

/// Which half of a dataset with a fixed train/test split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

/// Channels, height and width of one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageShape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ImageShape {
    pub const fn new(channels: usize, height: usize, width: usize) -> Self {
        ImageShape {
            channels,
            height,
            width,
        }
    }

    /// Values in one image.
    pub const fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.channels, self.height, self.width)
    }
}

/// Labelled images held in memory.
///
/// Invariants (kept by every constructor): `pixels.len() == labels.len() * shape.len()` and
/// every label is below `class_names.len()`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Where the data came from, for messages ("fashion-mnist train", a path, ...).
    pub name: String,
    /// Shape of every image.
    pub shape: ImageShape,
    /// `len × C × H × W` pixels, NCHW; `p` means intensity `p / 255`.
    pub pixels: Vec<u8>,
    /// One label per image, each below `class_names.len()`.
    pub labels: Vec<u32>,
    /// Class names indexed by label.
    pub class_names: Vec<String>,
}

impl Dataset {
    /// Builds a dataset, checking the invariants.
    pub fn new(
        name: impl Into<String>,
        shape: ImageShape,
        pixels: Vec<u8>,
        labels: Vec<u32>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let name = name.into();
        if shape.is_empty() {
            return Err(DataError::Config(format!(
                "{name}: image shape {shape} is empty"
            )));
        }
        if pixels.len() != labels.len() * shape.len() {
            return Err(DataError::Config(format!(
                "{name}: {} pixels do not make {} images of {shape}",
                pixels.len(),
                labels.len()
            )));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= class_names.len())
        {
            return Err(DataError::Config(format!(
                "{name}: image {i} has label {l} but there are {} classes",
                class_names.len()
            )));
        }
        Ok(Dataset {
            name,
            shape,
            pixels,
            labels,
            class_names,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The 8-bit pixels of image `i` (C×H×W).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.shape.len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Image `i` as f32 in [0, 1] (C×H×W).
    pub fn image_f32(&self, i: usize) -> Vec<f32> {
        self.image(i).iter().map(|&p| p as f32 / 255.0).collect()
    }

    /// All images as one f32 NCHW tensor in [0, 1]. Large: prefer a [`Loader`] for training.
    pub fn to_f32(&self) -> Vec<f32> {
        self.pixels.iter().map(|&p| p as f32 / 255.0).collect()
    }

    /// Keeps only the first `n` images (no-op when there are fewer).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.pixels.truncate(n * self.shape.len());
        }
    }

    /// How many images carry each label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}
