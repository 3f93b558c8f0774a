//! The graph IR, shape inference and the MobileNet v1 constructor.

pub mod ir;
pub mod mobilenet;
pub mod shape;

pub use ir::*;
