//! include_model!: compiles an ONNX file or a constructed MobileNet into Rust at build time.
