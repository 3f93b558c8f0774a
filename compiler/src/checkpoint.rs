//! Training checkpoints: one [safetensors] file that holds everything a run needs to go on
//! exactly where it stopped, and that other tools can read.
//!
//! # Format (version 1)
//!
//! A standard safetensors file (8-byte little-endian header length, JSON header, raw data), so
//! Python's `safetensors.numpy.load_file`, PyTorch's `safetensors.torch.load_file` or candle read
//! it as they read any other. Tensors:
//!
//! | key | dtype | shape | what |
//! |---|---|---|---|
//! | `<ONNX initializer name>` | F32 | as in the model | a trained parameter (conv weight OIHW, BatchNorm scale/bias, Gemm weight, bias) or a BatchNorm running mean/variance |
//! | `__optimizer__/<buffer>/<parameter name>` | F32 | the parameter's | an optimizer buffer of that parameter: `momentum` (SGD), `m` and `v` (Adam) |
//! | `__model__/source.onnx` | U8 | [bytes] | the imported source model's ONNX bytes (imported models only) |
//!
//! Metadata (`__metadata__`, string to string):
//!
//! | key | value |
//! |---|---|
//! | `format` | `mobilenetc-checkpoint` |
//! | `format_version` | `1` |
//! | `epoch` | epochs finished (the next run starts at this epoch, 0-based) |
//! | `seed` | the run's seed (weight initialization, data order, augmentation) |
//! | `model` | JSON: `{"kind": "mobilenet_v1", "alpha", "resolution", "classes", "channels", "variant", "seed"}` (rebuilt by the constructor) or `{"kind": "onnx", "name"}` (the bytes above) |
//! | `parameters` | JSON list: the trainable tensors' names in optimizer slot order |
//! | `running_stats` | JSON list: the BatchNorm running statistics' names |
//! | `optimizer` | JSON `{"kind": "adam"\|"sgd", "step": N}` (absent without optimizer state) |
//! | `config` | JSON: the training settings of the run (data, batch size, optimizer, learning rate, ...) |
//! | `history` | JSON list of per-epoch metrics (the rows of metrics.csv) |
//! | `producer` | `mobilenetc <version>` |
//!
//! The weights use the model's own ONNX names, so `mobilenetc export` (or any tool) can put
//! them back into the source graph. Files are written atomically (temporary file, fsync,
//! rename): a crash while saving leaves the previous checkpoint intact.
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use std::collections::HashMap;
use std::path::Path;

use mobilenetc_runtime::optim::OptimState;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::graph::mobilenet::{mobilenet_v1, MobileNetConfig, Variant};
use crate::graph::{Graph, Tensor};
use crate::onnx::import::{import_bytes, ImportOptions};

pub const FORMAT: &str = "mobilenetc-checkpoint";
pub const FORMAT_VERSION: u32 = 1;
const OPTIMIZER_PREFIX: &str = "__optimizer__/";
const SOURCE_KEY: &str = "__model__/source.onnx";

/// Where the model's structure comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSource {
    /// Built by [`mobilenet_v1`] (the batch field is not stored; graphs are rebuilt with batch 1).
    MobileNet(MobileNetConfig),
    /// An imported ONNX file: its name (for messages) and its bytes.
    Onnx { name: String, bytes: Vec<u8> },
}

impl ModelSource {
    /// The source graph (initial weights; a checkpoint's tensors replace them). Imported
    /// models are imported with [`ImportOptions::default`] (symbolic batch 1), as `train` does.
    pub fn graph(&self) -> Result<Graph> {
        match self {
            ModelSource::MobileNet(cfg) => mobilenet_v1(&MobileNetConfig { batch: 1, ..cfg.clone() }),
            ModelSource::Onnx { bytes, .. } => import_bytes(bytes, &ImportOptions::default()),
        }
    }

    /// The source ONNX bytes, for imported models.
    pub fn onnx_bytes(&self) -> Option<&[u8]> {
        match self {
            ModelSource::Onnx { bytes, .. } => Some(bytes),
            ModelSource::MobileNet(_) => None,
        }
    }

    /// The metadata `model` JSON.
    pub fn to_json(&self) -> Value {
        match self {
            ModelSource::MobileNet(c) => json!({
                "kind": "mobilenet_v1", "alpha": c.alpha, "resolution": c.resolution, "classes": c.classes,
                "channels": c.channels, "variant": c.variant.cli_name(), "seed": c.seed,
            }),
            ModelSource::Onnx { name, .. } => json!({ "kind": "onnx", "name": name }),
        }
    }

    fn from_json(v: &Value, source: Option<Vec<u8>>) -> Result<ModelSource> {
        let bad = |m: &str| Error::Checkpoint(format!("metadata 'model': {m}"));
        let uint = |k: &str| v.get(k).and_then(Value::as_u64).map(|x| x as usize).ok_or_else(|| bad(&format!("no integer '{k}'")));
        match v.get("kind").and_then(Value::as_str) {
            Some("mobilenet_v1") => {
                let variant = match v.get("variant").and_then(Value::as_str) {
                    Some("standard") => Variant::Standard,
                    Some("full-conv") => Variant::FullConv,
                    Some("shallow") => Variant::Shallow,
                    other => return Err(bad(&format!("unknown variant {other:?}"))),
                };
                let alpha = v.get("alpha").and_then(Value::as_f64).ok_or_else(|| bad("no number 'alpha'"))? as f32;
                let seed = v.get("seed").and_then(Value::as_u64).ok_or_else(|| bad("no integer 'seed'"))?;
                Ok(ModelSource::MobileNet(MobileNetConfig {
                    alpha,
                    resolution: uint("resolution")?,
                    classes: uint("classes")?,
                    channels: uint("channels")?,
                    variant,
                    seed,
                    batch: 1,
                }))
            }
            Some("onnx") => {
                let name = v.get("name").and_then(Value::as_str).unwrap_or("model.onnx").to_string();
                let bytes = source.ok_or_else(|| bad(&format!("an imported model but no '{SOURCE_KEY}' tensor")))?;
                Ok(ModelSource::Onnx { name, bytes })
            }
            other => Err(bad(&format!("unknown kind {other:?}"))),
        }
    }
}

/// The metrics of one finished epoch (one row of metrics.csv).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: u64,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    /// Wall time of the epoch's training steps (validation excluded).
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

impl EpochRecord {
    fn to_json(self) -> Value {
        json!([self.epoch, self.train_loss, self.train_acc, self.val_loss, self.val_acc, self.seconds, self.images_per_second])
    }

    fn from_json(v: &Value) -> Option<EpochRecord> {
        let a = v.as_array().filter(|a| a.len() == 7)?;
        let f = |i: usize| a[i].as_f64();
        Some(EpochRecord {
            epoch: a[0].as_u64()?,
            train_loss: f(1)?,
            train_acc: f(2)?,
            val_loss: f(3)?,
            val_acc: f(4)?,
            seconds: f(5)?,
            images_per_second: f(6)?,
        })
    }
}

/// Everything saved after an epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub model: ModelSource,
    /// Trainable parameters (in slot order) then running statistics, by ONNX name, as
    /// `Trainer::parameters` gives them.
    pub tensors: Vec<(String, Tensor)>,
    /// How many of `tensors` (the first ones) are trainable: the optimizer's slots.
    pub trainable: usize,
    /// The optimizer's state; its buffers are named `"{slot}.{buffer}"` as `OptimState` has them.
    pub optimizer: Option<OptimState>,
    /// Epochs finished.
    pub epoch: u64,
    pub seed: u64,
    /// The training settings (free-form JSON; `train` stores its flags).
    pub config: Value,
    pub history: Vec<EpochRecord>,
}

impl Checkpoint {
    /// The safetensors bytes (see the module docs).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let names: Vec<&str> = self.tensors.iter().map(|(n, _)| n.as_str()).collect();
        if let Some(n) = names.iter().find(|n| n.starts_with("__")) {
            return Err(Error::Checkpoint(format!("tensor name '{n}' starts with '__', which the format reserves")));
        }
        if self.trainable > self.tensors.len() {
            return Err(Error::Checkpoint(format!("{} trainable of {} tensors", self.trainable, self.tensors.len())));
        }
        let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, t) in &self.tensors {
            owned.push((name.clone(), Dtype::F32, t.shape.clone(), f32_bytes(&t.data)));
        }
        if let Some(opt) = &self.optimizer {
            for (key, data) in &opt.buffers {
                let (slot, buffer) = split_slot_key(key).ok_or_else(|| Error::Checkpoint(format!("optimizer buffer name '{key}' is not slot.buffer")))?;
                let (name, t) = self.tensors[..self.trainable]
                    .get(slot)
                    .ok_or_else(|| Error::Checkpoint(format!("optimizer buffer '{key}' of slot {slot}, but there are {} trainable tensors", self.trainable)))?;
                if data.len() != t.data.len() {
                    return Err(Error::Checkpoint(format!("optimizer buffer '{key}' has {} values, '{name}' {}", data.len(), t.data.len())));
                }
                owned.push((format!("{OPTIMIZER_PREFIX}{buffer}/{name}"), Dtype::F32, t.shape.clone(), f32_bytes(data)));
            }
        }
        if let ModelSource::Onnx { bytes, .. } = &self.model {
            owned.push((SOURCE_KEY.to_string(), Dtype::U8, vec![bytes.len()], bytes.clone()));
        }
        let views = owned
            .iter()
            .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Checkpoint(e.to_string()))?;

        let list = |r: std::ops::Range<usize>| Value::from(self.tensors[r].iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()).to_string();
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
        meta.insert("epoch".to_string(), self.epoch.to_string());
        meta.insert("seed".to_string(), self.seed.to_string());
        meta.insert("model".to_string(), self.model.to_json().to_string());
        meta.insert("parameters".to_string(), list(0..self.trainable));
        meta.insert("running_stats".to_string(), list(self.trainable..self.tensors.len()));
        if let Some(opt) = &self.optimizer {
            meta.insert("optimizer".to_string(), json!({ "kind": opt.kind, "step": opt.step }).to_string());
        }
        meta.insert("config".to_string(), self.config.to_string());
        meta.insert("history".to_string(), Value::from(self.history.iter().map(|r| r.to_json()).collect::<Vec<_>>()).to_string());
        meta.insert("producer".to_string(), format!("mobilenetc {}", env!("CARGO_PKG_VERSION")));
        safetensors::serialize(views, Some(meta)).map_err(|e| Error::Checkpoint(e.to_string()))
    }

    /// Parses a checkpoint; every inconsistency is an [`Error::Checkpoint`], never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Checkpoint(format!("not a safetensors file ({e})")))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| Error::Checkpoint(e.to_string()))?;
        let empty = HashMap::new();
        let meta = header.metadata().as_ref().unwrap_or(&empty);
        let get = |k: &str| meta.get(k).ok_or_else(|| Error::Checkpoint(format!("metadata has no '{k}'")));
        if get("format")? != FORMAT {
            return Err(Error::Checkpoint(format!("a safetensors file, but not a {FORMAT} (metadata 'format' is '{}')", meta["format"])));
        }
        let version = get("format_version")?;
        if version != &FORMAT_VERSION.to_string() {
            return Err(Error::Checkpoint(format!("format version {version}; this mobilenetc reads version {FORMAT_VERSION}")));
        }
        let number = |k: &str| -> Result<u64> { get(k)?.parse().map_err(|_| Error::Checkpoint(format!("metadata '{k}' is not an integer"))) };
        let json_of = |k: &str| -> Result<Value> { serde_json::from_str(get(k)?).map_err(|e| Error::Checkpoint(format!("metadata '{k}': {e}"))) };
        let names_of = |k: &str| -> Result<Vec<String>> {
            serde_json::from_str(get(k)?).map_err(|e| Error::Checkpoint(format!("metadata '{k}' is not a list of names: {e}")))
        };
        let epoch = number("epoch")?;
        let seed = number("seed")?;
        let parameters = names_of("parameters")?;
        let stats = names_of("running_stats")?;

        let tensor = |name: &str| -> Result<Tensor> {
            let v = st.tensor(name).map_err(|_| Error::Checkpoint(format!("metadata lists '{name}' but the file has no such tensor")))?;
            f32_tensor(name, &v)
        };
        let tensors = parameters.iter().chain(&stats).map(|n| Ok((n.clone(), tensor(n)?))).collect::<Result<Vec<_>>>()?;

        let optimizer = match meta.get("optimizer") {
            None => None,
            Some(_) => {
                let o = json_of("optimizer")?;
                let kind = o.get("kind").and_then(Value::as_str).ok_or_else(|| Error::Checkpoint("metadata 'optimizer' has no 'kind'".into()))?;
                let step = o.get("step").and_then(Value::as_u64).ok_or_else(|| Error::Checkpoint("metadata 'optimizer' has no 'step'".into()))?;
                let mut buffers = Vec::new();
                for (key, view) in st.iter() {
                    let Some(rest) = key.strip_prefix(OPTIMIZER_PREFIX) else { continue };
                    let (buffer, name) = rest.split_once('/').ok_or_else(|| Error::Checkpoint(format!("optimizer tensor '{key}' is not {OPTIMIZER_PREFIX}<buffer>/<parameter>")))?;
                    let slot = parameters.iter().position(|p| p == name).ok_or_else(|| Error::Checkpoint(format!("optimizer tensor '{key}' names no trainable parameter")))?;
                    let t = f32_tensor(key, &view)?;
                    if t.shape != tensors[slot].1.shape {
                        return Err(Error::Checkpoint(format!("optimizer tensor '{key}' has shape {:?}, its parameter {:?}", t.shape, tensors[slot].1.shape)));
                    }
                    buffers.push((slot, format!("{slot}.{buffer}"), t.data));
                }
                // OptimState lists buffers by slot then buffer name, as optimizers snapshot them.
                buffers.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
                Some(OptimState { kind: kind.to_string(), step, buffers: buffers.into_iter().map(|(_, k, d)| (k, d)).collect() })
            }
        };

        let source = match st.tensor(SOURCE_KEY) {
            Ok(v) if v.dtype() == Dtype::U8 => Some(v.data().to_vec()),
            Ok(v) => return Err(Error::Checkpoint(format!("'{SOURCE_KEY}' is {:?}, not U8", v.dtype()))),
            Err(_) => None,
        };
        let model = ModelSource::from_json(&json_of("model")?, source)?;
        let history = json_of("history")?
            .as_array()
            .ok_or_else(|| Error::Checkpoint("metadata 'history' is not a list".into()))?
            .iter()
            .map(|r| EpochRecord::from_json(r).ok_or_else(|| Error::Checkpoint(format!("metadata 'history': bad row {r}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Checkpoint { model, trainable: parameters.len(), tensors, optimizer, epoch, seed, config: json_of("config")?, history })
    }

    /// Writes the checkpoint atomically: a crash or an error leaves the previous file intact.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_file(path, &self.to_bytes()?)
    }

    /// Reads a checkpoint; errors name the file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Checkpoint::from_bytes(&bytes).map_err(|e| Error::in_file(path, e))
    }

    /// The source graph with the checkpoint's weights and running statistics.
    pub fn graph(&self) -> Result<Graph> {
        let mut g = self.model.graph()?;
        let by_name: HashMap<&str, usize> = g.tensors.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
        for (name, t) in &self.tensors {
            let id = *by_name.get(name.as_str()).ok_or_else(|| Error::Checkpoint(format!("tensor '{name}' is not in the model")))?;
            match g.constants.get(&id) {
                Some(old) if old.shape == t.shape => {}
                Some(old) => return Err(Error::Checkpoint(format!("tensor '{name}' has shape {:?}; the model's has {:?}", t.shape, old.shape))),
                None => return Err(Error::Checkpoint(format!("'{name}' is not an initializer of the model"))),
            }
            g.constants.insert(id, t.clone());
        }
        Ok(g)
    }
}

/// The environment variable of the crash test: `NAME` or `NAME@K` makes the process abort
/// (as a kill would: no unwinding, no cleanup) halfway through writing the `K`-th (default
/// first) file named `NAME`, after half of its bytes reached the temporary file.
pub const CRASH_ENV: &str = "MOBILENETC_CRASH_WHILE_WRITING";

/// Like [`CRASH_ENV`], but the process stops halfway instead of aborting: it prints
/// [`PAUSE_MARKER`] and the temporary file's name on stderr and sleeps until it is killed, so a
/// test can kill it (SIGKILL) at a known point of the write.
pub const PAUSE_ENV: &str = "MOBILENETC_PAUSE_WHILE_WRITING";

/// The start of the stderr line a paused writer prints (see [`PAUSE_ENV`]).
pub const PAUSE_MARKER: &str = "mobilenetc: paused while writing";

/// Writes a checkpoint or an exported model atomically (see `runtime::atomic`), honouring
/// [`CRASH_ENV`] and [`PAUSE_ENV`] so that tests can show that a crash or a kill mid-write
/// leaves the previous file intact. Both hooks are read from the environment only here and
/// do nothing unless a test sets them.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let crash = hook_fires(CRASH_ENV, path);
    let pause = hook_fires(PAUSE_ENV, path);
    mobilenetc_runtime::atomic::write_atomic_with(path, |f| {
        if crash || pause {
            f.write_all(&bytes[..bytes.len() / 2])?;
            f.sync_all()?;
            if crash {
                std::process::abort();
            }
            eprintln!("{PAUSE_MARKER} {}", path.display());
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        f.write_all(bytes)
    })
    .map_err(|e| Error::io(path, e))
}

/// Whether the hook `env` (`NAME` or `NAME@K`) fires for this write of `path`: the `K`-th
/// write (default first) of a file named `NAME`, counted per hook.
fn hook_fires(env: &str, path: &Path) -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static CRASH_WRITES: AtomicU64 = AtomicU64::new(0);
    static PAUSE_WRITES: AtomicU64 = AtomicU64::new(0);
    let Some(spec) = std::env::var_os(env) else { return false };
    let spec = spec.to_string_lossy();
    let (name, k) = match spec.split_once('@') {
        Some((n, k)) => (n.to_string(), k.parse::<u64>().unwrap_or(1)),
        None => (spec.to_string(), 1),
    };
    if path.file_name().is_none_or(|f| f.to_string_lossy() != name) {
        return false;
    }
    let writes = if env == CRASH_ENV { &CRASH_WRITES } else { &PAUSE_WRITES };
    writes.fetch_add(1, Ordering::SeqCst) + 1 == k
}

fn split_slot_key(key: &str) -> Option<(usize, &str)> {
    let (slot, buffer) = key.split_once('.')?;
    Some((slot.parse().ok()?, buffer))
}

fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f32_tensor(name: &str, v: &TensorView<'_>) -> Result<Tensor> {
    if v.dtype() != Dtype::F32 {
        return Err(Error::Checkpoint(format!("tensor '{name}' is {:?}, expected F32", v.dtype())));
    }
    let data = v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok(Tensor::new(v.shape().to_vec(), data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(model: ModelSource) -> Checkpoint {
        Checkpoint {
            model,
            tensors: vec![
                ("conv.w".into(), Tensor::new(vec![2, 1, 1, 1], vec![1.5, -2.0])),
                ("bn/scale".into(), Tensor::new(vec![2], vec![0.25, f32::MIN_POSITIVE])),
                ("bn.mean".into(), Tensor::new(vec![2], vec![3.0, -0.0])),
            ],
            trainable: 2,
            optimizer: Some(OptimState {
                kind: "adam".into(),
                step: 7,
                buffers: vec![("0.m".into(), vec![0.1, 0.2]), ("0.v".into(), vec![0.3, 0.4]), ("1.m".into(), vec![0.5, 0.6]), ("1.v".into(), vec![0.7, 0.8])],
            }),
            epoch: 3,
            seed: 42,
            config: json!({"batch_size": 128, "optimizer": "adam"}),
            history: vec![EpochRecord { epoch: 1, train_loss: 1.25, train_acc: 0.5, val_loss: 1.5, val_acc: 0.4, seconds: 2.0, images_per_second: 100.0 }],
        }
    }

    #[test]
    fn round_trips_every_field() {
        let cfg = MobileNetConfig { alpha: 0.25, resolution: 32, classes: 10, ..MobileNetConfig::default() };
        for model in [ModelSource::MobileNet(cfg), ModelSource::Onnx { name: "m.onnx".into(), bytes: vec![8, 1, 2, 3] }] {
            let c = sample(model);
            let back = Checkpoint::from_bytes(&c.to_bytes().unwrap()).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn other_tools_see_plain_named_tensors() {
        let bytes = sample(ModelSource::MobileNet(MobileNetConfig::default())).to_bytes().unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let w = st.tensor("conv.w").unwrap();
        assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[2usize, 1, 1, 1][..]));
        assert_eq!(st.tensor("__optimizer__/m/bn/scale").unwrap().shape(), &[2]);
    }

    #[test]
    fn damaged_files_are_errors() {
        let bytes = sample(ModelSource::MobileNet(MobileNetConfig::default())).to_bytes().unwrap();
        for cut in [0, 7, 8, 20, bytes.len() / 2, bytes.len() - 1] {
            assert!(matches!(Checkpoint::from_bytes(&bytes[..cut]), Err(Error::Checkpoint(_))), "cut at {cut}");
        }
        let plain = safetensors::serialize(Vec::<(String, TensorView)>::new(), None).unwrap();
        let e = Checkpoint::from_bytes(&plain).unwrap_err().to_string();
        assert!(e.contains("no 'format'"), "{e}");
    }
}
