//! `mobilenetc export`: a training checkpoint to an ONNX file (the same code `train` runs at
//! the end of a run).

use std::path::PathBuf;

use crate::checkpoint::Checkpoint;
use crate::cli::{print, train::export_options, CliError};
use crate::export::{export_onnx, EXPORT_IR_VERSION, EXPORT_OPSET};

/// Export a training checkpoint as an ONNX model.
///
/// The model is the checkpoint's source graph (constructed, or the imported file with its
/// input and output names and shapes) with the trained weights and BatchNorm running
/// statistics; ONNX IR version 8, opset 17. With --fold-bn every BatchNorm is folded into the
/// conv or Gemm before it. The file is replaced atomically.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  mobilenetc export runs/train/checkpoint.safetensors -o model.onnx\n  mobilenetc export runs/train/checkpoint.safetensors -o model-folded.onnx --fold-bn")]
pub struct Args {
    /// The checkpoint (RUN_DIR/checkpoint.safetensors)
    #[arg(value_name = "CHECKPOINT")]
    pub checkpoint: PathBuf,
    /// The ONNX file to write
    #[arg(short, long, value_name = "FILE.onnx")]
    pub output: PathBuf,
    /// Fold BatchNorm into the preceding convs (inference-only model)
    #[arg(long)]
    pub fold_bn: bool,
}

pub fn run(args: Args) -> Result<(), CliError> {
    let c = Checkpoint::load(&args.checkpoint).map_err(|e| CliError::at(&args.checkpoint, e))?;
    let graph = c.graph().map_err(|e| CliError::at(&args.checkpoint, e))?;
    let mut opts = export_options(&c.model)?;
    opts.fold_batchnorm = args.fold_bn;
    export_onnx(&graph, &args.output, &opts).map_err(|e| CliError::at(&args.output, e))?;
    print(&format!(
        "wrote {}: epoch {} of the run, BatchNorm {}, ONNX IR version {EXPORT_IR_VERSION}, opset {EXPORT_OPSET}\n",
        args.output.display(),
        c.epoch,
        if args.fold_bn { "folded" } else { "kept" },
    ))
}
