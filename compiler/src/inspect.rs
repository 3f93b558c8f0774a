//! Per-layer counts (mult-adds, params) and the `inspect` report.
