//! `--max-bytes`, shared by the subcommands that import a model: the byte limit that
//! [`crate::limits`] checks every model-sized allocation against before making it.

/// The byte limit flag.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct LimitArgs {
    /// Refuse a model whose tensors, weights or activation arena need more bytes than this,
    /// before allocating them [default: 4294967296 (4 GiB)]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_bytes: Option<u64>,
}

impl LimitArgs {
    /// The limit in bytes: the flag, or [`crate::limits::DEFAULT_MAX_BYTES`].
    pub fn bytes(&self) -> u64 {
        self.max_bytes.unwrap_or(crate::limits::DEFAULT_MAX_BYTES)
    }
}
