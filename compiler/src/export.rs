//! Exporting trained models to ONNX: the source graph (constructed, or imported) with the
//! trained initializers, as a first-class ONNX file.
//!
//! - **What is written**: the graph the model came from, node for node, with every trained
//!   parameter and BatchNorm running statistic in place of its initial value. BatchNorm is
//!   kept with its running statistics (default), or folded into the preceding conv/Gemm
//!   ([`OnnxExportOptions::fold_batchnorm`], the `fold_batchnorm` pass, computed in f64).
//! - **Inputs and outputs**: their names are the source's. For an imported model, the source's
//!   graph input/output declarations (element type and every dimension, symbolic names such as
//!   PyTorch's `batch_size` included) are copied into the exported file, so a deployment that
//!   fed the original model feeds the trained one unchanged; the activations' batch dimension
//!   gets the same symbolic name. A constructed model has a symbolic batch named `batch`.
//! - **Versions**: ONNX IR version [`EXPORT_IR_VERSION`] (8) and default-domain opset
//!   [`EXPORT_OPSET`] (17), whatever the source's (see `onnx::export`).
//! - **Atomic**: written to a temporary file, synced, then renamed over the target, so a crash
//!   while exporting leaves the previous file intact.

use std::path::Path;

use mobilenetc_runtime::onnx::{type_proto, ModelProto, ValueInfoProto};

use crate::error::{Error, Result};
use crate::graph::Graph;
pub use crate::onnx::export::{EXPORT_IR_VERSION, EXPORT_OPSET};
use crate::onnx::export::{to_model_proto, ExportOptions};
use crate::passes::{optimize, PassOptions};
use crate::train::Trainer;

/// How to export a trained model.
#[derive(Clone, Debug, Default)]
pub struct OnnxExportOptions {
    /// Fold every BatchNorm into the conv or Gemm before it (inference-only file).
    pub fold_batchnorm: bool,
    /// The imported source model, whose graph input and output declarations the export keeps.
    pub source: Option<ModelProto>,
}

/// The ONNX model of `graph` (a source graph with trained initializers).
pub fn to_onnx(graph: &Graph, opts: &OnnxExportOptions) -> Result<ModelProto> {
    let mut g = graph.clone();
    if opts.fold_batchnorm {
        let mut passes = PassOptions::none();
        passes.fold_batchnorm = true;
        optimize(&mut g, &passes)?;
    }
    let symbolic_batch = match &opts.source {
        Some(src) => source_batch_name(src),
        None => ExportOptions::default().symbolic_batch,
    };
    let mut model = to_model_proto(&g, &ExportOptions { symbolic_batch })?;
    if let Some(src) = &opts.source {
        keep_source_io(&mut model, src)?;
    }
    Ok(model)
}

/// Writes [`to_onnx`] atomically to `path`.
pub fn export_onnx(graph: &Graph, path: &Path, opts: &OnnxExportOptions) -> Result<()> {
    use prost::Message;
    crate::checkpoint::write_file(path, &to_onnx(graph, opts)?.encode_to_vec())
}

impl Trainer {
    /// Exports the trained network (the source graph with the current parameters and running
    /// statistics) to `path`, atomically. See the [module docs](self).
    pub fn export_onnx(&self, path: &Path, opts: &OnnxExportOptions) -> Result<()> {
        export_onnx(&self.to_graph(), path, opts)
    }
}

/// The symbolic name of the source's batch dimension: dimension 0 of its first input, if that
/// is a `dim_param` (None: the batch is fixed, or unnamed).
fn source_batch_name(src: &ModelProto) -> Option<String> {
    let input = src.graph.as_ref()?.input.iter().find(|vi| {
        let init = src.graph.as_ref().map(|g| g.initializer.iter().any(|t| t.name.as_deref() == vi.name.as_deref())).unwrap_or(false);
        !init
    })?;
    let dim = tensor_dims(input)?.first()?.clone();
    match dim.value {
        Some(mobilenetc_runtime::onnx::tensor_shape_proto::dimension::Value::DimParam(p)) if !p.is_empty() => Some(p),
        _ => None,
    }
}

fn tensor_dims(vi: &ValueInfoProto) -> Option<&Vec<mobilenetc_runtime::onnx::tensor_shape_proto::Dimension>> {
    match vi.r#type.as_ref()?.value.as_ref()? {
        type_proto::Value::TensorType(t) => Some(&t.shape.as_ref()?.dim),
        _ => None,
    }
}

/// Replaces the exported graph's input and output declarations by the source's of the same
/// name and rank (the importer resolved symbolic dimensions; the source still has them).
fn keep_source_io(model: &mut ModelProto, src: &ModelProto) -> Result<()> {
    let (Some(g), Some(s)) = (model.graph.as_mut(), src.graph.as_ref()) else { return Ok(()) };
    let replace = |ours: &mut Vec<ValueInfoProto>, theirs: &[ValueInfoProto], what: &str| -> Result<()> {
        for vi in ours.iter_mut() {
            let Some(orig) = theirs.iter().find(|o| o.name == vi.name) else {
                return Err(Error::Graph(format!("the exported {what} '{}' is not a {what} of the source model", vi.name.as_deref().unwrap_or(""))));
            };
            let rank = |v: &ValueInfoProto| tensor_dims(v).map(Vec::len);
            if rank(orig).is_some() && rank(orig) != rank(vi) {
                return Err(Error::Graph(format!("{what} '{}' has rank {:?} in the source but {:?} in the export", vi.name.as_deref().unwrap_or(""), rank(orig), rank(vi))));
            }
            *vi = orig.clone();
        }
        Ok(())
    };
    replace(&mut g.input, &s.input, "input")?;
    replace(&mut g.output, &s.output, "output")
}
