//! One entry point for the CLI's `--data` argument.

use std::path::Path;

use super::{DataError, Dataset, ImageShape, Result, Split};

const SPECS: &str = "`sample` (the shipped Fashion-MNIST sample), `fashion-mnist` (Debian's \
    dataset-fashion-mnist), `cifar10` (./data/cifar-10-batches-bin), or a folder: CIFAR-10 \
    binary batches, IDX files (MNIST naming), or images in train/<class>/ and test/<class>/";

/// Opens a dataset named by `spec`:
/// - `sample` or `fashion-mnist-sample`: the embedded Fashion-MNIST sample;
/// - `fashion-mnist`: Debian's `dataset-fashion-mnist` files;
/// - `mnist`: `./data/mnist` (IDX files);
/// - `cifar10`: `./data/cifar-10-batches-bin` (or `./data/cifar10`);
/// - a folder holding CIFAR-10 batches, or IDX files (`train-images-idx3-ubyte[.gz]`, ...;
///   Fashion-MNIST class names if the folder's name contains "fashion"), or images in
///   `train/<class>/` and `test/<class>/` (`val/` also counts as test), or images directly in
///   `<class>/` sub-folders (then only the train split exists).
///
/// `input` is the model's input; only image folders use it (decoded photos are resized to it
/// at load time, as 1 or 3 channels), the fixed-size formats keep their own shape and the
/// [`super::Loader`] fits them.
pub fn open(spec: &str, split: Split, input: ImageShape) -> Result<Dataset> {
    match spec {
        "sample" | "fashion-mnist-sample" => return Dataset::fashion_mnist_sample(split),
        "fashion-mnist" | "fashion_mnist" | "fashionmnist" => {
            return Dataset::fashion_mnist_system(split)
        }
        "mnist" => return Dataset::mnist(Path::new("data/mnist"), split),
        "cifar10" | "cifar-10" => {
            let dir = ["data/cifar-10-batches-bin", "data/cifar10"]
                .iter()
                .map(Path::new)
                .find(|p| p.is_dir())
                .unwrap_or(Path::new("data/cifar-10-batches-bin"));
            return Dataset::cifar10(dir, split);
        }
        _ => {}
    }
    let dir = Path::new(spec);
    if !dir.is_dir() {
        return Err(DataError::Missing {
            path: dir.to_path_buf(),
            hint: format!("--data takes {SPECS}"),
        });
    }
    let has = |name: &str| dir.join(name).exists();
    if has("test_batch.bin") || has("data_batch_1.bin") || has("cifar-10-batches-bin") {
        return Dataset::cifar10(dir, split);
    }
    let idx = [
        "train-images-idx3-ubyte",
        "train-images-idx3-ubyte.gz",
        "t10k-images-idx3-ubyte",
        "t10k-images-idx3-ubyte.gz",
    ];
    if idx.iter().any(|n| has(n)) {
        let fashion = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().to_lowercase()));
        return if fashion.is_some_and(|n| n.contains("fashion")) {
            Dataset::fashion_mnist(dir, split)
        } else {
            Dataset::mnist(dir, split)
        };
    }
    let channels = if input.channels == 1 { 1 } else { 3 };
    let shape = ImageShape::new(channels, input.height, input.width);
    let sub = match split {
        Split::Train => vec!["train"],
        Split::Test => vec!["test", "val"],
    };
    if let Some(d) = sub.iter().map(|s| dir.join(s)).find(|p| p.is_dir()) {
        return Dataset::image_folder(&d, shape);
    }
    if has("train") || has("test") {
        return Err(DataError::Missing {
            path: dir.join(sub[0]),
            hint: format!(
                "this image folder has no {split} split; put its images in {}/<class>/",
                sub[0]
            ),
        });
    }
    match split {
        Split::Train => Dataset::image_folder(dir, shape),
        Split::Test => Err(DataError::Missing {
            path: dir.join("test"),
            hint: "this image folder has only class sub-folders (used for training); \
                   put held-out images in test/<class>/ beside train/<class>/"
                .into(),
        }),
    }
}
