//! The naive reference evaluator: plain loops, f64 accumulation; the oracle for tests.
