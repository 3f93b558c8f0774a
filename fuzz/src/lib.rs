//! The fuzz harness (shared with `tests/fuzz_replay.rs`, which includes `harness.rs` by path).
pub mod harness;
