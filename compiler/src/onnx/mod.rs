//! ONNX in and out: decoding a ModelProto into the graph IR, and writing the IR back.

pub mod export;
pub mod import;
