//! An independent checker of memory plans, shared by the planner tests.
//!
//! It does not trust the planner's own bookkeeping: it recomputes liveness from the steps and
//! then *runs* the plan on a model arena of 64-byte cells, each stamped with the value that
//! last wrote it. A read that finds another value's stamp, a write that clobbers a value some
//! later step or the caller still needs, or an overwrite of a step's input that the step did
//! not offer as in-place, is an error.

#![allow(dead_code)]

use mobilenetc::schedule::{align_up, Buffer, BufferId, BufferKind, Plan, Step, ALIGN};

/// Smallest-root union-find over buffer ids.
pub struct Classes(Vec<usize>);

impl Classes {
    pub fn new(n: usize) -> Self {
        Classes((0..n).collect())
    }
    pub fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            x = self.0[x];
        }
        x
    }
    pub fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        self.0[a.max(b)] = a.min(b);
    }
}

/// First and last step of each buffer, from the semantics stated in the brief: live from the
/// first write (inputs, and values read before any write: step 0) to the last access
/// (outputs: the last step).
pub fn expected_intervals(buffers: &[Buffer], steps: &[Step]) -> Vec<(usize, usize)> {
    let end = steps.len().saturating_sub(1);
    (0..buffers.len())
        .map(|b| {
            let first_write = steps.iter().position(|s| s.writes.contains(&b));
            let first_read = steps.iter().position(|s| s.reads.contains(&b));
            let last = steps.iter().rposition(|s| s.reads.contains(&b) || s.writes.contains(&b));
            let first = match (buffers[b].kind, first_write, first_read) {
                (BufferKind::Input, _, _) => 0,
                (_, Some(w), Some(r)) if w < r => w,
                (_, Some(w), None) => w,
                _ => 0,
            };
            let last = if buffers[b].kind == BufferKind::Output { end } else { last.unwrap_or(first) };
            (first, last.max(first))
        })
        .collect()
}

fn cells(plan: &Plan, buffers: &[Buffer], b: BufferId) -> std::ops::Range<usize> {
    let start = plan.offsets[b] / ALIGN;
    start..start + align_up(buffers[b].bytes) / ALIGN
}

fn ranges_overlap(a: std::ops::Range<usize>, b: std::ops::Range<usize>) -> bool {
    a.start < b.end && b.start < a.end && !a.is_empty() && !b.is_empty()
}

/// Every property a plan must have; returns the first violation found.
pub fn check_plan(buffers: &[Buffer], steps: &[Step], plan: &Plan) -> Result<(), String> {
    let n = buffers.len();
    if plan.offsets.len() != n || plan.intervals.len() != n {
        return Err("plan has the wrong number of buffers".into());
    }
    // Alignment and bounds.
    for (buf, &offset) in buffers.iter().zip(&plan.offsets) {
        if !offset.is_multiple_of(ALIGN) {
            return Err(format!("buffer '{}' at offset {offset} is not {ALIGN}-aligned", buf.name));
        }
        if offset + align_up(buf.bytes) > plan.arena_bytes {
            return Err(format!("buffer '{}' ends past the arena", buf.name));
        }
    }
    if plan.arena_bytes < plan.lower_bound_bytes {
        return Err(format!("arena {} below the lower bound {}", plan.arena_bytes, plan.lower_bound_bytes));
    }
    let naive: usize = buffers.iter().map(|b| align_up(b.bytes)).sum();
    if plan.naive_bytes != naive {
        return Err(format!("naive {} != sum of aligned sizes {naive}", plan.naive_bytes));
    }
    if plan.lower_bound_bytes > naive {
        return Err("lower bound above naive".into());
    }
    let intervals = expected_intervals(buffers, steps);
    if plan.intervals != intervals {
        return Err(format!("intervals differ from the stated semantics:\n plan {:?}\n want {:?}", plan.intervals, intervals));
    }

    // Which buffers may share cells: those joined by declared views or in-place offers.
    let mut declared = Classes::new(n);
    for s in steps {
        for &(r, w) in s.alias.iter().chain(&s.inplace) {
            declared.union(r, w);
        }
    }
    for &(r, w) in &plan.inplace_taken {
        if !steps.iter().any(|s| s.inplace.contains(&(r, w))) {
            return Err(format!("in-place ({r}, {w}) taken but never offered"));
        }
    }
    // No two buffers live at one step overlap in the arena, unless declared to share.
    for a in 0..n {
        for b in a + 1..n {
            let (ia, ib) = (intervals[a], intervals[b]);
            let live_together = ia.0 <= ib.1 && ib.0 <= ia.1;
            if live_together && ranges_overlap(cells(plan, buffers, a), cells(plan, buffers, b)) && declared.find(a) != declared.find(b) {
                return Err(format!(
                    "'{}' {:?} at {} and '{}' {:?} at {} are live together and overlap",
                    buffers[a].name, ia, plan.offsets[a], buffers[b].name, ib, plan.offsets[b]
                ));
            }
        }
    }

    simulate(buffers, steps, plan)
}

/// Runs the plan on stamped cells (see the module comment).
fn simulate(buffers: &[Buffer], steps: &[Step], plan: &Plan) -> Result<(), String> {
    let n = buffers.len();
    // A view carries the value of what it views: one stamp per view class.
    let mut views = Classes::new(n);
    for s in steps {
        for &(r, w) in &s.alias {
            views.union(r, w);
        }
    }
    let tag: Vec<usize> = (0..n).map(|b| views.find(b)).collect();
    let mut arena: Vec<Option<usize>> = vec![None; plan.arena_bytes / ALIGN];
    let holds = |arena: &[Option<usize>], b: BufferId| cells(plan, buffers, b).all(|c| arena[c] == Some(tag[b]));

    // Values the steps read before writing (or never write) are put there by the caller.
    let from_outside: Vec<BufferId> = (0..n)
        .filter(|&b| {
            let first_write = steps.iter().position(|s| s.writes.contains(&b));
            let first_read = steps.iter().position(|s| s.reads.contains(&b));
            buffers[b].kind == BufferKind::Input || match (first_write, first_read) {
                (None, _) => true,
                (Some(w), Some(r)) => r <= w,
                (Some(_), None) => false,
            }
        })
        .collect();
    for &b in &from_outside {
        for c in cells(plan, buffers, b) {
            arena[c] = Some(tag[b]);
        }
    }
    for &b in &from_outside {
        if !holds(&arena, b) {
            return Err(format!("input '{}' overlaps another input", buffers[b].name));
        }
    }

    for (s, step) in steps.iter().enumerate() {
        for &r in &step.reads {
            if !holds(&arena, r) {
                return Err(format!("step {s} '{}' reads '{}', which was overwritten", step.name, buffers[r].name));
            }
        }
        let mut stamped = Vec::new();
        for &w in &step.writes {
            if let Some(&(r, _)) = step.alias.iter().find(|&&(_, x)| x == w) {
                if plan.offsets[w] != plan.offsets[r] {
                    return Err(format!("view '{}' is not at the offset of '{}'", buffers[w].name, buffers[r].name));
                }
                continue;
            }
            for c in cells(plan, buffers, w) {
                arena[c] = Some(tag[w]);
            }
            stamped.push(w);
        }
        // Writes of one step never overlap each other.
        for (i, &a) in stamped.iter().enumerate() {
            for &b in &stamped[i + 1..] {
                if ranges_overlap(cells(plan, buffers, a), cells(plan, buffers, b)) {
                    return Err(format!("step {s}: writes '{}' and '{}' overlap", buffers[a].name, buffers[b].name));
                }
            }
        }
        // A write may land on one of the step's reads only as a taken in-place offer, exactly.
        for &w in &stamped {
            for &r in &step.reads {
                if tag[r] != tag[w] && ranges_overlap(cells(plan, buffers, r), cells(plan, buffers, w)) {
                    // Taken for r itself or for a buffer r is a view of (same value).
                    let taken = plan.inplace_taken.iter().any(|&(d, x)| x == w && tag[d] == tag[r] && step.inplace.contains(&(d, w)));
                    let offered = step.inplace.contains(&(r, w)) && taken;
                    if !offered || plan.offsets[r] != plan.offsets[w] {
                        return Err(format!("step {s} '{}' writes '{}' over its input '{}' without an in-place offer", step.name, buffers[w].name, buffers[r].name));
                    }
                }
            }
        }
    }
    for (b, buf) in buffers.iter().enumerate() {
        if buf.kind == BufferKind::Output && !holds(&arena, b) {
            return Err(format!("output '{}' was overwritten before the end", buf.name));
        }
    }
    Ok(())
}
