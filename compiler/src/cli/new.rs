//! `mobilenetc new`: construct a MobileNet v1 (paper Table 1, or a comparison variant) and
//! write it as an ONNX file.

use std::path::PathBuf;

use crate::cli::{print, CliError, ModelArgs};
use crate::graph::mobilenet::{describe, mobilenet_v1};
use crate::inspect::{count, millions};
use crate::onnx::export::{to_bytes, ExportOptions};

/// Construct a MobileNet v1 and write it as an ONNX file.
///
/// The model has BatchNorm after every conv, ReLU6 as Clip(0, 6), one input named `input` of
/// shape [batch, C, R, R] (NCHW) and one output `output` (softmax probabilities). Weights are
/// He-normal from --seed; BatchNorm statistics random but sane.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  mobilenetc new -o mobilenet.onnx\n  mobilenetc new --alpha 0.25 --resolution 128 --classes 10 -o small.onnx\n  mobilenetc new --variant shallow -o shallow.onnx"
)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Fix the batch dimension to B (default: a symbolic dimension named `batch`)
    #[arg(long, value_name = "B")]
    pub batch: Option<usize>,
    /// The ONNX file to write (replaced atomically if it exists)
    #[arg(short, long, value_name = "FILE.onnx")]
    pub output: PathBuf,
}

pub fn run(args: Args) -> Result<(), CliError> {
    let cfg = args.model.config(args.batch.unwrap_or(1));
    let g = mobilenet_v1(&cfg)?;
    let opts = ExportOptions {
        symbolic_batch: if args.batch.is_some() {
            None
        } else {
            ExportOptions::default().symbolic_batch
        },
    };
    let bytes = to_bytes(&g, &opts).map_err(|e| CliError::at(&args.output, e))?;
    mobilenetc_runtime::atomic::write_atomic(&args.output, &bytes)
        .map_err(|e| CliError::at(&args.output, crate::Error::io(&args.output, e)))?;
    let report = count(&g).map_err(|e| CliError::at(&args.output, e))?;
    let batch = args.batch.map_or("batch".to_string(), |b| b.to_string());
    print(&format!(
        "wrote {}: {}, input [{batch}, {}, {r}, {r}]: {} mult-adds, {} params, {:.1} MB\n",
        args.output.display(),
        describe(&cfg),
        cfg.channels,
        millions(report.mult_adds),
        millions(report.params),
        bytes.len() as f64 / 1e6,
        r = cfg.resolution,
    ))
}
