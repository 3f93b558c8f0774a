//! `mobilenetc bench`: latency of a model under the schedule executor (what `mobilenetc run`
//! uses): median and p90 over timed runs after warm-up, with the per-layer breakdown on request.
//! Generated code is measured by `cargo bench --manifest-path bench/Cargo.toml` and
//! `bench/compare.sh` instead (it must be compiled into a program first).

use std::path::PathBuf;
use std::time::Instant;

use crate::cli::{print, CliError, ModelArgs};
use crate::exec::{run_step_threads, Executor};
use crate::graph::mobilenet::{describe, mobilenet_v1};
use crate::graph::Graph;
use crate::cli::limit_args::LimitArgs;
use crate::onnx::import::{import_file, ImportOptions};

/// Time a model's inference with the schedule executor: median and p90 latency.
///
/// Inputs are deterministic values in [-1, 1]. The numbers are the executor's (the engine of
/// `mobilenetc run`); generated code is usually a little faster and is benchmarked with
/// bench/compare.sh. Without FILE, times the MobileNet v1 that the constructor flags describe.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  mobilenetc bench mobilenet.onnx --threads 2\n  mobilenetc bench --alpha 0.25 --resolution 128 --iters 200 --layers")]
pub struct Args {
    /// The ONNX model (omit it to time a constructed model)
    #[arg(value_name = "FILE.onnx")]
    pub file: Option<PathBuf>,
    /// Threads each layer's output is split over [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: Option<u64>,
    /// Timed runs after the warm-up [default: 50]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub iters: Option<u64>,
    /// Untimed runs first [default: 5]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub warmup: Option<u64>,
    /// The value of a symbolic batch dimension (and a constructed model's batch) [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// Also print each step's median time and GFLOP/s
    #[arg(long)]
    pub layers: bool,
    #[command(flatten)]
    pub limit: LimitArgs,
    #[command(flatten, next_help_heading = "Constructed model (without FILE)")]
    pub model: ModelArgs,
}

/// Quantile `q` (0..=1) of sorted `xs` (nearest rank).
fn quantile(xs: &[f64], q: f64) -> f64 {
    let i = ((xs.len() as f64 * q).ceil() as usize).clamp(1, xs.len()) - 1;
    xs[i]
}

pub fn run(args: Args) -> Result<(), CliError> {
    let batch = args.batch.unwrap_or(1) as usize;
    let threads = args.threads.unwrap_or(1) as usize;
    let iters = args.iters.unwrap_or(50) as usize;
    let warmup = args.warmup.unwrap_or(5) as usize;
    let (g, what): (Graph, String) = match &args.file {
        Some(file) => {
            if args.model.any() {
                return Err(CliError::usage("the constructor flags (--alpha, --resolution, --classes, --channels, --variant, --seed) apply only when no FILE is given"));
            }
            let g = import_file(file, &ImportOptions { batch, max_bytes: args.limit.bytes(), ..ImportOptions::default() }).map_err(|e| CliError::at(file, e))?;
            (g, file.display().to_string())
        }
        None => {
            let cfg = args.model.config(batch);
            (mobilenet_v1(&cfg)?, describe(&cfg))
        }
    };
    let at = |e: crate::Error| match &args.file {
        Some(f) => CliError::at(f, e),
        None => CliError::from(e),
    };
    let mut exec = Executor::from_graph_with_limit(&g, args.limit.bytes()).map_err(at)?;
    exec.set_threads(threads);
    let bindings = exec.schedule().inputs.clone();
    let data: Vec<Vec<f32>> = bindings.iter().map(|b| (0..b.range.len).map(|i| ((i as f32 * 0.618_034).fract() * 2.0 - 1.0) * 0.9).collect()).collect();
    let inputs: Vec<(&str, &[f32])> = bindings.iter().zip(&data).map(|(b, d)| (b.name.as_str(), d.as_slice())).collect();
    for _ in 0..warmup {
        exec.run(&inputs).map_err(at)?;
    }
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        exec.run(&inputs).map_err(at)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let (med, p90) = (quantile(&times, 0.5), quantile(&times, 0.9));
    let flops = 2.0 * exec.schedule().mult_adds as f64;
    let mut out = format!(
        "{what}: schedule executor, {threads} thread{}, batch {batch}, {iters} runs after {warmup} warm-up\n  median {:.3} ms, p90 {:.3} ms, best {:.3} ms; {:.1} GFLOP/s at the median ({:.3} GFLOP per run)\n",
        if threads == 1 { "" } else { "s" },
        med * 1e3,
        p90 * 1e3,
        times[0] * 1e3,
        flops / med / 1e9,
        flops / 1e9,
    );
    if args.layers {
        out.push_str(&layer_report(&mut exec, &inputs, iters.min(50), threads).map_err(at)?);
    }
    print(&out)
}

/// Each step's median time over `runs` runs (the inputs loaded once by a full run first).
fn layer_report(exec: &mut Executor, inputs: &[(&str, &[f32])], runs: usize, threads: usize) -> crate::Result<String> {
    exec.run(inputs)?;
    let schedule = exec.schedule().clone();
    let mut arena = exec.arena().to_vec();
    let mut per = vec![Vec::with_capacity(runs); schedule.steps.len()];
    for _ in 0..runs {
        for (i, step) in schedule.steps.iter().enumerate() {
            let t = Instant::now();
            run_step_threads(step, &mut arena, &schedule.weights, threads);
            per[i].push(t.elapsed().as_secs_f64());
        }
    }
    let mut s = format!("  {:<4} {:<36} {:<10} {:>10} {:>9}\n", "step", "name", "kernel", "median µs", "GFLOP/s");
    for (i, (step, ts)) in schedule.steps.iter().zip(&mut per).enumerate() {
        ts.sort_by(f64::total_cmp);
        let med = quantile(ts, 0.5);
        let gf = 2.0 * step.kernel.mult_adds() as f64 / med / 1e9;
        let rate = if step.kernel.mult_adds() > 0 { format!("{gf:9.1}") } else { String::new() };
        let name: String = step.name.chars().take(36).collect();
        s.push_str(&format!("  {i:<4} {name:<36} {:<10} {:>10.1} {rate}\n", step.kernel.kind(), med * 1e6));
    }
    Ok(s)
}
