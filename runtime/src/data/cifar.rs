//! CIFAR-10's binary format: `data_batch_1.bin` .. `data_batch_5.bin` (train), `test_batch.bin`.
//!
//! Each record is one label byte followed by 3072 pixel bytes: the 32×32 red plane, then green,
//! then blue, rows top to bottom — already NCHW, so records are copied as they are.

use std::path::{Path, PathBuf};

use super::error::read_file;
use super::{DataError, Dataset, ImageShape, Result, Split};

/// CIFAR-10's ten classes, in label order (as in `batches.meta.txt`).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Bytes per record: one label, then 3×32×32 pixels.
pub const CIFAR10_RECORD: usize = 1 + 3 * 32 * 32;

const CIFAR_HINT: &str = "download the CIFAR-10 binary version (cifar-10-binary.tar.gz from \
    https://www.cs.toronto.edu/~kriz/cifar.html), extract it, and pass the folder \
    cifar-10-batches-bin (or its parent)";

/// Parses one CIFAR-10 binary batch held in memory into (pixels, labels); `path` names it in errors.
pub fn parse_cifar10_batch(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, Vec<u32>)> {
    if bytes.is_empty() {
        return Err(DataError::malformed(path, "empty CIFAR-10 batch file"));
    }
    let rest = bytes.len() % CIFAR10_RECORD;
    if rest > 0 {
        return Err(DataError::malformed(
            path,
            format!(
                "truncated or not a CIFAR-10 binary batch: {} bytes is not a whole number of \
                 {CIFAR10_RECORD}-byte records ({} records and {} bytes left over)",
                bytes.len(),
                bytes.len() / CIFAR10_RECORD,
                rest
            ),
        ));
    }
    let n = bytes.len() / CIFAR10_RECORD;
    let mut pixels = Vec::with_capacity(n * (CIFAR10_RECORD - 1));
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(CIFAR10_RECORD).enumerate() {
        if rec[0] >= 10 {
            return Err(DataError::malformed(
                path,
                format!("record {i} has label {} (CIFAR-10 labels are 0..9)", rec[0]),
            ));
        }
        labels.push(rec[0] as u32);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok((pixels, labels))
}

impl Dataset {
    /// Loads CIFAR-10 from `dir`, which holds the `.bin` files or a `cifar-10-batches-bin`
    /// folder that does. Class names come from `batches.meta.txt` when it is there.
    pub fn cifar10(dir: &Path, split: Split) -> Result<Dataset> {
        let dir = cifar_dir(dir)?;
        let files: Vec<PathBuf> = match split {
            Split::Train => (1..=5)
                .map(|i| dir.join(format!("data_batch_{i}.bin")))
                .collect(),
            Split::Test => vec![dir.join("test_batch.bin")],
        };
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for f in &files {
            let (p, l) = parse_cifar10_batch(&read_file(f, CIFAR_HINT)?, f)?;
            pixels.extend(p);
            labels.extend(l);
        }
        let class_names = read_class_names(&dir.join("batches.meta.txt"))
            .unwrap_or_else(|| CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect());
        Dataset::new(
            format!("cifar10 {split} ({})", dir.display()),
            ImageShape::new(3, 32, 32),
            pixels,
            labels,
            class_names,
        )
    }
}

/// `dir` itself if it holds the batches, else its `cifar-10-batches-bin` sub-folder.
fn cifar_dir(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(DataError::Missing {
            path: dir.to_path_buf(),
            hint: CIFAR_HINT.to_string(),
        });
    }
    let sub = dir.join("cifar-10-batches-bin");
    if !dir.join("test_batch.bin").is_file() && sub.is_dir() {
        return Ok(sub);
    }
    Ok(dir.to_path_buf())
}

/// Ten non-empty lines of `batches.meta.txt`, or `None` (the built-in names are then used).
fn read_class_names(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    (names.len() == 10).then_some(names)
}
