//! include_model!: compiles an ONNX file or a constructed MobileNet into Rust at build time.
//!
//! ```ignore
//! mobilenetc_macros::include_model!(MobileNet, "models/mobilenet.onnx");
//! mobilenetc_macros::include_model!(SeedNet, mobilenet_v1(alpha = 1.0, resolution = 32, classes = 10), batch = 1);
//! let mut net = SeedNet::new();
//! let probs: &[f32; 10] = net.infer(&[0.0; 3 * 32 * 32]);
//! ```
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
    let (graph, hash, span, track) = match &args.source {
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
            (g, codegen::sha256_hex(&bytes), span, Some(abs))
        }
        Source::MobileNet(m, span) => {
            let cfg = MobileNetConfig { alpha: m.alpha, resolution: m.resolution, classes: m.classes, channels: m.channels, seed: m.seed, batch, ..MobileNetConfig::default() };
            let g = mobilenet_v1(&cfg).map_err(|e| syn::Error::new(*span, format!("mobilenet_v1: {e}")))?;
            (g, String::new(), *span, None)
        }
    };
    let schedule = mobilenetc::lower::compile(&graph).map_err(|e| syn::Error::new(span, e.to_string()))?;
    let hash = if hash.is_empty() { codegen::sha256_hex(&[args.invocation().as_bytes(), &schedule.weight_bytes()].concat()) } else { hash };
    let opts = CodegenOptions { name: args.name.to_string(), weights: WeightSource::ByteString, invocation: args.invocation(), model_hash: hash };
    let threads = args.threads.map_or(1, |(t, _)| t);
    let code = codegen::generate_threaded(&schedule, &opts, threads).map_err(|e| syn::Error::new(args.name.span(), e.to_string()))?;
    // Cargo rebuilds the crate when an included file changes; the const is never used, so the
    // bytes do not reach the binary.
    let track = track.map(|p| quote!(const _: &[u8] = include_bytes!(#p);));
    Ok(quote! {
        #track
        #code
    })
}
