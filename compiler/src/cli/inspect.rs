//! `mobilenetc inspect`: per-layer output shapes, mult-adds and params of an ONNX file (or of
//! a constructed MobileNet v1), and the totals. The counting convention is documented in
//! [`crate::inspect`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::limit_args::LimitArgs;
use crate::cli::{print, CliError, ModelArgs};
use crate::graph::mobilenet::{describe, mobilenet_v1};
use crate::graph::{Activation, Graph, Op};
use crate::inspect::count;
use crate::passes::{optimize, PassOptions};
use crate::schedule::plan_graph;
use crate::onnx::import::{import_file, ImportOptions};

/// Print each layer's output shape, mult-adds and params, and the totals.
///
/// Convention (the MobileNet paper's): mult-adds are the multiply-accumulates of conv and fully
/// connected layers (Conv, Gemm, MatMul with a constant weight), per image; params are their
/// weights and biases (including a constant Add right after them); BatchNorm parameters are
/// counted apart. Without FILE, inspects the MobileNet v1 that the constructor flags describe.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  mobilenetc inspect mobilenet.onnx\n  mobilenetc inspect model.onnx --json --dim N=1\n  mobilenetc inspect --alpha 0.5 --resolution 160"
)]
pub struct Args {
    /// The ONNX file to inspect (omit it to inspect a constructed model)
    #[arg(value_name = "FILE.onnx")]
    pub file: Option<PathBuf>,
    /// Print one JSON object: {mult_adds, params, bn_params, layers: [{name, op, output_shape, mult_adds, params, bn_params}]}
    #[arg(long)]
    pub json: bool,
    /// Fix a symbolic dimension of the model's inputs, e.g. --dim batch=1 (repeatable)
    #[arg(long = "dim", value_name = "NAME=N", value_parser = parse_dim)]
    pub dims: Vec<(String, usize)>,
    /// The value of a symbolic batch dimension not fixed by --dim [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// Also show the graph after the optimization passes (BatchNorm folded, activations fused,
    /// no-ops dropped, the classifier head fused)
    #[arg(long)]
    pub optimized: bool,
    /// Also show the memory plan of the optimized graph: every tensor's arena offset, size and
    /// live range, and the arena, lower-bound and naive sizes (with --json: an object `memory`)
    #[arg(long)]
    pub plan: bool,
    /// Switch an optimization pass off (repeatable), for debugging: fold-batchnorm,
    /// fuse-activation, drop-noops, views, fold-pad, transposes, matmul-add, head
    #[arg(long = "no-pass", value_name = "NAME")]
    pub no_pass: Vec<String>,
    #[command(flatten)]
    pub limit: LimitArgs,
    #[command(flatten, next_help_heading = "Constructed model (without FILE)")]
    pub model: ModelArgs,
}

fn parse_dim(s: &str) -> Result<(String, usize), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=N, got '{s}'"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("expected NAME=N, got '{s}' (the name is empty)"));
    }
    match value.trim().parse::<usize>() {
        Ok(v) if v > 0 => Ok((name.to_string(), v)),
        _ => Err(format!(
            "the value of {name} must be a positive integer, got '{value}'"
        )),
    }
}

pub fn run(args: Args) -> Result<(), CliError> {
    let batch = args.batch.unwrap_or(1) as usize;
    let (g, what): (Graph, String) = match &args.file {
        Some(file) => {
            if args.model.any() {
                return Err(CliError::usage("the constructor flags (--alpha, --resolution, --classes, --channels, --variant, --seed) apply only when no FILE is given"));
            }
            let opts = ImportOptions {
                dims: args.dims.iter().cloned().collect::<BTreeMap<_, _>>(),
                batch,
                max_bytes: args.limit.bytes(),
                ..ImportOptions::default()
            };
            let g = import_file(file, &opts).map_err(|e| CliError::at(file, e))?;
            (g, file.display().to_string())
        }
        None => {
            if !args.dims.is_empty() {
                return Err(CliError::usage(
                    "--dim applies to a FILE; a constructed model's batch is set with --batch",
                ));
            }
            let cfg = args.model.config(batch);
            (mobilenet_v1(&cfg)?, describe(&cfg))
        }
    };
    let report = match &args.file {
        Some(file) => count(&g).map_err(|e| CliError::at(file, e))?,
        None => count(&g)?,
    };
    let optimized = if args.optimized || args.plan {
        let mut opts = PassOptions::default();
        for name in &args.no_pass {
            opts.disable(name).map_err(|e| CliError::usage(e.to_string()))?;
        }
        let mut og = g.clone();
        let passes = optimize(&mut og, &opts).map_err(|e| CliError { file: args.file.clone(), message: e.to_string(), usage: false })?;
        let plan = if args.plan {
            Some(plan_graph(&og).map_err(|e| CliError { file: args.file.clone(), message: e.to_string(), usage: false })?)
        } else {
            None
        };
        Some((og, passes, plan))
    } else {
        if !args.no_pass.is_empty() {
            return Err(CliError::usage("--no-pass applies with --optimized or --plan"));
        }
        None
    };
    if args.json {
        let mut value = serde_json::to_value(&report).map_err(|e| CliError { file: None, message: format!("cannot encode the report: {e}"), usage: false })?;
        if let Some((og, _, plan)) = &optimized {
            value["optimized_layers"] = serde_json::Value::Array(
                og.nodes_in_order().iter().map(|(_, n)| serde_json::json!({
                    "name": n.name, "op": describe_op(&n.op), "output_shape": n.outputs.first().map(|&t| og.shape(t).to_vec()).unwrap_or_default(),
                })).collect(),
            );
            if let Some(plan) = plan {
                value["memory"] = plan.report_json();
            }
        }
        let json = serde_json::to_string_pretty(&value).map_err(|e| CliError {
            file: None,
            message: format!("cannot encode the report: {e}"),
            usage: false,
        })?;
        return print(&format!("{json}\n"));
    }
    let io = |ts: &[usize]| {
        ts.iter()
            .map(|&t| format!("{} {:?}", g.tensor(t).name, g.shape(t)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "{what}: {} nodes; inputs: {}; outputs: {}\n\n{}",
        g.dag.node_count(),
        io(&g.inputs),
        io(&g.outputs),
        report.to_table()
    );
    if let Some((og, passes, plan)) = &optimized {
        text.push_str(&format!("\nafter the passes ({passes}): {} nodes\n", og.dag.node_count()));
        for (_, n) in og.nodes_in_order() {
            let shape = n.outputs.first().map(|&t| format!("{:?}", og.shape(t))).unwrap_or_default();
            text.push_str(&format!("  {:<28} {:<24} {}\n", n.name, describe_op(&n.op), shape));
        }
        if let Some(plan) = plan {
            text.push('\n');
            text.push_str(&plan.report_text());
        }
    }
    print(&text)
}

/// The op with its fused epilogue, e.g. `Conv+Clip(0,6)`.
fn describe_op(op: &Op) -> String {
    let act = match op {
        Op::Conv(c) => c.activation,
        Op::Gemm(g) => g.activation,
        _ => Activation::None,
    };
    match act {
        Activation::None => op.name().to_string(),
        Activation::Relu => format!("{}+Relu", op.name()),
        Activation::Clip { min, max } => format!("{}+Clip({min},{max})", op.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_dim;

    #[test]
    fn dims_parse() {
        assert_eq!(parse_dim("batch=4"), Ok(("batch".into(), 4)));
        assert!(parse_dim("batch").unwrap_err().contains("NAME=N"));
        assert!(parse_dim("=3").is_err());
        assert!(parse_dim("batch=0").unwrap_err().contains("positive"));
        assert!(parse_dim("batch=x").is_err());
    }
}
