//! Weights of generated training code, saved and loaded in the compiler's checkpoint format.
//!
//! The file is the one `mobilenetc train` writes (`compiler/src/checkpoint.rs`, format
//! `mobilenetc-checkpoint` version 1): a standard [safetensors] file whose F32 tensors are the
//! trainable parameters and the BatchNorm running statistics under their ONNX initializer
//! names, optionally the optimizer's buffers as `__optimizer__/<buffer>/<parameter>`, and the
//! metadata `format`, `format_version`, `parameters` and `running_stats` (JSON lists of names),
//! `model` (how to rebuild the graph), `epoch`, `seed`, `config`, `history`, `optimizer`,
//! `producer`. So a file saved by generated code goes to `mobilenetc export` (for a constructed
//! MobileNet, or an imported model whose ONNX bytes were stored with it), and a checkpoint of
//! `mobilenetc train` loads into generated code; Python's `safetensors` reads both.
//!
//! Files are written atomically ([`crate::atomic`]): a crash mid-save leaves the old file.
//!
//! [safetensors]: https://huggingface.co/docs/safetensors

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::optim::OptimState;

pub const FORMAT: &str = "mobilenetc-checkpoint";
pub const FORMAT_VERSION: u32 = 1;
const OPTIMIZER_PREFIX: &str = "__optimizer__/";
const SOURCE_KEY: &str = "__model__/source.onnx";

/// One named tensor, borrowed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorRef<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub data: &'a [f32],
}

/// What a saved file holds besides the tensors.
#[derive(Clone, Copy, Debug)]
pub struct SaveInfo<'a> {
    /// How many of the tensors (the first ones) are trainable: the optimizer's slots.
    pub trainable: usize,
    /// The metadata `model` JSON (`{"kind": "mobilenet_v1", ..}` or `{"kind": "onnx", "name"}`).
    pub model_json: &'a str,
    /// The source ONNX bytes of an imported model (what `mobilenetc export` rebuilds it from).
    pub source_onnx: Option<&'a [u8]>,
    pub seed: u64,
    /// The optimizer's state, to resume training exactly.
    pub optimizer: Option<&'a OptimState>,
}

/// A file that cannot be written, read or used.
#[derive(Debug)]
pub struct CheckpointError(pub String);

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "checkpoint: {}", self.0)
    }
}

impl std::error::Error for CheckpointError {}

/// The tensors and optimizer state read from a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// Every F32 tensor not reserved by the format (`__…`), by name.
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// The metadata `parameters` list: trainable names in optimizer slot order.
    pub parameters: Vec<String>,
    pub optimizer: Option<OptimState>,
}

impl Loaded {
    pub fn get(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.tensors.iter().find(|t| t.0 == name).map(|t| (t.1.as_slice(), t.2.as_slice()))
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    format!("[{}]", names.map(json_string).collect::<Vec<_>>().join(","))
}

fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The file's bytes (see the module docs).
pub fn encode(tensors: &[TensorRef<'_>], info: &SaveInfo<'_>) -> Result<Vec<u8>, CheckpointError> {
    if info.trainable > tensors.len() {
        return Err(CheckpointError(format!("{} trainable of {} tensors", info.trainable, tensors.len())));
    }
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for t in tensors {
        if t.name.starts_with("__") {
            return Err(CheckpointError(format!("tensor name '{}' starts with '__', which the format reserves", t.name)));
        }
        if t.shape.iter().product::<usize>() != t.data.len() {
            return Err(CheckpointError(format!("tensor '{}' has shape {:?} but {} values", t.name, t.shape, t.data.len())));
        }
        owned.push((t.name.to_string(), Dtype::F32, t.shape.to_vec(), f32_bytes(t.data)));
    }
    if let Some(opt) = info.optimizer {
        for (key, data) in &opt.buffers {
            let slot_buffer = key.split_once('.').and_then(|(s, b)| Some((s.parse::<usize>().ok()?, b)));
            let (slot, buffer) = slot_buffer.ok_or_else(|| CheckpointError(format!("optimizer buffer name '{key}' is not slot.buffer")))?;
            let t = tensors[..info.trainable]
                .get(slot)
                .ok_or_else(|| CheckpointError(format!("optimizer buffer '{key}' of slot {slot}, but there are {} trainable tensors", info.trainable)))?;
            if data.len() != t.data.len() {
                return Err(CheckpointError(format!("optimizer buffer '{key}' has {} values, '{}' {}", data.len(), t.name, t.data.len())));
            }
            owned.push((format!("{OPTIMIZER_PREFIX}{buffer}/{}", t.name), Dtype::F32, t.shape.to_vec(), f32_bytes(data)));
        }
    }
    if let Some(bytes) = info.source_onnx {
        owned.push((SOURCE_KEY.to_string(), Dtype::U8, vec![bytes.len()], bytes.to_vec()));
    }
    let views = owned
        .iter()
        .map(|(n, d, s, b)| TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CheckpointError(e.to_string()))?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), FORMAT.to_string());
    meta.insert("format_version".to_string(), FORMAT_VERSION.to_string());
    meta.insert("epoch".to_string(), "0".to_string());
    meta.insert("seed".to_string(), info.seed.to_string());
    meta.insert("model".to_string(), info.model_json.to_string());
    meta.insert("parameters".to_string(), json_list(tensors[..info.trainable].iter().map(|t| t.name)));
    meta.insert("running_stats".to_string(), json_list(tensors[info.trainable..].iter().map(|t| t.name)));
    if let Some(opt) = info.optimizer {
        meta.insert("optimizer".to_string(), format!("{{\"kind\":{},\"step\":{}}}", json_string(&opt.kind), opt.step));
    }
    meta.insert("config".to_string(), "{\"source\":\"generated code\"}".to_string());
    meta.insert("history".to_string(), "[]".to_string());
    meta.insert("producer".to_string(), format!("mobilenetc-runtime {}", env!("CARGO_PKG_VERSION")));
    safetensors::serialize(views, Some(meta)).map_err(|e| CheckpointError(e.to_string()))
}

/// Writes the file atomically.
pub fn save(path: &Path, tensors: &[TensorRef<'_>], info: &SaveInfo<'_>) -> Result<(), CheckpointError> {
    let bytes = encode(tensors, info)?;
    crate::atomic::write_atomic(path, &bytes).map_err(|e| CheckpointError(format!("{}: {e}", path.display())))
}

/// A JSON list of strings as the writer above (or serde_json) writes it.
fn parse_names(s: &str) -> Option<Vec<String>> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while chars.peek().is_some() {
        if chars.next()? != '"' {
            return None;
        }
        let mut name = String::new();
        loop {
            match chars.next()? {
                '"' => break,
                '\\' => match chars.next()? {
                    'u' => {
                        let hex: String = (0..4).map(|_| chars.next()).collect::<Option<String>>()?;
                        name.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    'n' => name.push('\n'),
                    't' => name.push('\t'),
                    'r' => name.push('\r'),
                    c => name.push(c),
                },
                c => name.push(c),
            }
        }
        out.push(name);
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
    }
    Some(out)
}

/// Parses a file; every inconsistency is an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<Loaded, CheckpointError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| CheckpointError(format!("not a safetensors file ({e})")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| CheckpointError(e.to_string()))?;
    let empty = HashMap::new();
    let meta = header.metadata().as_ref().unwrap_or(&empty);
    match meta.get("format") {
        Some(f) if f == FORMAT => {}
        other => return Err(CheckpointError(format!("not a {FORMAT} file (metadata 'format' is {other:?})"))),
    }
    if meta.get("format_version").map(String::as_str) != Some(&*FORMAT_VERSION.to_string()) {
        return Err(CheckpointError(format!("format version {:?}; this runtime reads version {FORMAT_VERSION}", meta.get("format_version"))));
    }
    let parameters = meta
        .get("parameters")
        .and_then(|s| parse_names(s))
        .ok_or_else(|| CheckpointError("metadata 'parameters' is missing or not a list of names".into()))?;
    let f32s = |name: &str, v: &TensorView<'_>| -> Result<Vec<f32>, CheckpointError> {
        if v.dtype() != Dtype::F32 {
            return Err(CheckpointError(format!("tensor '{name}' is {:?}, expected F32", v.dtype())));
        }
        Ok(v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    };
    let mut tensors = Vec::new();
    let mut buffers = Vec::new();
    for (name, view) in st.iter() {
        if let Some(rest) = name.strip_prefix(OPTIMIZER_PREFIX) {
            let (buffer, param) = rest.split_once('/').ok_or_else(|| CheckpointError(format!("optimizer tensor '{name}' is not {OPTIMIZER_PREFIX}<buffer>/<parameter>")))?;
            let slot = parameters.iter().position(|p| p == param).ok_or_else(|| CheckpointError(format!("optimizer tensor '{name}' names no trainable parameter")))?;
            buffers.push((slot, format!("{slot}.{buffer}"), f32s(name, &view)?));
        } else if !name.starts_with("__") {
            tensors.push((name.to_string(), view.shape().to_vec(), f32s(name, &view)?));
        }
    }
    // Optimizers snapshot their buffers by slot, then buffer name.
    buffers.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let optimizer = match meta.get("optimizer") {
        None => None,
        Some(o) => {
            let field = |k: &str| -> Option<&str> {
                let at = o.find(&format!("\"{k}\""))? + k.len() + 2;
                let rest = o[at..].trim_start().strip_prefix(':')?.trim_start();
                let end = rest.find([',', '}']).unwrap_or(rest.len());
                Some(rest[..end].trim().trim_matches('"'))
            };
            let kind = field("kind").ok_or_else(|| CheckpointError(format!("metadata 'optimizer' has no kind: {o}")))?;
            let step = field("step").and_then(|s| s.parse().ok()).ok_or_else(|| CheckpointError(format!("metadata 'optimizer' has no step: {o}")))?;
            Some(OptimState { kind: kind.to_string(), step, buffers: buffers.into_iter().map(|(_, k, d)| (k, d)).collect() })
        }
    };
    Ok(Loaded { tensors, parameters, optimizer })
}

/// Reads a file; errors name it.
pub fn load(path: &Path) -> Result<Loaded, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| CheckpointError(format!("{}: {e}", path.display())))?;
    decode(&bytes).map_err(|e| CheckpointError(format!("{}: {}", path.display(), e.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_tensors_and_optimizer_state() {
        let (w, s, m) = ([1.5f32, -2.0, 0.25, 3.0], [0.5f32, 0.125], [7.0f32, 8.0]);
        let tensors = [
            TensorRef { name: "conv\"w", shape: &[2, 2], data: &w },
            TensorRef { name: "bn.scale", shape: &[2], data: &s },
            TensorRef { name: "bn.mean", shape: &[2], data: &m },
        ];
        let opt = OptimState { kind: "adam".into(), step: 3, buffers: vec![("0.m".into(), vec![1.0; 4]), ("0.v".into(), vec![2.0; 4]), ("1.m".into(), vec![3.0; 2]), ("1.v".into(), vec![4.0; 2])] };
        let info = SaveInfo { trainable: 2, model_json: "{\"kind\":\"onnx\",\"name\":\"m.onnx\"}", source_onnx: Some(&[1, 2, 3]), seed: 5, optimizer: Some(&opt) };
        let back = decode(&encode(&tensors, &info).unwrap()).unwrap();
        assert_eq!(back.parameters, vec!["conv\"w".to_string(), "bn.scale".to_string()]);
        assert_eq!(back.get("conv\"w"), Some((&[2usize, 2][..], &w[..])));
        assert_eq!(back.get("bn.mean"), Some((&[2usize][..], &m[..])));
        assert_eq!(back.tensors.len(), 3);
        assert_eq!(back.optimizer, Some(opt));
    }

    #[test]
    fn damaged_or_foreign_files_are_errors() {
        let w = [1.0f32; 3];
        let info = SaveInfo { trainable: 1, model_json: "{}", source_onnx: None, seed: 0, optimizer: None };
        let bytes = encode(&[TensorRef { name: "w", shape: &[3], data: &w }], &info).unwrap();
        for cut in [0, 7, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let plain = safetensors::serialize(Vec::<(String, TensorView)>::new(), None).unwrap();
        assert!(decode(&plain).unwrap_err().to_string().contains("not a mobilenetc-checkpoint"));
        assert!(encode(&[TensorRef { name: "w", shape: &[2], data: &w }], &info).is_err());
        assert!(encode(&[TensorRef { name: "__w", shape: &[3], data: &w }], &info).is_err());
    }
}
