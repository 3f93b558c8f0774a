//! `mobilenetc build`: the same generated Rust as `include_model!`, written as a module plus
//! its weight file (which a crate depending only on `mobilenetc-runtime` compiles), or with
//! `--crate` as a whole crate whose main runs the model on a .npy input.

use std::path::{Path, PathBuf};

use crate::cli::limit_args::LimitArgs;
use crate::cli::CliError;
use crate::codegen::{self, module_name, CodegenOptions, WeightSource};
use crate::error::Error;
use crate::onnx::import::{import_bytes, ImportOptions};

/// Compile an ONNX model into Rust: a module and its weight file, or a whole crate.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  mobilenetc build mobilenet.onnx -o src/ --name MobileNet\n  mobilenetc build mobilenet.onnx -o mobilenet-crate --crate && cargo run --release --manifest-path mobilenet-crate/Cargo.toml -- input.npy")]
pub struct Args {
    /// The ONNX model
    #[arg(value_name = "FILE.onnx")]
    pub file: PathBuf,
    /// Where to write `<name>.rs` and `<name>.weights` (or the crate, with --crate)
    #[arg(short = 'o', long = "out", value_name = "OUT_DIR")]
    pub out: PathBuf,
    /// The model struct's name [default: the file name in CamelCase]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The batch size to compile for (fixes a symbolic batch dimension) [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: Option<u64>,
    /// Write a whole crate: Cargo.toml, src/main.rs (runs the model on a .npy input and prints
    /// the top-5 classes) and the module
    #[arg(long = "crate")]
    pub krate: bool,
    /// The mobilenetc-runtime directory the crate's Cargo.toml points to [default: the runtime
    /// this mobilenetc was built from]
    #[arg(long, value_name = "DIR", requires = "krate")]
    pub runtime_path: Option<PathBuf>,
    #[command(flatten)]
    pub limit: LimitArgs,
}

/// `mobilenet_v1-224.onnx` → `MobilenetV1224`.
fn camel_case(stem: &str) -> String {
    let mut out = String::new();
    for part in stem.split(|c: char| !c.is_ascii_alphanumeric()).filter(|p| !p.is_empty()) {
        let mut cs = part.chars();
        if let Some(first) = cs.next() {
            out.extend(first.to_uppercase());
            out.push_str(cs.as_str());
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "Model");
    }
    out
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    mobilenetc_runtime::atomic::write_atomic(path, bytes).map_err(|e| CliError::from(Error::io(path, e)))
}

pub fn run(args: Args) -> Result<(), CliError> {
    let file = &args.file;
    let batch = args.batch.unwrap_or(1) as usize;
    let name = args.name.clone().unwrap_or_else(|| camel_case(&file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()));
    codegen::check_name(&name).map_err(CliError::from)?;
    let bytes = std::fs::read(file).map_err(|e| CliError::at(file, Error::io(file, e)))?;
    let g = import_bytes(&bytes, &ImportOptions { batch, max_bytes: args.limit.bytes(), ..ImportOptions::default() }).map_err(|e| CliError::at(file, e))?;
    let schedule = crate::lower::compile(&g).map_err(|e| CliError::at(file, e))?;
    let snake = module_name(&name);
    let weights_file = format!("{snake}.weights");
    let invocation = std::iter::once("mobilenetc".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ");
    let opts = CodegenOptions { name: name.clone(), weights: WeightSource::IncludeBytes(weights_file.clone()), invocation, model_hash: codegen::sha256_hex(&bytes) };
    let source = codegen::render(&schedule, &opts).map_err(|e| CliError::at(file, e))?;

    let src_dir = if args.krate { args.out.join("src") } else { args.out.clone() };
    std::fs::create_dir_all(&src_dir).map_err(|e| CliError::from(Error::io(&src_dir, e)))?;
    write(&src_dir.join(format!("{snake}.rs")), source.as_bytes())?;
    write(&src_dir.join(&weights_file), &schedule.weight_bytes())?;
    if args.krate {
        let runtime = match &args.runtime_path {
            Some(p) => p.clone(),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime"),
        };
        let runtime = runtime.canonicalize().map_err(|e| CliError::from(Error::io(&runtime, e)))?;
        write(&args.out.join("Cargo.toml"), cargo_toml(&snake, &runtime).as_bytes())?;
        write(&src_dir.join("main.rs"), main_rs(&name, &snake).as_bytes())?;
    }
    let what = if args.krate { "crate" } else { "module" };
    crate::cli::print(&format!(
        "wrote {what} {} ({name}: {} layers, arena {} bytes, weights {} bytes)\n",
        args.out.display(),
        schedule.steps.len(),
        schedule.arena_bytes(),
        schedule.weights.len() * 4
    ))
}

fn cargo_toml(snake: &str, runtime: &Path) -> String {
    let package = snake.replace('_', "-");
    let runtime = runtime.display().to_string().replace('\\', "/");
    format!(
        r#"# Generated by mobilenetc {version}.
[package]
name = "{package}"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
mobilenetc-runtime = {{ path = "{runtime}" }}

[profile.release]
codegen-units = 16

# A crate of its own, even inside another workspace's directory.
[workspace]
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}

fn main_rs(name: &str, snake: &str) -> String {
    format!(
        r#"//! Runs {name} on a float32 .npy input in the model's ONNX layout and prints the top-5
//! classes of each batch row. Generated by mobilenetc {version}.

mod {snake};

use {snake}::{name};

fn main() -> Result<(), Box<dyn std::error::Error>> {{
    let path = std::env::args().nth(1).ok_or("usage: {package} INPUT.npy")?;
    let input = mobilenetc_runtime::npy::read(std::path::Path::new(&path))?;
    if input.shape[..] != {name}::INPUT_SHAPE[..] {{
        return Err(format!("{{path}}: shape {{:?}}, but the model takes {{:?}}", input.shape, {name}::INPUT_SHAPE).into());
    }}
    let mut model = {name}::new();
    let output = model.try_infer(&input.data)?;
    let classes = {name}::OUTPUT_SHAPE.last().copied().unwrap_or(1).max(1);
    for (row, scores) in output.chunks(classes).enumerate() {{
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let top: Vec<String> = order.iter().take(5).map(|&c| format!("{{c}} ({{:.6}})", scores[c])).collect();
        println!("row {{row}}: top-5: {{}}", top.join(", "));
    }}
    Ok(())
}}
"#,
        version = env!("CARGO_PKG_VERSION"),
        package = snake.replace('_', "-")
    )
}

#[cfg(test)]
mod tests {
    use super::camel_case;

    #[test]
    fn names_come_from_the_file() {
        assert_eq!(camel_case("mobilenet_v1-224"), "MobilenetV1224");
        assert_eq!(camel_case("seed"), "Seed");
        assert_eq!(camel_case("0net"), "Model0net");
        assert_eq!(camel_case("---"), "Model");
    }
}
