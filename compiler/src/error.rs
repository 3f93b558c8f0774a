//! One error type for the whole compiler. Every variant names what a user needs to find the
//! problem: the file, the node, the op, the opset, the shapes.

use std::path::PathBuf;

/// An op that the importer does not support, as found in one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedOp {
    pub node: String,
    pub op: String,
    pub domain: String,
    pub opset: i64,
}

impl std::fmt::Display for UnsupportedOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let domain = if self.domain.is_empty() { "ai.onnx" } else { &self.domain };
        write!(f, "node '{}': op {} ({} opset {})", self.node, self.op, domain, self.opset)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// The bytes are not a valid ONNX protobuf message.
    #[error("not a valid ONNX model: {0}")]
    Decode(String),

    /// Every unsupported op of the model, listed at once.
    #[error("{} unsupported op(s):\n  {}", .0.len(), .0.iter().map(|u| u.to_string()).collect::<Vec<_>>().join("\n  "))]
    Unsupported(Vec<UnsupportedOp>),

    /// A node whose attributes or inputs are not valid for its op.
    #[error("node '{node}' ({op}): {message}")]
    Node { node: String, op: String, message: String },

    /// Shapes that disagree, with what to do about it.
    #[error("node '{node}' ({op}): {message}")]
    Shape { node: String, op: String, message: String },

    /// The graph's structure is wrong: a cycle, a dangling input, a duplicate name.
    #[error("invalid graph: {0}")]
    Graph(String),

    /// A limit protects the machine: a tensor or a model too large to allocate.
    #[error("{0}")]
    Limit(String),

    /// A wrong argument from the user (CLI flag, constructor parameter).
    #[error("{0}")]
    Invalid(String),

    /// A training checkpoint that cannot be used (not one, damaged, or of another model).
    #[error("not a usable checkpoint: {0}")]
    Checkpoint(String),

    /// An error found while reading a file, prefixed with the file's path.
    #[error("{}: {source}", path.display())]
    InFile { path: PathBuf, source: Box<Error> },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
    pub fn node(node: &str, op: &str, message: impl Into<String>) -> Self {
        Error::Node { node: node.into(), op: op.into(), message: message.into() }
    }
    pub fn shape(node: &str, op: &str, message: impl Into<String>) -> Self {
        Error::Shape { node: node.into(), op: op.into(), message: message.into() }
    }
    /// Names the file an error came from (an I/O error already does).
    pub fn in_file(path: impl Into<PathBuf>, err: Error) -> Self {
        match err {
            e @ (Error::Io { .. } | Error::InFile { .. }) => e,
            e => Error::InFile { path: path.into(), source: Box::new(e) },
        }
    }
    /// The error under any file prefix (to match on its kind).
    pub fn innermost(&self) -> &Error {
        match self {
            Error::InFile { source, .. } => source.innermost(),
            e => e,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
