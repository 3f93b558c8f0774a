//! Graph IR → ONNX ModelProto.
