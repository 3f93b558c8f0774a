//! Graph IR → ONNX ModelProto. (API contract; the constructor/export helper fills it in.)

use std::path::Path;

use mobilenetc_runtime::onnx::ModelProto;

use crate::error::{Error, Result};
use crate::graph::Graph;

#[derive(Clone, Debug)]
pub struct ExportOptions {
    /// Write the batch dimension of inputs and outputs as this symbolic name (None: fixed).
    pub symbolic_batch: Option<String>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions { symbolic_batch: Some("batch".into()) }
    }
}

pub fn to_model_proto(g: &Graph, opts: &ExportOptions) -> Result<ModelProto> {
    let _ = (g, opts);
    Err(Error::Invalid("export not implemented yet".into()))
}

/// Writes the model atomically (temporary file, fsync, rename).
pub fn export_file(g: &Graph, path: &Path, opts: &ExportOptions) -> Result<()> {
    let _ = (g, path, opts);
    Err(Error::Invalid("export not implemented yet".into()))
}
