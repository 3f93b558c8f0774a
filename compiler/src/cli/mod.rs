//! The `mobilenetc` command line (clap derive): one file per subcommand, each with an `Args`
//! struct and a `run(Args) -> Result<(), CliError>`.
//!
//! To add a subcommand: write `cli/<name>.rs` with `Args` and `run`, declare the module and
//! add one variant to [`Command`] and one arm to [`Command::run`].
//!
//! Errors: every failure is printed as one line, `error: <file>: <message>` (or
//! `error: <message>` when no file is involved), on stderr; exit code 1, or 2 for usage errors
//! (bad flags or flag values). A panic (a bug) is also reported on one line.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::Error;
use crate::graph::mobilenet::{MobileNetConfig, Variant};

pub mod bench;
pub mod build;
pub mod export;
pub mod inspect;
pub mod limit_args;
pub mod new;
pub mod run;
pub mod train;

#[derive(Parser, Debug)]
#[command(
    name = "mobilenetc",
    version,
    about = "A compiler for MobileNet-class CNNs: ONNX in, specialized Rust out",
    long_about = "mobilenetc builds, inspects and compiles MobileNet-class convolutional networks.\n\n\
                  Models are ONNX files (opsets 7-21, as PyTorch, tf2onnx and mobilenetc write them) \
                  or MobileNet v1 networks constructed from the paper's parameters.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    New(new::Args),
    Inspect(inspect::Args),
    Build(build::Args),
    Bench(bench::Args),
    Run(run::Args),
    Train(train::Args),
    Export(export::Args),
}

impl Command {
    pub fn run(self) -> Result<(), CliError> {
        match self {
            Command::New(a) => new::run(a),
            Command::Inspect(a) => inspect::run(a),
            Command::Build(a) => build::run(a),
            Command::Bench(a) => bench::run(a),
            Command::Run(a) => run::run(a),
            Command::Train(a) => train::run(a),
            Command::Export(a) => export::run(a),
        }
    }
}

/// A failure of a subcommand: the file it concerns (if any), the message, and whether it is
/// a usage error (exit code 2) rather than a failure (exit code 1).
#[derive(Debug)]
pub struct CliError {
    pub file: Option<PathBuf>,
    pub message: String,
    pub usage: bool,
}

impl CliError {
    /// An error about `file`.
    pub fn at(file: &Path, err: Error) -> Self {
        let usage = matches!(err, Error::Invalid(_));
        match err {
            // The I/O error names its own path (which may differ from `file`).
            Error::Io { path, source } => CliError {
                file: Some(path),
                message: source.to_string(),
                usage: false,
            },
            err => CliError {
                file: Some(file.to_path_buf()),
                message: err.to_string(),
                usage,
            },
        }
    }

    /// A usage error (a bad flag value).
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            file: None,
            message: message.into(),
            usage: true,
        }
    }

    pub fn exit_code(&self) -> i32 {
        if self.usage {
            2
        } else {
            1
        }
    }
}

impl From<Error> for CliError {
    fn from(err: Error) -> Self {
        match err {
            Error::Io { path, source } => CliError {
                file: Some(path),
                message: source.to_string(),
                usage: false,
            },
            Error::Invalid(m) => CliError::usage(m),
            err => CliError {
                file: None,
                message: err.to_string(),
                usage: false,
            },
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = one_line(&self.message);
        match &self.file {
            // Some messages already start with the file's name: do not say it twice.
            Some(file) if !message.starts_with(&file.display().to_string()) => {
                write!(f, "{}: {message}", file.display())
            }
            _ => f.write_str(&message),
        }
    }
}

/// Joins a multi-line message (e.g. a list of unsupported ops) into one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .replace(":;", ":")
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error (a bug in mobilenetc, please report it): {}{at}",
            one_line(&msg)
        );
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    match cli.command.run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Help and version go to stdout as clap formats them; a usage error becomes one line.
fn clap_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            2
        }
        _ => {
            // clap's first paragraph is the message (it may continue on indented lines, e.g.
            // the list of missing arguments); the tip and usage that follow are left out.
            let rendered = e.render().to_string();
            let first: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty())
                .collect();
            let first = first.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            eprintln!("error: {first} (see --help)");
            2
        }
    }
}

/// Writes to stdout; a closed pipe (`mobilenetc inspect m.onnx | head`) is not an error.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError {
            file: None,
            message: format!("cannot write to stdout: {e}"),
            usage: false,
        }),
        _ => Ok(()),
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariantArg {
    /// The paper's Table 1 network.
    Standard,
    /// Every depthwise-separable block a full 3×3 conv (paper Table 4).
    FullConv,
    /// The five 14×14×512 blocks removed (paper Table 5).
    Shallow,
}

impl From<VariantArg> for Variant {
    fn from(v: VariantArg) -> Self {
        match v {
            VariantArg::Standard => Variant::Standard,
            VariantArg::FullConv => Variant::FullConv,
            VariantArg::Shallow => Variant::Shallow,
        }
    }
}

/// The MobileNet v1 constructor's parameters, shared by the subcommands that build a model.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ModelArgs {
    /// Width multiplier α in (0, 1]; each channel count c becomes max(1, floor(c·α)) [default: 1.0]
    #[arg(long, value_name = "A")]
    pub alpha: Option<f32>,
    /// Input resolution ρ: a multiple of 32, at least 32 [default: 224]
    #[arg(long, value_name = "R")]
    pub resolution: Option<usize>,
    /// Number of classes of the classifier [default: 1000]
    #[arg(long, value_name = "N")]
    pub classes: Option<usize>,
    /// Input channels [default: 3]
    #[arg(long, value_name = "C")]
    pub channels: Option<usize>,
    /// Network variant [default: standard]
    #[arg(long, value_enum, value_name = "VARIANT")]
    pub variant: Option<VariantArg>,
    /// Seed of the weight initialization (He-normal) [default: 0]
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
}

impl ModelArgs {
    /// Whether any constructor flag was given.
    pub fn any(&self) -> bool {
        self.alpha.is_some()
            || self.resolution.is_some()
            || self.classes.is_some()
            || self.channels.is_some()
            || self.variant.is_some()
            || self.seed.is_some()
    }

    pub fn config(&self, batch: usize) -> MobileNetConfig {
        let d = MobileNetConfig::default();
        MobileNetConfig {
            alpha: self.alpha.unwrap_or(d.alpha),
            resolution: self.resolution.unwrap_or(d.resolution),
            classes: self.classes.unwrap_or(d.classes),
            channels: self.channels.unwrap_or(d.channels),
            variant: self.variant.map_or(d.variant, Variant::from),
            seed: self.seed.unwrap_or(d.seed),
            batch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn errors_print_on_one_line_with_the_file() {
        let e = CliError::at(
            Path::new("m.onnx"),
            Error::Decode("truncated\nat byte 12".into()),
        );
        assert_eq!(
            e.to_string(),
            "m.onnx: not a valid ONNX model: truncated; at byte 12"
        );
        assert_eq!(e.exit_code(), 1);
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = CliError::at(Path::new("m.onnx"), Error::io("other.onnx", io));
        assert_eq!(e.to_string(), "other.onnx: No such file or directory");
        let e = CliError::from(Error::Invalid("alpha must be in (0, 1], got 2".into()));
        assert_eq!(
            (e.to_string().as_str(), e.exit_code()),
            ("alpha must be in (0, 1], got 2", 2)
        );
        let e = CliError::at(
            Path::new("m.onnx"),
            Error::Limit("m.onnx: too large".into()),
        );
        assert_eq!(e.to_string(), "m.onnx: too large");
    }
}
