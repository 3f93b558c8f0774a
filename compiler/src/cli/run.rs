//! `mobilenetc run`: runs any ONNX model with the schedule executor on float32 .npy inputs,
//! writes the outputs as .npy and prints the top-k classes of classifier outputs.

use std::path::{Path, PathBuf};

use mobilenetc_runtime::npy;

use crate::cli::limit_args::LimitArgs;
use crate::cli::{print, CliError};
use crate::error::Error;
use crate::exec::Executor;
use crate::onnx::import::{import_file, ImportOptions};

/// Run a model on .npy inputs with the schedule executor.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  mobilenetc run mobilenet.onnx --input image.npy --top 5\n  mobilenetc run conv.onnx --input x=x.npy --input W=w.npy --output-dir out/")]
pub struct Args {
    /// The ONNX model
    #[arg(value_name = "FILE.onnx")]
    pub file: PathBuf,
    /// A float32 .npy input, `NAME=IN.npy` or `IN.npy` (unnamed inputs fill the model's
    /// remaining inputs in order); one per graph input that is not an initializer
    #[arg(long = "input", value_name = "[NAME=]IN.npy", required = true)]
    pub inputs: Vec<String>,
    /// Write the (single) output to this .npy file
    #[arg(long, value_name = "OUT.npy", conflicts_with = "output_dir")]
    pub output: Option<PathBuf>,
    /// Write each output as DIR/<output name>.npy
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// How many classes to print for each row of a classifier output [default: 5]
    #[arg(long, value_name = "K")]
    pub top: Option<usize>,
    /// The value of a symbolic batch dimension [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    #[command(flatten)]
    pub limit: LimitArgs,
    /// Threads each conv, dense and head layer's output is split over (the results do not
    /// depend on it) [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: Option<u64>,
}

fn npy_err(path: &Path, e: npy::NpyError) -> CliError {
    CliError { file: Some(path.to_path_buf()), message: e.to_string(), usage: false }
}

/// A file-name-safe form of an output name.
fn file_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect()
}

pub fn run(args: Args) -> Result<(), CliError> {
    let file = &args.file;
    let max_bytes = args.limit.bytes();
    let opts = ImportOptions { batch: args.batch.unwrap_or(1) as usize, max_bytes, ..ImportOptions::default() };
    let g = import_file(file, &opts).map_err(|e| CliError::at(file, e))?;
    let mut exec = Executor::from_graph_with_limit(&g, max_bytes).map_err(|e| CliError::at(file, e))?;
    exec.set_threads(args.threads.unwrap_or(1) as usize);
    let bindings = exec.schedule().inputs.clone();

    // Named inputs first, then the unnamed ones fill the remaining inputs in order.
    let mut given: Vec<Option<(PathBuf, npy::Array)>> = vec![None; bindings.len()];
    let mut unnamed = Vec::new();
    for spec in &args.inputs {
        match spec.split_once('=') {
            Some((name, path)) if bindings.iter().any(|b| b.name == name) => {
                let i = bindings.iter().position(|b| b.name == name).expect("just found");
                if given[i].is_some() {
                    return Err(CliError::usage(format!("input '{name}' is given twice")));
                }
                let path = PathBuf::from(path);
                let arr = npy::read(&path).map_err(|e| npy_err(&path, e))?;
                given[i] = Some((path, arr));
            }
            Some((name, _)) if !Path::new(spec).exists() => {
                let names: Vec<&str> = bindings.iter().map(|b| b.name.as_str()).collect();
                return Err(CliError::usage(format!("the model has no input '{name}' (its inputs: {})", names.join(", "))));
            }
            _ => unnamed.push(PathBuf::from(spec)),
        }
    }
    let mut free = (0..bindings.len()).filter(|&i| given[i].is_none()).collect::<Vec<_>>().into_iter();
    for path in unnamed {
        let i = free.next().ok_or_else(|| CliError::usage(format!("too many inputs: the model takes {} ({})", bindings.len(), names(&bindings))))?;
        let arr = npy::read(&path).map_err(|e| npy_err(&path, e))?;
        given[i] = Some((path, arr));
    }
    let mut inputs = Vec::new();
    for (b, g) in bindings.iter().zip(&given) {
        let (path, arr) = g.as_ref().ok_or_else(|| CliError::usage(format!("input '{}' of shape {:?} is missing (pass --input {}=IN.npy)", b.name, b.shape, b.name)))?;
        if arr.shape != b.shape {
            return Err(CliError { file: Some(path.clone()), message: format!("shape {:?}, but input '{}' takes {:?}", arr.shape, b.name, b.shape), usage: true });
        }
        inputs.push((b.name.as_str(), arr.data.as_slice()));
    }
    let outputs = exec.run(&inputs).map_err(|e| CliError::at(file, e))?;

    if let Some(path) = &args.output {
        if outputs.len() != 1 {
            return Err(CliError::usage(format!("the model has {} outputs: use --output-dir", outputs.len())));
        }
        let (_, shape, data) = &outputs[0];
        npy::write(path, shape, data).map_err(|e| npy_err(path, e))?;
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).map_err(|e| CliError::from(Error::io(dir, e)))?;
        for (name, shape, data) in &outputs {
            let path = dir.join(format!("{}.npy", file_name(name)));
            npy::write(&path, shape, data).map_err(|e| npy_err(&path, e))?;
        }
    }
    let k = args.top.unwrap_or(5);
    let mut text = String::new();
    for (name, shape, data) in &outputs {
        if shape.len() == 2 && shape[1] > 1 && k > 0 {
            for (row, scores) in data.chunks(shape[1]).enumerate() {
                text.push_str(&format!("{name}[{row}]: top-{}: {}\n", k.min(scores.len()), top_k(scores, k)));
            }
        } else {
            text.push_str(&format!("{name}: shape {shape:?}\n"));
        }
    }
    print(&text)
}

fn names(bindings: &[crate::lower::Binding]) -> String {
    bindings.iter().map(|b| format!("{} {:?}", b.name, b.shape)).collect::<Vec<_>>().join(", ")
}

/// `class (score)` of the k best classes, best first (ties by class index).
pub fn top_k(scores: &[f32], k: usize) -> String {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.iter().take(k).map(|&c| format!("{c} ({:.6})", scores[c])).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_score_then_class() {
        assert_eq!(top_k(&[0.1, 0.5, 0.5, 0.2], 3), "1 (0.500000), 2 (0.500000), 3 (0.200000)");
        assert_eq!(file_name("prob/Softmax:0"), "prob_Softmax_0");
    }
}
