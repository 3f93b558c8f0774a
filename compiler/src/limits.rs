//! Limits that protect the machine from hostile or absurd models: every allocation whose size
//! a model decides (tensors, folded constants, the activation arena) is checked against one
//! byte limit *before* it is made, so a model asking for 2^60 bytes gets an [`Error::Limit`]
//! naming what was too big, never an abort in the allocator.
//!
//! The default fits MobileNet-class models many times over; `--max-bytes` on the CLI (and
//! [`crate::onnx::import::ImportOptions::max_bytes`] in the API) raises or lowers it.

use crate::error::{Error, Result};

/// The default byte limit: 4 GiB per tensor, for the initializers together, and for the arena.
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

/// Checks that `what`, needing `bytes` bytes (None: more than can be counted), fits the limit.
pub fn check(what: &str, bytes: Option<u64>, max_bytes: u64) -> Result<u64> {
    match bytes {
        Some(b) if b <= max_bytes => Ok(b),
        Some(b) => Err(Error::Limit(format!("{what} needs {b} bytes, more than the limit of {max_bytes} bytes; refusing to allocate it (raise the limit with --max-bytes)"))),
        None => Err(Error::Limit(format!("{what} needs more bytes than can be counted; refusing to allocate it"))),
    }
}

/// Bytes of `len` f32 values, None on overflow.
pub fn f32_bytes(len: usize) -> Option<u64> {
    (len as u64).checked_mul(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_and_over_the_limit() {
        assert_eq!(check("x", Some(10), 10).unwrap(), 10);
        let e = check("the arena", Some(11), 10).unwrap_err();
        assert!(matches!(e, Error::Limit(_)) && e.to_string().contains("the arena needs 11 bytes"), "{e}");
        assert!(check("x", None, u64::MAX).is_err());
        assert_eq!(f32_bytes(usize::MAX), None);
    }
}
