//! Splitting a kernel's output rows across scoped threads.

use std::ops::Range;

use super::isa::{self, Isa};

/// Calls `f(range)` for `threads` contiguous, disjoint parts of `0..rows` (the caller's `f`
/// writes only the output rows of its part), on the current thread when `threads <= 1`.
/// The ISA chosen on the calling thread is forced on the workers too.
pub(crate) fn split_rows(rows: usize, threads: usize, f: impl Fn(Range<usize>) + Sync) {
    let threads = threads.clamp(1, rows.max(1));
    if threads == 1 {
        f(0..rows);
        return;
    }
    let isa: Isa = isa::current();
    let f = &f;
    std::thread::scope(|s| {
        for t in 1..threads {
            let r = part(rows, threads, t);
            s.spawn(move || isa::with_isa(isa, || f(r)));
        }
        f(part(rows, threads, 0));
    });
}

fn part(rows: usize, parts: usize, i: usize) -> Range<usize> {
    rows * i / parts..rows * (i + 1) / parts
}

/// Raw output pointer shared by workers that write disjoint rows.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
