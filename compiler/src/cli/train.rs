//! `mobilenetc train`: the main job. Trains a MobileNet (constructed, or any ONNX file the
//! trainer can differentiate) on images, shows progress, and leaves a run directory:
//!
//! - `metrics.csv`: `epoch,train_loss,train_acc,val_loss,val_acc,seconds,images_per_second`
//!   (losses are mean cross-entropy, accuracies fractions in [0, 1], `seconds` the wall time of
//!   the epoch's training steps, validation excluded, `images_per_second` training images per
//!   second);
//! - `curves.png`: accuracy and loss per epoch ([`crate::plot`]);
//! - `checkpoint.safetensors`: after every epoch ([`crate::checkpoint`]), written atomically;
//! - `model.onnx`: the trained model at the end ([`crate::export`]).
//!
//! `--resume` continues from the checkpoint's last finished epoch. Nothing is lost: the data
//! order and augmentation of epoch `e` depend only on (seed, e), and the weights, running
//! statistics and optimizer state are restored exactly, so a resumed run ends bit-identical to
//! an uninterrupted one with the same thread count. metrics.csv and curves.png are rewritten
//! from the checkpoint's history, so a kill between the checkpoint and the CSV loses no row.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;
use mobilenetc_runtime::data::{self, Augment, Dataset, ImageShape, Loader, LoaderConfig, Split};
use mobilenetc_runtime::optim::{Adam, AdamConfig, LrSchedule, Optimizer, Sgd, SgdConfig};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, EpochRecord, ModelSource};
use crate::cli::{print, CliError, VariantArg};
use crate::error::Error;
use crate::export::OnnxExportOptions;
use crate::graph::mobilenet::{MobileNetConfig, Variant};
use crate::graph::Graph;
use crate::onnx::import::{decode_model, import_bytes, ImportOptions};
use crate::train::{TrainConfig, Trainer};

pub const METRICS_HEADER: &str = "epoch,train_loss,train_acc,val_loss,val_acc,seconds,images_per_second";
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Train a MobileNet on images and export the trained model.
///
/// Without MODEL.onnx, trains the seed's network: MobileNet v1 (paper Table 1) with α 1.0 on
/// 32×32×3 inputs and 10 classes, Adam (lr 1e-3, β1 0.9, β2 0.999, ε 1e-8 in PyTorch's form),
/// batch 128, on the Fashion-MNIST sample the repository ships (grayscale replicated to three
/// channels, 28×28 zero-padded to 32×32, pixels scaled to [0, 1] as the seed does; no
/// augmentation). Results go to RUN_DIR: metrics.csv, curves.png, checkpoint.safetensors
/// after every epoch, model.onnx at the end.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  mobilenetc train --alpha 0.25 --epochs 3 --out runs/quick\n  mobilenetc train --data fashion-mnist --epochs 5 --out runs/fmnist\n  mobilenetc train --data fashion-mnist --epochs 10 --out runs/fmnist --resume\n  mobilenetc train model.onnx --data path/to/images --epochs 2 --out runs/finetune")]
pub struct Args {
    /// An ONNX model to train (instead of constructing a MobileNet v1)
    #[arg(value_name = "MODEL.onnx")]
    pub model: Option<PathBuf>,
    /// Width multiplier α in (0, 1] of the constructed network [default: 1.0]
    #[arg(long, value_name = "A")]
    pub alpha: Option<f32>,
    /// Input resolution of the constructed network, a multiple of 32 [default: 32]
    #[arg(long, value_name = "R")]
    pub resolution: Option<usize>,
    /// Classes of the constructed network [default: 10]
    #[arg(long, value_name = "N")]
    pub classes: Option<usize>,
    /// Input channels of the constructed network [default: 3]
    #[arg(long, value_name = "C")]
    pub channels: Option<usize>,
    /// Variant of the constructed network [default: standard]
    #[arg(long, value_enum, value_name = "VARIANT")]
    pub variant: Option<VariantArg>,
    /// The data: `sample` (the shipped Fashion-MNIST sample), `fashion-mnist` (Debian's
    /// dataset-fashion-mnist), `cifar10` (./data/cifar-10-batches-bin), or a folder (CIFAR-10
    /// batches, IDX files, or train/<class>/ and test/<class>/ images) [default: sample]
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
    /// Epochs to train in total (a resumed run continues up to this count) [default: 10]
    #[arg(long, value_name = "E")]
    pub epochs: Option<u64>,
    /// Images per training step [default: 128]
    #[arg(long, value_name = "B")]
    pub batch_size: Option<usize>,
    /// The optimizer: Adam (β1 0.9, β2 0.999, ε 1e-8) or SGD (momentum 0.9) [default: adam]
    #[arg(long, value_enum, value_name = "OPT")]
    pub optimizer: Option<OptimizerArg>,
    /// Learning rate (the start of the schedule) [default: 0.001 for Adam, 0.01 for SGD]
    #[arg(long, value_name = "LR")]
    pub lr: Option<f32>,
    /// How the learning rate changes over the run [default: constant]
    #[arg(long, value_enum, value_name = "SCHEDULE")]
    pub lr_schedule: Option<ScheduleArg>,
    /// Augment the training images: random crop with 4-pixel zero padding and a horizontal flip
    /// with probability 1/2, drawn from --seed (the CIFAR recipe; off by default, as the seed)
    #[arg(long)]
    pub augment: bool,
    /// Use only the first N training images and the first N test images
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Kernel threads [default: the machine's cores]
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,
    /// Seed of the weight initialization, the data order and augmentation [default: 0]
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// The run directory (created if missing)
    #[arg(long, value_name = "RUN_DIR", default_value = "runs/train")]
    pub out: PathBuf,
    /// Continue the run in RUN_DIR from its last finished epoch (flags not given are taken
    /// from the checkpoint; without a checkpoint, a new run starts)
    #[arg(long)]
    pub resume: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerArg {
    Adam,
    Sgd,
}

/// The learning-rate schedules of `--lr-schedule`.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleArg {
    /// The same rate throughout
    #[default]
    Constant,
    /// ×0.1 after every third of the epochs (at least one epoch apart)
    Step,
    /// Cosine decay from LR to 0 over all the run's steps
    Cosine,
}

/// The settings that decide a run's numbers; stored in the checkpoint, checked on resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub data: String,
    pub epochs: u64,
    pub batch_size: usize,
    pub optimizer: OptimizerArg,
    pub lr: f32,
    pub limit: Option<usize>,
    pub seed: u64,
    /// Absent in checkpoints written before these flags existed: constant, no augmentation.
    #[serde(default)]
    pub lr_schedule: ScheduleArg,
    #[serde(default)]
    pub augment: bool,
}

/// Epochs when none is given (the seed trains 10).
const DEFAULT_EPOCHS: u64 = 10;

pub fn run(args: Args) -> Result<(), CliError> {
    let dir = args.out.clone();
    let ckpt_path = dir.join(CHECKPOINT_FILE);
    let resumed = if ckpt_path.exists() {
        if !args.resume {
            return Err(CliError {
                file: Some(dir.clone()),
                message: format!("already holds a training run ({CHECKPOINT_FILE}); continue it with --resume, or choose another --out"),
                usage: false,
            });
        }
        Some(Checkpoint::load(&ckpt_path).map_err(|e| CliError::at(&ckpt_path, e))?)
    } else {
        None
    };
    let (settings, source) = match &resumed {
        Some(c) => resume_settings(&args, c)?,
        None => fresh_settings(&args)?,
    };
    let graph = match &resumed {
        Some(c) => c.graph().map_err(|e| CliError::at(&ckpt_path, e))?,
        None => source_graph(&source, args.model.as_deref())?,
    };
    std::fs::create_dir_all(&dir).map_err(|e| CliError::from(Error::io(&dir, e)))?;

    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err(CliError::usage("--threads must be at least 1"));
    }
    let mut trainer = Trainer::new(&graph, TrainConfig { batch: settings.batch_size, threads }).map_err(|e| model_error(&args, e))?;
    let [c, h, w] = trainer.image_shape();
    let input = ImageShape::new(c, h, w);
    let (train_set, test_set) = open_data(&settings.data, input)?;
    if train_set.num_classes() > trainer.classes() {
        return Err(CliError {
            file: None,
            message: format!("the data has {} classes but the model's classifier has {}; use --classes {}", train_set.num_classes(), trainer.classes(), train_set.num_classes()),
            usage: true,
        });
    }
    let data_err = |e: data::DataError| CliError { file: None, message: e.to_string(), usage: false };
    let train_loader = Loader::new(&train_set, LoaderConfig::train(input, settings.batch_size).with_seed(settings.seed).with_limit(settings.limit).with_augment(if settings.augment { Augment::STANDARD } else { Augment::NONE })).map_err(data_err)?;
    let test_loader = Loader::new(&test_set, LoaderConfig::eval(input, settings.batch_size).with_limit(settings.limit)).map_err(data_err)?;
    if train_loader.is_empty() || test_loader.is_empty() {
        return Err(CliError::usage("no images to train or validate on (--limit 0?)"));
    }
    let mut opt = optimizer(&settings, train_loader.batches_per_epoch() as u64)?;

    let mut history = Vec::new();
    let mut start = 0;
    if let Some(c) = &resumed {
        restore(&mut trainer, opt.as_mut(), c).map_err(|e| CliError::at(&ckpt_path, e))?;
        history = c.history.clone();
        start = c.epoch;
        // Rewrite the outputs from the checkpoint: a kill after the checkpoint but before the
        // CSV would otherwise lose that epoch's row.
        write_outputs(&dir, &history)?;
    }

    let out = std::io::stderr();
    let tty = out.is_terminal();
    eprintln!(
        "training {} on {} ({} training, {} test images of {c}×{h}×{w}), {} epochs, batch {}, {} lr {}, {threads} thread(s){}",
        describe_source(&source),
        train_set.name,
        train_loader.len(),
        test_loader.len(),
        settings.epochs,
        settings.batch_size,
        match settings.optimizer {
            OptimizerArg::Adam => "Adam",
            OptimizerArg::Sgd => "SGD",
        },
        settings.lr,
        if start > 0 { format!(", resuming after epoch {start}") } else { String::new() }
    );

    let (mut images, mut labels) = (vec![0.0f32; settings.batch_size * input.len()], vec![0u32; settings.batch_size]);
    for epoch in start..settings.epochs {
        let ep = train_loader.epoch(epoch);
        let batches = ep.num_batches();
        let mut progress = Progress::new(epoch + 1, settings.epochs, batches, tty);
        let t0 = Instant::now();
        let (mut seen, mut loss_sum, mut correct) = (0usize, 0.0f64, 0usize);
        for b in 0..batches {
            let n = ep.batch_into(b, &mut images, &mut labels);
            let s = trainer.train_step(&images[..n * input.len()], &labels[..n], opt.as_mut()).map_err(CliError::from)?;
            if !s.loss.is_finite() {
                return Err(CliError {
                    file: None,
                    message: format!("the loss became {} at epoch {}, step {}; lower --lr (now {})", s.loss, epoch + 1, b + 1, settings.lr),
                    usage: false,
                });
            }
            seen += n;
            loss_sum += s.loss as f64 * n as f64;
            correct += s.correct;
            progress.update(b + 1, loss_sum / seen as f64, correct as f64 / seen as f64, seen as f64 / t0.elapsed().as_secs_f64());
        }
        let seconds = t0.elapsed().as_secs_f64();
        progress.finish();
        let (val_loss, val_acc) = evaluate(&mut trainer, &test_loader, &mut images, &mut labels)?;
        let rec = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_acc: correct as f64 / seen as f64,
            val_loss,
            val_acc,
            seconds,
            images_per_second: seen as f64 / seconds,
        };
        history.push(rec);
        eprintln!(
            "epoch {}/{}: loss {:.4}, accuracy {:.2}%, val loss {:.4}, val accuracy {:.2}%, {:.1} s, {:.0} images/s",
            rec.epoch,
            settings.epochs,
            rec.train_loss,
            100.0 * rec.train_acc,
            rec.val_loss,
            100.0 * rec.val_acc,
            rec.seconds,
            rec.images_per_second
        );
        let ckpt = Checkpoint {
            model: source.clone(),
            tensors: trainer.parameters(),
            trainable: trainer.slot_names().len(),
            optimizer: Some(opt.state()),
            epoch: epoch + 1,
            seed: settings.seed,
            config: serde_json::to_value(&settings).expect("settings serialize"),
            history: history.clone(),
        };
        ckpt.save(&ckpt_path).map_err(|e| CliError::at(&ckpt_path, e))?;
        write_outputs(&dir, &history)?;
    }

    let model_path = dir.join("model.onnx");
    trainer.export_onnx(&model_path, &export_options(&source)?).map_err(|e| CliError::at(&model_path, e))?;
    let last = history.last();
    print(&format!(
        "wrote {}: {} epochs{}; metrics.csv, curves.png, {CHECKPOINT_FILE} and model.onnx\n",
        dir.display(),
        history.len(),
        last.map_or(String::new(), |r| format!(", validation accuracy {:.2}%", 100.0 * r.val_acc)),
    ))
}

/// Export options for a run's source: an imported model keeps its input/output declarations.
pub fn export_options(source: &ModelSource) -> Result<OnnxExportOptions, CliError> {
    let src = match source.onnx_bytes() {
        Some(b) => Some(decode_model(b).map_err(CliError::from)?),
        None => None,
    };
    Ok(OnnxExportOptions { fold_batchnorm: false, source: src })
}

fn fresh_settings(args: &Args) -> Result<(Settings, ModelSource), CliError> {
    let seed = args.seed.unwrap_or(0);
    let optimizer = args.optimizer.unwrap_or(OptimizerArg::Adam);
    let settings = Settings {
        data: args.data.clone().unwrap_or_else(|| "sample".into()),
        epochs: args.epochs.unwrap_or(DEFAULT_EPOCHS),
        batch_size: args.batch_size.unwrap_or(128),
        optimizer,
        lr: args.lr.unwrap_or(match optimizer {
            OptimizerArg::Adam => 1e-3,
            OptimizerArg::Sgd => 1e-2,
        }),
        limit: args.limit,
        seed,
        lr_schedule: args.lr_schedule.unwrap_or_default(),
        augment: args.augment,
    };
    check(&settings)?;
    let source = match &args.model {
        Some(path) => {
            if args.alpha.is_some() || args.resolution.is_some() || args.classes.is_some() || args.channels.is_some() || args.variant.is_some() {
                return Err(CliError::usage("--alpha, --resolution, --classes, --channels and --variant build a network; they cannot be combined with MODEL.onnx"));
            }
            let bytes = std::fs::read(path).map_err(|e| CliError::from(Error::io(path, e)))?;
            ModelSource::Onnx { name: path.file_name().map_or("model.onnx".into(), |n| n.to_string_lossy().into_owned()), bytes }
        }
        None => ModelSource::MobileNet(MobileNetConfig {
            alpha: args.alpha.unwrap_or(1.0),
            resolution: args.resolution.unwrap_or(32),
            classes: args.classes.unwrap_or(10),
            channels: args.channels.unwrap_or(3),
            variant: args.variant.map_or(Variant::Standard, Variant::from),
            seed,
            batch: 1,
        }),
    };
    Ok((settings, source))
}

/// The checkpoint's settings, with `--epochs` free to change and every other flag given on
/// the command line required to agree (a resumed run is the same run).
fn resume_settings(args: &Args, c: &Checkpoint) -> Result<(Settings, ModelSource), CliError> {
    let saved: Settings = serde_json::from_value(c.config.clone())
        .map_err(|e| CliError { file: Some(args.out.join(CHECKPOINT_FILE)), message: format!("its training settings do not parse: {e}"), usage: false })?;
    let mut differ = Vec::new();
    // The model flags may be repeated (re-running the same command with --resume) but must
    // describe the checkpoint's model.
    match &c.model {
        ModelSource::MobileNet(m) => {
            if args.model.is_some() {
                differ.push("MODEL.onnx (the run trains a constructed network)".to_string());
            }
            let mut net = |name: &str, given: Option<String>, saved: String| {
                if given.is_some_and(|g| g != saved) {
                    differ.push(format!("{name} (the run has {saved})"));
                }
            };
            net("--alpha", args.alpha.map(|v| v.to_string()), m.alpha.to_string());
            net("--resolution", args.resolution.map(|v| v.to_string()), m.resolution.to_string());
            net("--classes", args.classes.map(|v| v.to_string()), m.classes.to_string());
            net("--channels", args.channels.map(|v| v.to_string()), m.channels.to_string());
            net("--variant", args.variant.map(|v| Variant::from(v).cli_name().to_string()), m.variant.cli_name().to_string());
        }
        ModelSource::Onnx { bytes, name } => {
            if args.alpha.is_some() || args.resolution.is_some() || args.classes.is_some() || args.channels.is_some() || args.variant.is_some() {
                differ.push(format!("network flags (the run trains {name})"));
            }
            if let Some(p) = &args.model {
                if std::fs::read(p).ok().as_deref() != Some(bytes.as_slice()) {
                    differ.push(format!("{} (not the model the run started from, {name})", p.display()));
                }
            }
        }
    }
    let mut same = |name: &str, given: Option<String>, saved: String| {
        if let Some(g) = given {
            if g != saved {
                differ.push(format!("{name} {g} (the run has {saved})"));
            }
        }
    };
    same("--data", args.data.clone(), saved.data.clone());
    same("--batch-size", args.batch_size.map(|v| v.to_string()), saved.batch_size.to_string());
    same("--optimizer", args.optimizer.map(|o| format!("{o:?}").to_lowercase()), format!("{:?}", saved.optimizer).to_lowercase());
    same("--lr", args.lr.map(|v| v.to_string()), saved.lr.to_string());
    same("--limit", args.limit.map(|v| v.to_string()), saved.limit.map_or("none".into(), |v| v.to_string()));
    same("--seed", args.seed.map(|v| v.to_string()), saved.seed.to_string());
    same("--lr-schedule", args.lr_schedule.map(|v| format!("{v:?}").to_lowercase()), format!("{:?}", saved.lr_schedule).to_lowercase());
    same("--augment", args.augment.then(|| "on".to_string()), if saved.augment { "on" } else { "off" }.to_string());
    if !differ.is_empty() {
        return Err(CliError::usage(format!("--resume continues the same run; these flags differ from it: {}", differ.join(", "))));
    }
    let settings = Settings { epochs: args.epochs.unwrap_or(saved.epochs), ..saved };
    check(&settings)?;
    Ok((settings, c.model.clone()))
}

fn check(s: &Settings) -> Result<(), CliError> {
    if s.batch_size == 0 {
        return Err(CliError::usage("--batch-size must be at least 1"));
    }
    if !(s.lr.is_finite() && s.lr > 0.0) {
        return Err(CliError::usage(format!("--lr must be a positive number, got {}", s.lr)));
    }
    Ok(())
}

fn source_graph(source: &ModelSource, path: Option<&Path>) -> Result<Graph, CliError> {
    match (source, path) {
        (ModelSource::Onnx { bytes, .. }, Some(p)) => import_bytes(bytes, &ImportOptions::default()).map_err(|e| CliError::at(p, e)),
        _ => source.graph().map_err(CliError::from),
    }
}

fn model_error(args: &Args, e: Error) -> CliError {
    match &args.model {
        Some(p) => CliError { usage: false, ..CliError::at(p, e) },
        None => CliError::from(e),
    }
}

fn describe_source(s: &ModelSource) -> String {
    match s {
        ModelSource::MobileNet(c) => crate::graph::mobilenet::describe(c),
        ModelSource::Onnx { name, .. } => name.clone(),
    }
}

fn open_data(spec: &str, input: ImageShape) -> Result<(Dataset, Dataset), CliError> {
    let err = |e: data::DataError| CliError { file: None, message: e.to_string(), usage: false };
    let train = data::open(spec, Split::Train, input).map_err(err)?;
    let test = data::open(spec, Split::Test, input).map_err(err)?;
    Ok((train, test))
}

fn optimizer(s: &Settings, steps_per_epoch: u64) -> Result<Box<dyn Optimizer>, CliError> {
    let err = |e: mobilenetc_runtime::optim::OptimError| CliError::usage(e.to_string());
    let schedule = match s.lr_schedule {
        ScheduleArg::Constant => LrSchedule::constant(s.lr),
        ScheduleArg::Step => LrSchedule::step_epochs(s.lr, (s.epochs / 3).max(1), 0.1, steps_per_epoch),
        ScheduleArg::Cosine => LrSchedule::cosine(s.lr, s.epochs * steps_per_epoch, 0.0),
    };
    Ok(match s.optimizer {
        OptimizerArg::Adam => Box::new(Adam::new(AdamConfig::pytorch(), schedule).map_err(err)?),
        OptimizerArg::Sgd => Box::new(Sgd::new(SgdConfig::default(), schedule).map_err(err)?),
    })
}

/// Puts a checkpoint's weights, statistics and optimizer state into a fresh trainer.
fn restore(trainer: &mut Trainer, opt: &mut dyn Optimizer, c: &Checkpoint) -> crate::Result<()> {
    let slots: Vec<String> = trainer.slot_names().iter().map(|s| s.to_string()).collect();
    let saved: Vec<&String> = c.tensors[..c.trainable].iter().map(|(n, _)| n).collect();
    if saved.len() != slots.len() || saved.iter().zip(&slots).any(|(a, b)| *a != b) {
        return Err(Error::Checkpoint("its trainable tensors are not the model's (another model?)".into()));
    }
    trainer.set_parameters(&c.tensors)?;
    if let Some(state) = &c.optimizer {
        opt.load_state(state, &trainer.slot_sizes()).map_err(|e| Error::Checkpoint(e.to_string()))?;
    }
    Ok(())
}

/// Mean loss and accuracy over the whole loader, in inference mode.
fn evaluate(trainer: &mut Trainer, loader: &Loader<'_>, images: &mut [f32], labels: &mut [u32]) -> Result<(f64, f64), CliError> {
    let ep = loader.epoch(0);
    let il = loader.image_len();
    let (mut seen, mut loss, mut correct) = (0usize, 0.0f64, 0usize);
    for b in 0..ep.num_batches() {
        let n = ep.batch_into(b, images, labels);
        let s = trainer.eval_step(&images[..n * il], &labels[..n]).map_err(CliError::from)?;
        seen += n;
        loss += s.loss as f64 * n as f64;
        correct += s.correct;
    }
    Ok((loss / seen as f64, correct as f64 / seen as f64))
}

/// metrics.csv and curves.png from the whole history, each written atomically.
fn write_outputs(dir: &Path, history: &[EpochRecord]) -> Result<(), CliError> {
    let csv = dir.join("metrics.csv");
    mobilenetc_runtime::atomic::write_atomic(&csv, metrics_csv(history).as_bytes()).map_err(|e| CliError::from(Error::io(&csv, e)))?;
    let png = dir.join("curves.png");
    crate::plot::write_curves(history, &png).map_err(|e| CliError::at(&png, e))
}

/// The CSV text: the header, then one row per epoch.
pub fn metrics_csv(history: &[EpochRecord]) -> String {
    let mut s = format!("{METRICS_HEADER}\n");
    for r in history {
        s.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.3},{:.1}\n",
            r.epoch, r.train_loss, r.train_acc, r.val_loss, r.val_acc, r.seconds, r.images_per_second
        ));
    }
    s
}

/// The progress bar on stderr: redrawn in place on a terminal (at most ~10 times a second),
/// otherwise a line every 10% of the epoch so logs stay short.
struct Progress {
    epoch: u64,
    epochs: u64,
    batches: usize,
    tty: bool,
    last: Option<Instant>,
    last_decile: usize,
}

impl Progress {
    fn new(epoch: u64, epochs: u64, batches: usize, tty: bool) -> Progress {
        Progress { epoch, epochs, batches, tty, last: None, last_decile: 0 }
    }

    fn update(&mut self, done: usize, loss: f64, acc: f64, ips: f64) {
        let line = |width: usize| {
            let filled = done * width / self.batches.max(1);
            format!(
                "epoch {}/{} [{}{}] {done}/{} loss {loss:.4} acc {:.2}% {ips:.0} img/s",
                self.epoch,
                self.epochs,
                "=".repeat(filled),
                " ".repeat(width - filled),
                self.batches,
                100.0 * acc
            )
        };
        let mut err = std::io::stderr().lock();
        if self.tty {
            if self.last.is_some_and(|t| t.elapsed().as_millis() < 100) && done < self.batches {
                return;
            }
            self.last = Some(Instant::now());
            let _ = write!(err, "\r{}\x1b[K", line(30));
            let _ = err.flush();
        } else {
            let decile = done * 10 / self.batches.max(1);
            if decile > self.last_decile && done < self.batches {
                self.last_decile = decile;
                let _ = writeln!(err, "{}", line(20));
            }
        }
    }

    fn finish(&mut self) {
        if self.tty {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
