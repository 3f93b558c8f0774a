//! ONNX → graph IR. (API contract; the import helper fills it in.)

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::graph::Graph;

/// How to import: values for symbolic dimensions and the limits that protect the machine.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Values of symbolic dimensions by name (`--dim batch=1`).
    pub dims: BTreeMap<String, usize>,
    /// The value of a symbolic leading (batch) dimension not named in `dims`.
    pub batch: usize,
    /// Refuse a model whose tensors would need more bytes than this, before allocating.
    pub max_bytes: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { dims: BTreeMap::new(), batch: 1, max_bytes: 4 << 30 }
    }
}

/// Decodes and imports an ONNX file; errors name the file.
pub fn import_file(path: &Path, opts: &ImportOptions) -> Result<Graph> {
    let _ = (path, opts);
    Err(Error::Invalid("import not implemented yet".into()))
}

/// Imports an ONNX model from bytes.
pub fn import_bytes(bytes: &[u8], opts: &ImportOptions) -> Result<Graph> {
    let _ = (bytes, opts);
    Err(Error::Invalid("import not implemented yet".into()))
}
