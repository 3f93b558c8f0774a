//! The Fashion-MNIST sample shipped in `data/fashion-mnist-sample/` (5000 training and 1000 test
//! images, see its README and LICENSE), embedded in the runtime so that training works on a
//! fresh machine from any working directory. `include_bytes!` costs nothing in binaries that
//! never call [`Dataset::fashion_mnist_sample`]: the linker drops the unused bytes.

use std::path::Path;

use super::idx::{parse_idx, FASHION_MNIST_CLASSES};
use super::{DataError, Dataset, ImageShape, Result, Split};

const TRAIN_IMAGES: &[u8] =
    include_bytes!("../../../data/fashion-mnist-sample/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] =
    include_bytes!("../../../data/fashion-mnist-sample/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] =
    include_bytes!("../../../data/fashion-mnist-sample/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] =
    include_bytes!("../../../data/fashion-mnist-sample/t10k-labels-idx1-ubyte.gz");

impl Dataset {
    /// The embedded Fashion-MNIST sample: 5000 training or 1000 test images, 1×28×28.
    pub fn fashion_mnist_sample(split: Split) -> Result<Dataset> {
        let (images, labels, stem) = match split {
            Split::Train => (TRAIN_IMAGES, TRAIN_LABELS, "train"),
            Split::Test => (TEST_IMAGES, TEST_LABELS, "t10k"),
        };
        let ipath = format!("data/fashion-mnist-sample/{stem}-images-idx3-ubyte.gz (embedded)");
        let lpath = format!("data/fashion-mnist-sample/{stem}-labels-idx1-ubyte.gz (embedded)");
        let img = parse_idx(images, Path::new(&ipath))?;
        let lab = parse_idx(labels, Path::new(&lpath))?;
        let (&[n, h, w], &[m]) = (img.dims.as_slice(), lab.dims.as_slice()) else {
            return Err(DataError::malformed(
                Path::new(&ipath),
                "embedded sample has unexpected dimensions",
            ));
        };
        if n != m {
            return Err(DataError::malformed(
                Path::new(&lpath),
                format!("{m} labels for {n} images"),
            ));
        }
        Dataset::new(
            format!("fashion-mnist sample {split} (embedded)"),
            ImageShape::new(1, h, w),
            img.data,
            lab.data.iter().map(|&l| l as u32).collect(),
            FASHION_MNIST_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        )
    }
}
