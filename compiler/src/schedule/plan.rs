//! Offsets in one arena: storages that are live at the same step never overlap.
//!
//! Placement is greedy, in the XNNPACK/TVM manner: take the storages in some order and put
//! each in the smallest gap left between the already-placed storages whose live ranges
//! overlap its own (or above them all when no gap fits). Three orders are tried — by size
//! descending (best fit), by size descending (lowest fit), by first step — and the smallest
//! arena wins; every tie is broken by a fixed key, so the plan is the same on every run.

use super::buffers::{validate, Buffer, BufferId, Step};
use super::liveness::{liveness, lower_bound, Storage};
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Per buffer: byte offset in the arena (a multiple of [`ALIGN`](super::ALIGN)).
    pub offsets: Vec<usize>,
    pub arena_bytes: usize,
    /// The largest total (aligned) size of storages live at one step of this schedule.
    pub lower_bound_bytes: usize,
    /// One buffer per tensor: the sum of every buffer's aligned size.
    pub naive_bytes: usize,
    /// Per buffer: first and last step (inclusive) at which it holds its value.
    pub intervals: Vec<(usize, usize)>,
    /// Per buffer: the representative (smallest id) of the buffers sharing its storage.
    pub storage_root: Vec<BufferId>,
    /// The in-place offers the planner took, `(read, write)`: the executor runs these steps in
    /// place, the others out of place.
    pub inplace_taken: Vec<(BufferId, BufferId)>,
    /// Which placement order won (for the report).
    pub strategy: Strategy,
}

impl Plan {
    /// Whether two buffers share one storage by construction (view or in-place).
    pub fn shares_storage(&self, a: BufferId, b: BufferId) -> bool {
        self.storage_root[a] == self.storage_root[b]
    }
    /// Arena size over the lower bound (1.0 is optimal for this schedule).
    pub fn ratio(&self) -> f64 {
        if self.lower_bound_bytes == 0 {
            1.0
        } else {
            self.arena_bytes as f64 / self.lower_bound_bytes as f64
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Largest first, each in the smallest gap that fits.
    SizeBestFit,
    /// Largest first, each at the lowest offset that fits.
    SizeFirstFit,
    /// In order of first use (interval colouring), each in the smallest gap that fits.
    FirstUseBestFit,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::SizeBestFit, Strategy::SizeFirstFit, Strategy::FirstUseBestFit];
    pub fn name(self) -> &'static str {
        match self {
            Strategy::SizeBestFit => "size-descending best-fit",
            Strategy::SizeFirstFit => "size-descending first-fit",
            Strategy::FirstUseBestFit => "first-use best-fit",
        }
    }
}

/// Plans the buffers of a step list run in the given order. Errors when the steps name
/// buffers that do not exist or declare contradictory views (see [`validate`]).
pub fn plan(buffers: &[Buffer], steps: &[Step]) -> Result<Plan> {
    validate(buffers, steps)?;
    let live = liveness(buffers, steps);
    let lower = lower_bound(&live.storages, steps.len());
    let naive = buffers.iter().map(Buffer::aligned_bytes).sum();

    let mut best: Option<(usize, Vec<usize>, Strategy)> = None;
    for strategy in Strategy::ALL {
        let (offsets, arena) = place(&live.storages, strategy);
        // Strictly smaller only: the earlier strategy wins ties, so the choice is stable.
        if best.as_ref().is_none_or(|(a, _, _)| arena < *a) {
            best = Some((arena, offsets, strategy));
        }
    }
    let (arena_bytes, storage_offsets, strategy) = best.expect("at least one strategy");
    let offsets = live.storage_of.iter().map(|&s| storage_offsets[s]).collect();
    let storage_root = live.storage_of.iter().map(|&s| live.storages[s].root).collect();
    Ok(Plan {
        offsets,
        arena_bytes,
        lower_bound_bytes: lower,
        naive_bytes: naive,
        intervals: live.intervals,
        storage_root,
        inplace_taken: live.inplace_taken,
        strategy,
    })
}

/// Places every storage; returns offsets (per storage) and the arena size.
fn place(storages: &[Storage], strategy: Strategy) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..storages.len()).collect();
    match strategy {
        Strategy::SizeBestFit | Strategy::SizeFirstFit => {
            order.sort_by_key(|&i| (std::cmp::Reverse(storages[i].bytes), storages[i].first, storages[i].root));
        }
        Strategy::FirstUseBestFit => {
            order.sort_by_key(|&i| (storages[i].first, std::cmp::Reverse(storages[i].bytes), storages[i].root));
        }
    }
    let best_fit = strategy != Strategy::SizeFirstFit;
    let mut offsets = vec![0usize; storages.len()];
    let mut placed: Vec<usize> = Vec::with_capacity(storages.len());
    let mut arena = 0;
    for &i in &order {
        let me = &storages[i];
        if me.bytes == 0 {
            placed.push(i);
            continue;
        }
        // The blocks this storage must not touch, by offset.
        let mut blocks: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&j| storages[j].bytes > 0 && storages[j].overlaps(me))
            .map(|&j| (offsets[j], offsets[j] + storages[j].bytes))
            .collect();
        blocks.sort_unstable();
        let mut cursor = 0;
        let mut chosen: Option<(usize, usize)> = None; // (gap size, offset)
        for (start, end) in blocks {
            if start > cursor {
                let gap = start - cursor;
                if gap >= me.bytes && chosen.is_none_or(|(g, _)| gap < g) {
                    chosen = Some((gap, cursor));
                    if !best_fit {
                        break;
                    }
                }
            }
            cursor = cursor.max(end);
        }
        let offset = chosen.map_or(cursor, |(_, o)| o);
        offsets[i] = offset;
        arena = arena.max(offset + me.bytes);
        placed.push(i);
    }
    (offsets, arena)
}
