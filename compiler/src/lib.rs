//! mobilenetc: a compiler for MobileNet-class convolutional networks.
//!
//! ONNX file or constructor → [`graph::Graph`] → passes → schedule + memory plan →
//! generated Rust (codegen) or the schedule executor.

pub mod checkpoint;
pub mod cli;
pub mod error;
pub mod eval;
pub mod export;
pub mod graph;
pub mod inspect;
pub mod limits;
pub mod onnx;
pub mod passes;
pub mod plot;
pub mod schedule;
pub mod train;

pub use error::{Error, Result};
pub use mobilenetc_runtime as runtime;
pub mod lower;
pub mod exec;
pub mod codegen;
