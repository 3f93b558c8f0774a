//! Models compiled at build time by `include_model!`.
