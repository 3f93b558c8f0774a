//! ONNX → graph IR.
//!
//! Decoding (prost) → initializers and inputs (symbolic dims resolved) → model-local functions
//! inlined → a topological walk in which static shape sub-graphs fold into constants and every
//! other node becomes IR ops with its shape inferred at once → ReLU6 normalized → validated.
//! Every unsupported op of a model is reported in one error.

mod attrs;
mod builder;
mod fold;
mod functions;
mod ops;
mod patterns;
mod tensors;

use std::collections::BTreeMap;
use std::path::Path;

use mobilenetc_runtime::onnx::ModelProto;
use prost::Message;

use crate::error::{Error, Result};
use crate::graph::Graph;

pub use builder::MAX_OPSET;

/// How to import: values for symbolic dimensions and the limits that protect the machine.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Values of symbolic dimensions by name (`--dim batch=1`). An unnamed dim can be given
    /// as `INPUT:INDEX` (`--dim input:2=224`).
    pub dims: BTreeMap<String, usize>,
    /// The value of a symbolic leading (batch) dimension not named in `dims`.
    pub batch: usize,
    /// Refuse a model whose tensors would need more bytes than this, before allocating.
    pub max_bytes: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { dims: BTreeMap::new(), batch: 1, max_bytes: crate::limits::DEFAULT_MAX_BYTES }
    }
}

/// Decodes and imports an ONNX file; errors name the file. External data is read from files
/// next to the model.
pub fn import_file(path: &Path, opts: &ImportOptions) -> Result<Graph> {
    let len = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if len > opts.max_bytes {
        return Err(Error::in_file(path, Error::Limit(format!("the file has {len} bytes, more than the limit of {} bytes", opts.max_bytes))));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let dir = path.parent().map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d });
    decode_model(&bytes).and_then(|m| builder::import_model(&m, opts, dir)).map_err(|e| Error::in_file(path, e))
}

/// Imports an ONNX model from bytes (external data cannot be found from bytes alone: such a
/// model is refused with a clear error; use [`import_file`]).
pub fn import_bytes(bytes: &[u8], opts: &ImportOptions) -> Result<Graph> {
    import_model(&decode_model(bytes)?, opts)
}

/// Imports a decoded model.
pub fn import_model(model: &ModelProto, opts: &ImportOptions) -> Result<Graph> {
    builder::import_model(model, opts, None)
}

/// Decodes the whole ModelProto (functions, value_info, metadata included). Truncated or
/// malformed bytes are an [`Error::Decode`], never a panic.
pub fn decode_model(bytes: &[u8]) -> Result<ModelProto> {
    if bytes.is_empty() {
        return Err(Error::Decode("the file is empty".into()));
    }
    ModelProto::decode(bytes).map_err(|e| Error::Decode(format!("the protobuf bytes do not decode as an ONNX ModelProto ({e}); the file is truncated or not an ONNX model")))
}
