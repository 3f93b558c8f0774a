//! Placing a schedule's buffers in one arena.
//!
//! Liveness: a buffer lives from the step that first writes it to the step that last reads or
//! writes it (the input from step 0). Buffers whose lifetimes overlap get disjoint ranges.
//! Placement is greedy by size, descending (ties by id), each at the lowest offset that fits
//! among the already placed buffers it overlaps in time.

use super::autodiff::{BufKind, Schedule};

/// Offsets are multiples of this many floats (64 bytes).
const ALIGN_FLOATS: usize = 16;

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

pub fn intervals(s: &Schedule) -> Vec<(usize, usize)> {
    let mut iv: Vec<Option<(usize, usize)>> = vec![None; s.bufs.len()];
    for (i, st) in s.steps.iter().enumerate() {
        for &b in st.reads.iter().chain(&st.writes) {
            let e = iv[b].get_or_insert((i, i));
            e.0 = e.0.min(i);
            e.1 = e.1.max(i);
        }
    }
    iv.iter()
        .zip(&s.bufs)
        .map(|(v, b)| {
            let (f, l) = v.unwrap_or((0, 0));
            if b.kind == BufKind::Input {
                (0, l)
            } else {
                (f, l)
            }
        })
        .collect()
}

pub fn place(s: &Schedule) -> Placement {
    let iv = intervals(s);
    let size: Vec<usize> = s.bufs.iter().map(|b| b.floats.div_ceil(ALIGN_FLOATS) * ALIGN_FLOATS).collect();
    let mut order: Vec<usize> = (0..s.bufs.len()).collect();
    order.sort_by_key(|&b| (std::cmp::Reverse(size[b]), b));
    let mut offsets = vec![0; s.bufs.len()];
    let mut placed: Vec<usize> = Vec::new();
    let mut arena = 0;
    for &b in &order {
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&o| iv[o].0 <= iv[b].1 && iv[b].0 <= iv[o].1)
            .map(|&o| (offsets[o], offsets[o] + size[o]))
            .collect();
        busy.sort();
        let mut at = 0;
        for (lo, hi) in busy {
            if at + size[b] <= lo {
                break;
            }
            at = at.max(hi);
        }
        offsets[b] = at;
        arena = arena.max(at + size[b]);
        placed.push(b);
    }
    let steps = s.steps.len().max(1);
    let lower = (0..steps).map(|t| (0..s.bufs.len()).filter(|&b| iv[b].0 <= t && t <= iv[b].1).map(|b| size[b]).sum::<usize>()).max().unwrap_or(0);
    Placement { offsets, arena_floats: arena, lower_bound_floats: lower, naive_floats: size.iter().sum(), intervals: iv }
}
