//! Generates the code the benchmarks time: for each benchmarked MobileNet v1 (constructed by
//! mobilenetc with seed 0, the model `mobilenetc new` writes), the ONNX file the peers run and
//! the Rust module `mobilenetc build` would emit, both in OUT_DIR.

use std::path::PathBuf;

use mobilenetc::codegen::{self, CodegenOptions, WeightSource};
use mobilenetc::graph::mobilenet::{mobilenet_v1, MobileNetConfig};
use mobilenetc::onnx::export::{to_bytes, ExportOptions};

/// (file stem, struct name, alpha, resolution, classes). Keep in step with `src/generated.rs`.
const MODELS: [(&str, &str, f32, usize, usize); 4] = [
    ("mobilenet_1_0_224", "Mobilenet10", 1.0, 224, 1000),
    ("mobilenet_0_5_224", "Mobilenet05", 0.5, 224, 1000),
    ("mobilenet_0_25_224", "Mobilenet025", 0.25, 224, 1000),
    ("mobilenet_seed", "MobilenetSeed", 1.0, 32, 10),
];

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    for (stem, name, alpha, resolution, classes) in MODELS {
        let cfg = MobileNetConfig { alpha, resolution, classes, batch: 1, ..MobileNetConfig::default() };
        let g = mobilenet_v1(&cfg).expect("construct the model");
        let onnx = to_bytes(&g, &ExportOptions { symbolic_batch: None }).expect("export ONNX");
        std::fs::write(out.join(format!("{stem}.onnx")), &onnx).expect("write ONNX");
        let s = mobilenetc::lower::compile(&g).expect("compile");
        let opts = CodegenOptions {
            name: name.into(),
            weights: WeightSource::IncludeBytes(format!("{stem}.bin")),
            invocation: format!("bench/build.rs ({stem})"),
            model_hash: codegen::sha256_hex(&onnx),
        };
        let code = codegen::render(&s, &opts).expect("generate");
        std::fs::write(out.join(format!("{stem}.rs")), code).expect("write code");
        std::fs::write(out.join(format!("{stem}.bin")), s.weight_bytes()).expect("write weights");
    }
}
