//! Support types shared by generated models: the aligned static weight blob, the weights
//! view (static, borrowed without copying, or owned), disjoint arena views, and the error type.
//!
//! Weights are one blob of little-endian f32, each layer's slot starting on a 64-byte
//! boundary, in the layout the kernels read (packed by the compiler).

use std::fmt;
use std::path::{Path, PathBuf};

/// A byte blob aligned to 64 bytes, so that `&'static` weights embedded with a byte-string
/// literal (or `include_bytes!`) can be read as `f32` without copying.
#[repr(C, align(64))]
pub struct AlignedBytes<const N: usize>(pub [u8; N]);

impl<const N: usize> AlignedBytes<N> {
    pub const fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A model's weights: borrowed from static memory (flash, the binary) or owned.
#[derive(Clone, Debug)]
pub enum Weights {
    Static(&'static [f32]),
    Owned(Vec<f32>),
}

impl Weights {
    /// Borrows static little-endian f32 bytes without copying when they are 4-byte aligned
    /// and the target is little-endian; otherwise decodes a copy (same values either way).
    pub fn from_static(bytes: &'static [u8]) -> Weights {
        if cfg!(target_endian = "little") && bytes.len().is_multiple_of(4) {
            // SAFETY: every bit pattern is a valid f32, and `align_to` only puts correctly
            // aligned, whole f32s in the middle slice.
            let (head, floats, tail) = unsafe { bytes.align_to::<f32>() };
            if head.is_empty() && tail.is_empty() {
                return Weights::Static(floats);
            }
        }
        Weights::Owned(decode_le(bytes))
    }

    /// Decodes little-endian f32 bytes supplied at run time; `expected` is the blob's length in
    /// bytes that the model was compiled for.
    pub fn from_bytes(bytes: &[u8], expected: usize) -> Result<Weights, ModelError> {
        if bytes.len() != expected {
            return Err(ModelError::WeightsLength { expected, got: bytes.len() });
        }
        Ok(Weights::Owned(decode_le(bytes)))
    }

    /// Reads a weight file written by `mobilenetc build` (the same layout as the embedded blob).
    pub fn from_file(path: impl AsRef<Path>, expected: usize) -> Result<Weights, ModelError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        Weights::from_bytes(&bytes, expected)
    }

    pub fn as_slice(&self) -> &[f32] {
        match self {
            Weights::Static(s) => s,
            Weights::Owned(v) => v,
        }
    }

    /// Whether the weights are read in place from static memory.
    pub fn is_static(&self) -> bool {
        matches!(self, Weights::Static(_))
    }
}

fn decode_le(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Encodes f32 values as the little-endian blob that [`Weights`] reads.
pub fn encode_le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Splits the arena into `N` read-only input views and one writable output view.
///
/// Each range is `(offset, len)` in f32 elements. The memory plan guarantees that an output
/// never overlaps a live input; a violation is a compiler bug, hence the panic.
pub fn split_io<const N: usize>(arena: &mut [f32], inputs: [(usize, usize); N], out: (usize, usize)) -> ([&[f32]; N], &mut [f32]) {
    let (left, rest) = arena.split_at_mut(out.0);
    let (y, right) = rest.split_at_mut(out.1);
    let (left, right): (&[f32], &[f32]) = (left, right);
    let end = out.0 + out.1;
    let xs = std::array::from_fn(|i| {
        let (o, n) = inputs[i];
        if o + n <= out.0 {
            &left[o..o + n]
        } else if o >= end {
            &right[o - end..o - end + n]
        } else {
            panic!("arena views overlap: input {o}+{n} and output {}+{}", out.0, out.1)
        }
    });
    (xs, y)
}

/// What can go wrong when running a generated model or loading its weights.
#[derive(Debug)]
pub enum ModelError {
    /// The input slice does not have the length the model was compiled for.
    InputLength { expected: usize, got: usize },
    /// The weight bytes do not have the length the model was compiled for.
    WeightsLength { expected: usize, got: usize },
    Io { path: PathBuf, source: std::io::Error },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::InputLength { expected, got } => write!(f, "input has {got} values, the model takes {expected}"),
            ModelError::WeightsLength { expected, got } => {
                write!(f, "weights have {got} bytes, the model was compiled for {expected} (was the weight file written for this model?)")
            }
            ModelError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for ModelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ModelError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BLOB: AlignedBytes<8> = AlignedBytes([0, 0, 128, 63, 0, 0, 0, 64]);

    #[test]
    fn static_weights_are_borrowed_in_place() {
        let w = Weights::from_static(BLOB.as_bytes());
        assert_eq!(w.as_slice(), &[1.0, 2.0]);
        assert_eq!(w.is_static(), cfg!(target_endian = "little"));
        if let Weights::Static(s) = w {
            assert_eq!(s.as_ptr() as usize, BLOB.0.as_ptr() as usize);
        }
    }

    #[test]
    fn bytes_of_the_wrong_length_are_an_error() {
        let err = Weights::from_bytes(&[0; 7], 8).unwrap_err();
        assert!(err.to_string().contains("7 bytes"), "{err}");
        let ok = Weights::from_bytes(&encode_le(&[3.5, -1.0]), 8).unwrap();
        assert_eq!(ok.as_slice(), &[3.5, -1.0]);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = Weights::from_file("/nonexistent/w.bin", 8).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/w.bin"), "{err}");
    }

    #[test]
    fn split_io_gives_disjoint_views() {
        let mut a: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let ([x, z], y) = split_io(&mut a, [(0, 2), (8, 2)], (3, 4));
        assert_eq!(x, &[0.0, 1.0]);
        assert_eq!(z, &[8.0, 9.0]);
        y.fill(-1.0);
        assert_eq!(a[3..7], [-1.0; 4]);
    }

    #[test]
    #[should_panic(expected = "overlap")]
    fn split_io_refuses_overlap() {
        let mut a = vec![0.0f32; 10];
        let _ = split_io(&mut a, [(2, 3)], (4, 2));
    }
}
