//! Liveness intervals of buffers, and the storages they are grouped into.
//!
//! A *storage* is one block of the arena. Every buffer belongs to exactly one: its own, or the
//! storage of the buffer it views (alias), or the storage of the buffer it overwrote in place.
//! Placement works on storages; the lower bound counts storages, since two buffers sharing one
//! by construction occupy its bytes once.

use super::buffers::{Buffer, BufferId, BufferKind, Step};

/// A block of the arena shared by one or more buffers, live over `[first, last]` (steps,
/// inclusive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Storage {
    /// The smallest buffer id among the members: a stable name for the storage.
    pub root: BufferId,
    pub first: usize,
    pub last: usize,
    /// The largest aligned size among the members.
    pub bytes: usize,
    /// Members in increasing id order.
    pub members: Vec<BufferId>,
    /// A member is a graph output: the storage must survive the last step untouched.
    pub holds_output: bool,
}

impl Storage {
    pub fn overlaps(&self, other: &Storage) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// Per buffer: first and last step (inclusive) at which it must hold its value.
    pub intervals: Vec<(usize, usize)>,
    /// Per buffer: the index of its storage in `storages`.
    pub storage_of: Vec<usize>,
    /// Sorted by root.
    pub storages: Vec<Storage>,
    /// The in-place offers that were taken, `(read, write)`, in step order.
    pub inplace_taken: Vec<(BufferId, BufferId)>,
}

/// The interval of each buffer on its own: from its first write (inputs, and anything read
/// before it is written: step 0) to its last access (outputs: the last step). A buffer no
/// step touches gets `(0, 0)`.
pub fn buffer_intervals(buffers: &[Buffer], steps: &[Step]) -> Vec<(usize, usize)> {
    let end = steps.len().saturating_sub(1);
    let mut first_write: Vec<Option<usize>> = vec![None; buffers.len()];
    let mut first_read: Vec<Option<usize>> = vec![None; buffers.len()];
    let mut last: Vec<Option<usize>> = vec![None; buffers.len()];
    for (s, step) in steps.iter().enumerate() {
        for &b in &step.reads {
            first_read[b].get_or_insert(s);
            last[b] = Some(s);
        }
        for &b in &step.writes {
            first_write[b].get_or_insert(s);
            last[b] = Some(s);
        }
    }
    buffers
        .iter()
        .enumerate()
        .map(|(b, buf)| {
            // A value that is read before any step writes it comes from outside the steps
            // (an input, an output that is also an input): it is in the arena from the start.
            let f = match (buf.kind, first_write[b], first_read[b]) {
                (BufferKind::Input, _, _) => 0,
                (_, Some(w), Some(r)) if w < r => w,
                (_, Some(w), None) => w,
                _ => 0,
            };
            let l = if buf.kind == BufferKind::Output { end } else { last[b].unwrap_or(f) };
            (f, l.max(f))
        })
        .collect()
}

/// Smallest-root union-find; small enough that path halving is all it needs.
struct Sets {
    parent: Vec<usize>,
}

impl Sets {
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    /// Joins two sets under the smaller root (deterministic, independent of call order).
    fn union(&mut self, a: usize, b: usize) -> usize {
        let (a, b) = (self.find(a), self.find(b));
        let (lo, hi) = (a.min(b), a.max(b));
        self.parent[hi] = lo;
        lo
    }
}

#[derive(Clone)]
struct Group {
    first: usize,
    last: usize,
    bytes: usize,
    holds_output: bool,
    members: Vec<BufferId>,
}

/// Groups buffers into storages: views join what they view; then, walking the steps in order,
/// each in-place offer `(r, w)` is taken when r's storage dies at this step, holds no graph
/// output, is not written at this step, is at least as large as w's storage, is read at this
/// step only through buffers the op offered for w, and w's storage begins at this step.
pub fn liveness(buffers: &[Buffer], steps: &[Step]) -> Liveness {
    let intervals = buffer_intervals(buffers, steps);
    let n = buffers.len();
    let mut sets = Sets { parent: (0..n).collect() };
    for step in steps {
        for &(r, w) in &step.alias {
            sets.union(r, w);
        }
    }
    let mut groups: Vec<Option<Group>> = vec![None; n];
    for b in 0..n {
        let root = sets.find(b);
        let (f, l) = intervals[b];
        let g = groups[root].get_or_insert_with(|| Group { first: f, last: l, bytes: 0, holds_output: false, members: Vec::new() });
        g.first = g.first.min(f);
        g.last = g.last.max(l);
        g.bytes = g.bytes.max(buffers[b].aligned_bytes());
        g.holds_output |= buffers[b].kind == BufferKind::Output;
        g.members.push(b);
    }

    let mut inplace_taken = Vec::new();
    for (s, step) in steps.iter().enumerate() {
        for &(r, w) in &step.inplace {
            let (rr, wr) = (sets.find(r), sets.find(w));
            if rr == wr {
                continue;
            }
            let (rg, wg) = (groups[rr].as_ref().expect("root has a group"), groups[wr].as_ref().expect("root has a group"));
            let takes = rg.last == s
                && !rg.holds_output
                && wg.first == s
                && wg.bytes <= rg.bytes
                && !rg.members.iter().any(|m| step.writes.contains(m))
                // w's storage may already hold an earlier donor of this step (Add offers both
                // inputs): a second donor would put two live values in one storage.
                && !wg.members.iter().any(|m| step.reads.contains(m))
                // Every read of this storage at this step (the buffer and its views) must be
                // one the op declared safe to overwrite.
                && step.reads.iter().filter(|&&m| sets.find(m) == rr).all(|&m| step.inplace.contains(&(m, w)));
            if !takes {
                continue;
            }
            let (rg, wg) = (groups[rr].take().expect("root has a group"), groups[wr].take().expect("root has a group"));
            let root = sets.union(rr, wr);
            let mut members = rg.members;
            members.extend(wg.members);
            members.sort_unstable();
            groups[root] = Some(Group {
                first: rg.first,
                last: wg.last,
                bytes: rg.bytes,
                holds_output: wg.holds_output,
                members,
            });
            inplace_taken.push((r, w));
        }
    }

    let mut storages = Vec::new();
    let mut index_of_root = vec![usize::MAX; n];
    for (root, g) in groups.into_iter().enumerate() {
        if let Some(g) = g {
            index_of_root[root] = storages.len();
            storages.push(Storage { root, first: g.first, last: g.last, bytes: g.bytes, members: g.members, holds_output: g.holds_output });
        }
    }
    let storage_of = (0..n).map(|b| index_of_root[sets.find(b)]).collect();
    Liveness { intervals, storage_of, storages, inplace_taken }
}

/// The largest total size of storages live at one step: no placement of these storages can
/// use a smaller arena.
pub fn lower_bound(storages: &[Storage], steps: usize) -> usize {
    let len = steps.max(1);
    // Difference array over steps: +bytes at first, -bytes after last.
    let mut delta = vec![0i128; len + 1];
    for s in storages {
        delta[s.first] += s.bytes as i128;
        delta[s.last.min(len - 1) + 1] -= s.bytes as i128;
    }
    let mut live = 0i128;
    let mut peak = 0i128;
    for d in &delta[..len] {
        live += d;
        peak = peak.max(live);
    }
    peak as usize
}
