//! IDX files (MNIST, Fashion-MNIST): `idx3-ubyte` images and `idx1-ubyte` labels, gzipped or not.
//!
//! Format: two zero bytes, a type byte (0x08 = unsigned byte, the only type these datasets
//! use), the number of dimensions, then each dimension as a big-endian u32, then the data.
//! Whether a file is gzipped is decided by its first two bytes (0x1f 0x8b), not its name.
//! Only as many bytes as the header announces are decompressed, so a corrupt header cannot
//! make us inflate gigabytes; truncated data and trailing bytes are both errors.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::error::read_file;
use super::{DataError, Dataset, ImageShape, Result, Split};

/// Fashion-MNIST's ten classes, in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Where Debian's `dataset-fashion-mnist` package installs the files.
pub const FASHION_MNIST_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

const FASHION_HINT: &str = "Fashion-MNIST is in Debian's package dataset-fashion-mnist \
    (`apt-get install dataset-fashion-mnist` puts it in /usr/share/datasets/fashion-mnist), \
    or download the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist";
const MNIST_HINT: &str = "download the four MNIST *-ubyte.gz files (train-images-idx3-ubyte.gz, \
    train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) into this folder";

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Decodes an IDX file held in memory (gzipped or raw); `path` only names it in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        parse_stream(MultiGzDecoder::new(bytes), path, true)
    } else {
        parse_stream(bytes, path, false)
    }
}

/// Reads and decodes one IDX file.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    parse_idx(&read_file(path, "")?, path)
}

fn parse_stream(mut r: impl Read, path: &Path, gz: bool) -> Result<IdxArray> {
    let what = if gz { "gzipped IDX file" } else { "IDX file" };
    let fail = |e: std::io::Error, at: &str| -> DataError {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            DataError::malformed(path, format!("truncated {what}: it ends inside the {at}"))
        } else {
            DataError::malformed(path, format!("cannot read {what} ({at}): {e}"))
        }
    };
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)
        .map_err(|e| fail(e, "magic number"))?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::malformed(
            path,
            format!(
                "not an IDX file: magic bytes {:02x} {:02x} should be 00 00",
                magic[0], magic[1]
            ),
        ));
    }
    if magic[2] != 0x08 {
        return Err(DataError::malformed(
            path,
            format!(
                "IDX element type 0x{:02x} is not supported (only 0x08, unsigned byte)",
                magic[2]
            ),
        ));
    }
    let ndim = magic[3] as usize;
    if ndim == 0 {
        return Err(DataError::malformed(path, "IDX file with zero dimensions"));
    }
    let mut dims = Vec::with_capacity(ndim);
    let mut count: usize = 1;
    for _ in 0..ndim {
        let mut d = [0u8; 4];
        r.read_exact(&mut d)
            .map_err(|e| fail(e, "dimension header"))?;
        let d = u32::from_be_bytes(d) as usize;
        count = count
            .checked_mul(d)
            .filter(|&c| c <= 1 << 34)
            .ok_or_else(|| {
                DataError::malformed(path, format!("IDX dimensions {dims:?}×{d} are too large"))
            })?;
        dims.push(d);
    }
    let mut data = Vec::new();
    let got = r
        .by_ref()
        .take(count as u64)
        .read_to_end(&mut data)
        .map_err(|e| fail(e, "data"))?;
    if got < count {
        return Err(DataError::malformed(
            path,
            format!(
                "truncated {what}: header {dims:?} announces {count} bytes of data, found {got}"
            ),
        ));
    }
    let mut extra = [0u8; 1];
    match r.read(&mut extra) {
        Ok(0) => {}
        Ok(_) => {
            return Err(DataError::malformed(
                path,
                format!("{what} has bytes after the {count} that its header {dims:?} announces"),
            ))
        }
        Err(e) => return Err(fail(e, "end of data")),
    }
    Ok(IdxArray { dims, data })
}

impl Dataset {
    /// Loads an IDX image file (N×H×W, one channel) and an IDX label file (N).
    /// The number of classes is the largest label + 1 unless `class_names` is given.
    pub fn from_idx(
        images: &Path,
        labels: &Path,
        class_names: Option<Vec<String>>,
    ) -> Result<Dataset> {
        let img = read_idx(images)?;
        let lab = read_idx(labels)?;
        if img.dims.len() != 3 {
            return Err(DataError::malformed(
                images,
                format!(
                    "an image file must have 3 dimensions (N, H, W), this one has {:?}",
                    img.dims
                ),
            ));
        }
        if lab.dims.len() != 1 {
            return Err(DataError::malformed(
                labels,
                format!(
                    "a label file must have 1 dimension (N), this one has {:?}",
                    lab.dims
                ),
            ));
        }
        let (n, h, w) = (img.dims[0], img.dims[1], img.dims[2]);
        if lab.dims[0] != n {
            return Err(DataError::malformed(
                labels,
                format!(
                    "{} labels for {n} images in {}",
                    lab.dims[0],
                    images.display()
                ),
            ));
        }
        if h == 0 || w == 0 {
            return Err(DataError::malformed(
                images,
                format!("images of size {h}×{w}"),
            ));
        }
        let labels_u32: Vec<u32> = lab.data.iter().map(|&l| l as u32).collect();
        let class_names = match class_names {
            Some(names) => {
                if let Some((i, &l)) = lab
                    .data
                    .iter()
                    .enumerate()
                    .find(|&(_, &l)| l as usize >= names.len())
                {
                    return Err(DataError::malformed(
                        labels,
                        format!(
                            "label {i} is {l}, but the dataset has {} classes",
                            names.len()
                        ),
                    ));
                }
                names
            }
            None => {
                let k = lab.data.iter().copied().max().map_or(0, |m| m as usize + 1);
                (0..k).map(|c| c.to_string()).collect()
            }
        };
        Dataset::new(
            images.display().to_string(),
            ImageShape::new(1, h, w),
            img.data,
            labels_u32,
            class_names,
        )
    }

    /// Fashion-MNIST from a folder holding the standard file names (`train-images-idx3-ubyte`,
    /// `t10k-labels-idx1-ubyte`, ..., each optionally `.gz`).
    pub fn fashion_mnist(dir: &Path, split: Split) -> Result<Dataset> {
        let names = FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut d = load_idx_pair(dir, split, Some(names), FASHION_HINT)?;
        d.name = format!("fashion-mnist {split} ({})", dir.display());
        Ok(d)
    }

    /// Fashion-MNIST as installed by Debian's `dataset-fashion-mnist` package.
    pub fn fashion_mnist_system(split: Split) -> Result<Dataset> {
        Dataset::fashion_mnist(Path::new(FASHION_MNIST_SYSTEM_DIR), split)
    }

    /// MNIST from a folder holding the standard file names (optionally `.gz`); classes "0".."9".
    pub fn mnist(dir: &Path, split: Split) -> Result<Dataset> {
        let names = (0..10).map(|c| c.to_string()).collect();
        let mut d = load_idx_pair(dir, split, Some(names), MNIST_HINT)?;
        d.name = format!("mnist {split} ({})", dir.display());
        Ok(d)
    }
}

/// The image and label files of a split in `dir`: the standard names, raw or gzipped, also the
/// `train-images.idx3-ubyte` spelling some mirrors use.
fn load_idx_pair(
    dir: &Path,
    split: Split,
    names: Option<Vec<String>>,
    hint: &str,
) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(DataError::Missing {
            path: dir.to_path_buf(),
            hint: hint.to_string(),
        });
    }
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images = find_file(dir, prefix, "images", "idx3-ubyte", hint)?;
    let labels = find_file(dir, prefix, "labels", "idx1-ubyte", hint)?;
    Dataset::from_idx(&images, &labels, names)
}

fn find_file(dir: &Path, prefix: &str, kind: &str, suffix: &str, hint: &str) -> Result<PathBuf> {
    let stems = [
        format!("{prefix}-{kind}-{suffix}"),
        format!("{prefix}-{kind}.{suffix}"),
    ];
    for stem in &stems {
        for name in [stem.clone(), format!("{stem}.gz")] {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(DataError::Missing {
        path: dir.join(format!("{}[.gz]", stems[0])),
        hint: hint.to_string(),
    })
}

/// Encodes an IDX array of unsigned bytes (raw, not gzipped): used by tests and by the script
/// that cut the shipped sample.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
