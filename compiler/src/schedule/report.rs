//! The memory plan as text (for people) and JSON (for scripts): every buffer's offset, size
//! and live range, then the totals.

use std::fmt::Write;

use serde_json::json;

use super::buffers::{Buffer, Step};
use super::plan::Plan;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// One line per buffer in schedule order (by first step, then id), then the totals.
pub fn report_text(buffers: &[Buffer], steps: &[Step], plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "memory plan: {} steps, {} tensors in the arena", steps.len(), buffers.len());
    let name_width = buffers.iter().map(|b| b.name.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(out, "  {:>12}  {:>12}  {:>9}  {:<10}  {:<name_width$}  shares storage with", "offset", "bytes", "steps", "kind", "name");
    let mut rows: Vec<usize> = (0..buffers.len()).collect();
    rows.sort_by_key(|&b| (plan.intervals[b].0, b));
    for b in rows {
        let buf = &buffers[b];
        let (first, last) = plan.intervals[b];
        let root = plan.storage_root[b];
        let shares = if root == b {
            String::new()
        } else if plan.inplace_taken.iter().any(|&(_, w)| w == b) {
            format!("{} (in place)", buffers[root].name)
        } else {
            buffers[root].name.clone()
        };
        let _ = writeln!(
            out,
            "  {:>12}  {:>12}  {:>9}  {:<10}  {:<name_width$}  {}",
            plan.offsets[b],
            buf.bytes,
            format!("{first}..{last}"),
            buf.kind.name(),
            buf.name,
            shares
        );
    }
    let _ = writeln!(out, "arena:       {:>12} bytes ({:.2} MiB), placed {}", plan.arena_bytes, mib(plan.arena_bytes), plan.strategy.name());
    let _ = writeln!(out, "lower bound: {:>12} bytes ({:.2} MiB): the most bytes live at one step", plan.lower_bound_bytes, mib(plan.lower_bound_bytes));
    let _ = writeln!(out, "naive:       {:>12} bytes ({:.2} MiB): one buffer per tensor", plan.naive_bytes, mib(plan.naive_bytes));
    let _ = writeln!(out, "arena / lower bound = {:.4}; arena / naive = {:.4}", plan.ratio(), plan.arena_bytes as f64 / plan.naive_bytes.max(1) as f64);
    let _ = write!(out, "in place: {} step(s)", plan.inplace_taken.len());
    out
}

/// The `memory` object: integer totals and one entry per buffer, in buffer order.
pub fn report_json(buffers: &[Buffer], plan: &Plan) -> serde_json::Value {
    let tensors: Vec<serde_json::Value> = buffers
        .iter()
        .enumerate()
        .map(|(b, buf)| {
            json!({
                "name": buf.name,
                "kind": buf.kind.name(),
                "offset": plan.offsets[b],
                "bytes": buf.bytes,
                "first_step": plan.intervals[b].0,
                "last_step": plan.intervals[b].1,
                "storage": buffers[plan.storage_root[b]].name,
            })
        })
        .collect();
    json!({
        "arena_bytes": plan.arena_bytes,
        "lower_bound_bytes": plan.lower_bound_bytes,
        "naive_bytes": plan.naive_bytes,
        "alignment": super::buffers::ALIGN,
        "tensors": tensors,
    })
}
