//! ONNX → graph IR.
