//! Placing a training schedule's buffers in one arena with the shared memory planner
//! ([`crate::schedule::plan`]).
//!
//! Each step becomes a planner [`Step`] with its reads and writes. A backward rule that works
//! in place writes the same buffer it reads (its output gradient becomes its input gradient),
//! so the planner sees one buffer, not an in-place pair. Forward values read by a backward
//! step are marked [`BufferKind::Saved`] for the report; liveness keeps them alive until that
//! step, and frees every other activation after its last forward reader.

use std::collections::BTreeSet;

use super::autodiff::{BufKind, Kernel, Schedule};
use crate::error::Result;
use crate::schedule::{plan, Buffer, BufferKind, Step};

#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// Per buffer, in floats.
    pub offsets: Vec<usize>,
    pub arena_floats: usize,
    /// The largest sum of sizes alive at one step: no placement can use less.
    pub lower_bound_floats: usize,
    /// Every buffer on its own.
    pub naive_floats: usize,
    /// Per buffer, `[first, last]` step.
    pub intervals: Vec<(usize, usize)>,
}

/// The planner's view of a schedule.
pub fn planner_input(s: &Schedule) -> (Vec<Buffer>, Vec<Step>) {
    let saved: BTreeSet<usize> = s.steps.iter().filter(|st| matches!(st.kernel, Kernel::Backward { .. })).flat_map(|st| st.reads.iter().copied()).collect();
    let buffers = s
        .bufs
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let kind = match b.kind {
                BufKind::Input => BufferKind::Input,
                BufKind::Gradient => BufferKind::Gradient,
                BufKind::Activation if saved.contains(&i) => BufferKind::Saved,
                BufKind::Activation => BufferKind::Activation,
            };
            Buffer::new(b.name.clone(), 4 * b.floats, kind)
        })
        .collect();
    let steps = s
        .steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            // A buffer both read and written by one step appears in both lists.
            Step::new(format!("{i}"), st.reads.clone(), st.writes.clone())
        })
        .collect();
    (buffers, steps)
}

pub fn place(s: &Schedule) -> Result<Placement> {
    let (buffers, steps) = planner_input(s);
    let p = plan(&buffers, &steps)?;
    Ok(Placement {
        offsets: p.offsets.iter().map(|&o| o / 4).collect(),
        arena_floats: p.arena_bytes / 4,
        lower_bound_floats: p.lower_bound_bytes / 4,
        naive_floats: p.naive_bytes / 4,
        intervals: p.intervals,
    })
}
