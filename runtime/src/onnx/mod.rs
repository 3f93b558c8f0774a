//! ONNX messages as prost types, generated from the official `onnx.proto` (IR version 10)
//! by `tools/protogen` and checked in, so that no system `protoc` is needed.

#[allow(clippy::all, missing_docs, rustdoc::all)]
#[rustfmt::skip]
pub mod proto;

pub use proto::*;

/// The ONNX IR version of the schema these messages come from.
pub const SCHEMA_IR_VERSION: i64 = 10;
