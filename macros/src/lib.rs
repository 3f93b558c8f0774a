//! include_model!: compiles an ONNX file or a constructed MobileNet into Rust at build time.
//!
//! ```ignore
//! mobilenetc_macros::include_model!(MobileNet, "models/mobilenet.onnx");
//! mobilenetc_macros::include_model!(SeedNet, mobilenet_v1(alpha = 1.0, resolution = 32, classes = 10), batch = 1);
//! let mut net = SeedNet::new();
//! let probs: &[f32; 10] = net.infer(&[0.0; 3 * 32 * 32]);
//! ```
//!
//! # Training code: `train = true`
//!
//! ```ignore
//! mobilenetc_macros::include_model!(Tiny, mobilenet_v1(alpha = 0.25, resolution = 32, classes = 10), batch = 16, train = true);
//! use mobilenetc_runtime::optim::{Adam, AdamConfig, LrSchedule};
//! let mut t = TinyTrainer::new();                 // starts from the model's initializers
//! let mut opt = Adam::new(AdamConfig::default(), LrSchedule::constant(1e-3)).unwrap();
//! let stats = t.train_step(&images, &labels, &mut opt)?; // images: &[f32; TinyTrainer::IMAGES_LEN] (NCHW), labels: &[u32; 16]
//! let val = t.eval_step(&images, &labels)?;       // running statistics; changes nothing
//! t.save("tiny.safetensors", Some(&opt))?;        // mobilenetc's checkpoint format (atomic)
//! for (name, shape, values) in t.parameters() { /* ONNX name, ONNX shape, data */ }
//! ```
//!
//! adds a second module `<snake_name>_train` with `<Name>Trainer` (re-exported): the training
//! schedule of `mobilenetc::train` (forward with batch statistics, fused softmax cross-entropy,
//! backward) and its evaluation schedule as straight-line Rust, one function per step with
//! shapes, arena offsets and op constants baked in, calling the same runtime kernels as the
//! training executor (`mobilenetc::train::Trainer`), so both compute the same bits for the same
//! thread count. `batch` is the training batch. `train_step(images, labels, opt)` takes any
//! `mobilenetc_runtime::optim::Optimizer` (SGD with momentum, Adam) and returns the loss and
//! correct count; `eval_step` evaluates with the running statistics; `parameters()` /
//! `gradients()` give tensors by ONNX initializer name; `save` / `load` / `checkpoint_bytes` /
//! `load_bytes` use the safetensors checkpoint of `mobilenetc train` (so `mobilenetc export`
//! turns a saved file into an ONNX model; for an imported model the file includes the source
//! ONNX bytes, which `save` embeds with `include_bytes!`). Labels outside the classes are an
//! error before anything changes.
//!
//! The expansion is a module `<snake_name>` holding the model struct (re-exported) and depends
//! only on `mobilenetc-runtime`, which the calling crate must list as a dependency. A relative
//! path is taken from the calling crate's `CARGO_MANIFEST_DIR`; the expansion includes the file
//! with `include_bytes!`, so cargo rebuilds the crate when the file changes. Mistakes are
//! compile errors spanned on the offending argument.

mod args;

use std::path::PathBuf;

use proc_macro2::TokenStream;
use quote::quote;

use args::{ModelArgs, Source};
use mobilenetc::checkpoint::ModelSource;
use mobilenetc::codegen::train::TrainCodegenOptions;
use mobilenetc::codegen::{self, CodegenOptions, WeightSource};
use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::onnx::import::{import_bytes, ImportOptions};

#[proc_macro]
pub fn include_model(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let args = syn::parse_macro_input!(input as ModelArgs);
    match expand(&args) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(args: &ModelArgs) -> syn::Result<TokenStream> {
    let batch = args.batch.map_or(1, |(b, _)| b);
    let (graph, hash, span, track, model) = match &args.source {
        Source::File(lit) => {
            let span = lit.span();
            let rel = PathBuf::from(lit.value());
            let path = if rel.is_absolute() {
                rel
            } else {
                let dir = std::env::var("CARGO_MANIFEST_DIR").map_err(|_| syn::Error::new(span, "CARGO_MANIFEST_DIR is not set: use include_model! from a cargo build"))?;
                PathBuf::from(dir).join(rel)
            };
            let bytes = std::fs::read(&path).map_err(|e| syn::Error::new(span, format!("cannot read ONNX file {}: {e} (relative paths are taken from the crate's CARGO_MANIFEST_DIR)", path.display())))?;
            let opts = ImportOptions { batch, ..ImportOptions::default() };
            let g = import_bytes(&bytes, &opts).map_err(|e| syn::Error::new(span, format!("{}: {e}", path.display())))?;
            let abs = path.to_string_lossy().into_owned();
            let name = path.file_name().map_or_else(|| "model.onnx".into(), |n| n.to_string_lossy().into_owned());
            let model = ModelSource::Onnx { name, bytes: Vec::new() };
            (g, codegen::sha256_hex(&bytes), span, Some(abs), model)
        }
        Source::MobileNet(m, span) => {
            let cfg = MobileNetConfig { alpha: m.alpha, resolution: m.resolution, classes: m.classes, channels: m.channels, seed: m.seed, batch, ..MobileNetConfig::default() };
            let g = mobilenet_v1(&cfg).map_err(|e| syn::Error::new(*span, format!("mobilenet_v1: {e}")))?;
            (g, String::new(), *span, None, ModelSource::MobileNet(cfg))
        }
    };
    let schedule = mobilenetc::lower::compile(&graph).map_err(|e| syn::Error::new(span, e.to_string()))?;
    let hash = if hash.is_empty() { codegen::sha256_hex(&[args.invocation().as_bytes(), &schedule.weight_bytes()].concat()) } else { hash };
    let opts = CodegenOptions { name: args.name.to_string(), weights: WeightSource::ByteString, invocation: args.invocation(), model_hash: hash };
    let threads = args.threads.map_or(1, |(t, _)| t);
    let code = codegen::generate_threaded(&schedule, &opts, threads).map_err(|e| syn::Error::new(args.name.span(), e.to_string()))?;
    let training = if args.train {
        let seed = match &model {
            ModelSource::MobileNet(c) => c.seed,
            ModelSource::Onnx { .. } => 0,
        };
        let topts = TrainCodegenOptions { name: format!("{}Trainer", args.name), model_json: model.to_json().to_string(), source_onnx: track.clone(), seed };
        codegen::train::generate_training(&graph, batch, &topts).map_err(|e| syn::Error::new(span, format!("train = true: {e}")))?
    } else {
        TokenStream::new()
    };
    // Cargo rebuilds the crate when an included file changes; the const is never used, so the
    // bytes do not reach the binary.
    let track = track.map(|p| quote!(const _: &[u8] = include_bytes!(#p);));
    Ok(quote! {
        #track
        #code
        #training
    })
}
