//! Splitting a kernel's output rows across threads, on a persistent pool.
//!
//! A batch-1 MobileNet runs ~30 layers of 0.1-1 ms each; spawning threads per layer
//! (`std::thread::scope`) costs tens of microseconds per layer and a cold cache on the new
//! thread, which eats most of the gain on 2 cores. The pool instead keeps parked workers that
//! spin briefly after each job (the next layer usually follows within microseconds) and then
//! sleep on a condition variable.
//!
//! A job is `parts` closures calls `f(i)`; participants (the caller included) claim part indices
//! from one atomic counter, so a worker that wakes late simply finds the work done. The part
//! boundaries depend only on `rows` and `threads`, never on who runs a part, so results are
//! bit-identical for any number of workers.

use std::cell::UnsafeCell;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::{Condvar, Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use super::isa::{self, Isa};

/// Calls `f(range)` for `threads` contiguous, disjoint parts of `0..rows` (the caller's `f`
/// writes only the output rows of its part), on the current thread when `threads <= 1`.
/// The ISA chosen on the calling thread is forced on the workers too. (One chunk per thread
/// of [`split_rows_balanced`]: a thread that finishes first can still take a late one's part.)
pub(crate) fn split_rows(rows: usize, threads: usize, f: impl Fn(Range<usize>) + Sync) {
    split_rows_balanced(rows, threads, threads, f)
}

/// `0..rows` cut into at least `chunks` near-equal chunks (rounded up to a multiple of the
/// threads, so equally fast threads finish together), balanced by [`split_chunks`].
pub(crate) fn split_rows_balanced(rows: usize, chunks: usize, threads: usize, f: impl Fn(Range<usize>) + Sync) {
    let chunks = chunks.max(1).next_multiple_of(threads.max(1)).min(rows.max(1));
    split_chunks(chunks, threads, |i| f(part(rows, chunks, i)));
}

/// Calls `f(i)` once for every chunk `i` in `0..chunks`, on up to `threads` threads, with load
/// balancing: participant `t` owns the contiguous run of chunks [`split_rows`] would give it
/// and takes them from the front; once its run is empty it takes chunks from the back of the
/// run with the most left. When another process shares a core (this machine's second thread
/// often runs at half speed), the slow thread's last chunks go to the fast one instead of
/// everybody waiting for it; when all threads are equally fast, each takes its own run and a
/// chunk costs one atomic operation. `f` must write only its chunk's output: which thread runs
/// a chunk then never changes a result.
pub(crate) fn split_chunks(chunks: usize, threads: usize, f: impl Fn(usize) + Sync) {
    let threads = threads.clamp(1, chunks.clamp(1, MAX_RUNS));
    if threads == 1 {
        (0..chunks).for_each(f);
        return;
    }
    let runs: [Run; MAX_RUNS] = std::array::from_fn(|t| Run::new(if t < threads { part(chunks, threads, t) } else { 0..0 }));
    let runs = &runs[..threads];
    run_parts(threads, &|t| {
        while let Some(c) = runs[t].take_front() {
            f(c);
        }
        while let Some(victim) = runs.iter().max_by_key(|r| r.left()).filter(|r| r.left() > 0) {
            if let Some(c) = victim.take_back() {
                f(c);
            }
        }
    });
}

/// At most this many runs (threads) in [`split_chunks`] (kept on the stack: no allocation per
/// layer).
const MAX_RUNS: usize = 64;

/// The chunks of one run not yet taken: `front << 32 | back`.
struct Run(AtomicU64);

impl Run {
    fn new(r: Range<usize>) -> Run {
        Run(AtomicU64::new((r.start as u64) << 32 | r.end as u64))
    }

    fn left(&self) -> usize {
        let s = self.0.load(Relaxed);
        ((s & 0xffff_ffff) as usize).saturating_sub((s >> 32) as usize)
    }

    /// Takes the first chunk left (the owner's end).
    fn take_front(&self) -> Option<usize> {
        self.take(true)
    }

    /// Takes the last chunk left (a helper's end).
    fn take_back(&self) -> Option<usize> {
        self.take(false)
    }

    fn take(&self, front_end: bool) -> Option<usize> {
        let mut s = self.0.load(Acquire);
        loop {
            let (front, back) = (s >> 32, s & 0xffff_ffff);
            if front >= back {
                return None;
            }
            let (chunk, next) = if front_end { (front, (front + 1) << 32 | back) } else { (back - 1, front << 32 | (back - 1)) };
            match self.0.compare_exchange_weak(s, next, AcqRel, Acquire) {
                Ok(_) => return Some(chunk as usize),
                Err(now) => s = now,
            }
        }
    }
}

/// How a layer shaped like a matrix product (`pixels` output rows of `n` channels) is split.
///
/// At batch 1 the late layers of a MobileNet have few pixels (7×7 at 224, down to 1×1 at 32)
/// and many channels: split by rows, every thread streams the whole weight matrix (up to 4 MB)
/// to compute a pixel or two. Split by column panels, each thread streams its share of the
/// weights and reads the (small) input whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// On the calling thread (the layer is too small to pay for the hand-off).
    Serial,
    /// By output rows (each part reads all the weights).
    Rows,
    /// By column panels of [`super::gemm::NR`] (each part reads all the input).
    Panels,
}

/// Multiply-adds below which a layer runs on one thread (about 20 µs at 1 thread: the
/// hand-off and the second core's cold caches eat the gain).
pub(crate) const MIN_SPLIT_MULT_ADDS: usize = 200_000;

impl Split {
    /// The split of a layer with `pixels` output rows of `n` channels and `mult_adds` work.
    /// Panels when the weights (`k·n`) outweigh the input (`pixels·k`) at least 4 times, so
    /// that halving each thread's weights pays for every thread reading the whole input (a
    /// fused depthwise-separable block first computes its depthwise output once, split by
    /// rows), and there are panels for every thread. Measured at 2 threads (kernels_bench):
    /// 2×2×512 → 512 runs 1.7× faster by panels, 7×7×1024 → 1024 about 5%; 14×14×512 → 512
    /// runs about 6% faster by rows.
    pub(crate) fn choose(pixels: usize, n: usize, mult_adds: usize, threads: usize) -> Split {
        if threads <= 1 || mult_adds < MIN_SPLIT_MULT_ADDS {
            Split::Serial
        } else if 4 * pixels <= n && n.div_ceil(super::gemm::NR) >= 2 * threads {
            Split::Panels
        } else {
            Split::Rows
        }
    }
}

/// Rows of part `i` of `parts` (deterministic: the bit-identity across thread counts rests on it).
fn part(rows: usize, parts: usize, i: usize) -> Range<usize> {
    rows * i / parts..rows * (i + 1) / parts
}

/// Runs `f(0)..f(parts)` on the pool (or on scoped threads when the pool is busy with another
/// caller, e.g. parallel tests or a nested call), returning when all have finished.
pub(crate) fn run_parts(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let isa = isa::current();
    let pool = pool();
    let guard = match pool.caller.try_lock() {
        Ok(g) => Some(g),
        // A caller panicked in a part: the pool's state is still consistent (it waited).
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    };
    match guard {
        Some(_guard) if pool.workers.load(Relaxed) > 0 => pool.run(parts, isa, f),
        _ => std::thread::scope(|s| {
            for i in 1..parts {
                s.spawn(move || isa::with_isa(isa, || f(i)));
            }
            f(0);
        }),
    }
}

/// How long an idle worker spins before sleeping (layers follow each other within µs).
const SPIN: Duration = Duration::from_micros(2000);

/// The job being run: written by the one caller holding `Pool::caller` before it publishes a
/// new epoch, read by workers only after they claimed a part of that epoch (so while the caller
/// still waits for it).
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    parts: usize,
    isa: Isa,
}

struct JobCell(UnsafeCell<Job>);
// SAFETY: see `Job`: written only while no part of the previous job can be claimed, read only
// after a claim that the epoch check makes impossible once the job is complete.
unsafe impl Sync for JobCell {}
unsafe impl Send for JobCell {}

struct Pool {
    /// Serializes callers (one job at a time).
    caller: Mutex<()>,
    job: JobCell,
    /// `epoch << 32 | next part to claim`.
    state: AtomicU64,
    /// Parts finished in the current epoch.
    done: AtomicUsize,
    /// A worker's part panicked in the current epoch (re-raised on the caller).
    panicked: AtomicBool,
    /// Workers asleep (or about to sleep) on `wake`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    /// Workers started.
    workers: AtomicUsize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            caller: Mutex::new(()),
            job: JobCell(UnsafeCell::new(Job { f: std::ptr::null::<fn(usize)>() as *const (dyn Fn(usize) + Sync), parts: 0, isa: Isa::Portable })),
            state: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            workers: AtomicUsize::new(0),
        }));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        for i in 0..cores.saturating_sub(1).clamp(1, 63) {
            // A worker that cannot be started is simply missing: the caller and the others
            // claim its parts (with none at all, jobs run on scoped threads).
            if std::thread::Builder::new().name(format!("mobilenetc-worker-{i}")).spawn(move || pool.worker()).is_ok() {
                pool.workers.fetch_add(1, Relaxed);
            }
        }
        pool
    })
}

impl Pool {
    /// Publishes a job, takes part in it, and waits for the workers' parts. The caller holds
    /// `self.caller`.
    fn run(&self, parts: usize, isa: Isa, f: &(dyn Fn(usize) + Sync)) {
        let epoch = (self.state.load(Relaxed) >> 32).wrapping_add(1) & 0xffff_ffff;
        // SAFETY: the previous job is complete (its caller waited for `done`), so no worker can
        // claim a part of it any more and nobody reads the cell until the new epoch is
        // published. The lifetime of `f` is erased: every claim of this epoch ends before this
        // function returns (it waits for `done == parts`).
        unsafe {
            let f: *const (dyn Fn(usize) + Sync + '_) = f;
            *self.job.0.get() = Job { f: std::mem::transmute::<_, *const (dyn Fn(usize) + Sync + 'static)>(f), parts, isa };
        }
        self.done.store(0, Relaxed);
        self.panicked.store(false, Relaxed);
        self.state.store(epoch << 32, SeqCst);
        if self.sleepers.load(SeqCst) > 0 {
            let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.wake.notify_all();
        }
        // The caller takes parts too (already on the right ISA).
        while let Some(i) = self.claim(epoch) {
            f(i);
            self.done.fetch_add(1, Release);
        }
        let mut spins = 0u32;
        while self.done.load(Acquire) < parts {
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if self.panicked.load(Relaxed) {
            panic!("a kernel part panicked on a worker thread");
        }
    }

    /// Claims the next part of `epoch`, or `None` when that job has no unclaimed part (or a
    /// newer job replaced it).
    fn claim(&self, epoch: u64) -> Option<usize> {
        let mut s = self.state.load(Acquire);
        loop {
            if s >> 32 != epoch {
                return None;
            }
            let next = (s & 0xffff_ffff) as usize;
            // SAFETY: the epoch matches, so the job cell holds this epoch's job (it is only
            // rewritten after all its parts are done, and an unclaimed part remains here).
            let parts = unsafe { (*self.job.0.get()).parts };
            if next >= parts {
                return None;
            }
            match self.state.compare_exchange_weak(s, s + 1, AcqRel, Acquire) {
                Ok(_) => return Some(next),
                Err(now) => s = now,
            }
        }
    }

    fn worker(&'static self) {
        let mut seen = 0u64;
        loop {
            let epoch = self.wait_for_job(seen);
            seen = epoch;
            while let Some(i) = self.claim(epoch) {
                // SAFETY: the part was claimed in this epoch, so the job is live (its caller
                // waits for this part) and `f` points at the caller's closure.
                let (f, isa) = unsafe {
                    let job = &*self.job.0.get();
                    (&*job.f, job.isa)
                };
                let ran = std::panic::catch_unwind(AssertUnwindSafe(|| isa::with_isa(isa, || f(i))));
                if ran.is_err() {
                    self.panicked.store(true, Relaxed);
                }
                self.done.fetch_add(1, Release);
            }
        }
    }

    /// Spins, then sleeps, until an epoch other than `seen` is published; returns it.
    fn wait_for_job(&self, seen: u64) -> u64 {
        let epoch_now = || self.state.load(SeqCst) >> 32;
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let e = epoch_now();
            if e != seen {
                return e;
            }
            spins += 1;
            std::hint::spin_loop();
            if spins.is_multiple_of(256) && start.elapsed() > SPIN {
                break;
            }
        }
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.sleepers.fetch_add(1, SeqCst);
        loop {
            let e = epoch_now();
            if e != seen {
                self.sleepers.fetch_sub(1, SeqCst);
                return e;
            }
            g = self.wake.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Raw output pointer shared by workers that write disjoint rows.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

#[cfg(test)]
mod tests {
    use super::{split_chunks, split_rows_balanced, Split};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    /// Every chunk runs exactly once, for any thread count, also when one participant is slow
    /// (the others then take chunks from the back of its run).
    #[test]
    fn split_chunks_runs_every_chunk_once() {
        for chunks in [0, 1, 2, 3, 7, 16, 61] {
            for threads in 1..=5 {
                let seen: Vec<AtomicUsize> = (0..chunks).map(|_| AtomicUsize::new(0)).collect();
                split_chunks(chunks, threads, |c| {
                    if c == 0 {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    seen[c].fetch_add(1, Relaxed);
                });
                assert!(seen.iter().all(|s| s.load(Relaxed) == 1), "{chunks} chunks, {threads} threads");
            }
        }
        // Row chunks cover 0..rows without gaps or overlaps.
        for (rows, chunks, threads) in [(112, 16, 2), (14, 2, 2), (5, 64, 3), (1, 4, 2)] {
            let covered: Vec<AtomicUsize> = (0..rows).map(|_| AtomicUsize::new(0)).collect();
            split_rows_balanced(rows, chunks, threads, |r| r.for_each(|i| _ = covered[i].fetch_add(1, Relaxed)));
            assert!(covered.iter().all(|s| s.load(Relaxed) == 1), "{rows} rows in {chunks} chunks");
        }
    }

    #[test]
    fn few_pixels_split_by_panels() {
        // MobileNet 1.0 at 32×32: the 2×2 and 1×1 blocks by panels, the 16×16 ones by rows.
        assert_eq!(Split::choose(4, 512, 4 * 512 * 512, 2), Split::Panels);
        assert_eq!(Split::choose(1, 1024, 1024 * 1024, 2), Split::Panels);
        assert_eq!(Split::choose(256, 128, 256 * 64 * 128, 2), Split::Rows);
        // 1.0-224: the 7×7 blocks by panels, the 14×14 ones by rows.
        assert_eq!(Split::choose(49, 1024, 49 * 1024 * 1024, 2), Split::Panels);
        assert_eq!(Split::choose(196, 512, 196 * 512 * 512, 2), Split::Rows);
        // One thread, tiny layers and too few panels never split by panels.
        assert_eq!(Split::choose(1, 1024, 1024 * 1024, 1), Split::Serial);
        assert_eq!(Split::choose(1, 64, 64 * 64, 2), Split::Serial);
        assert_eq!(Split::choose(1, 40, 40 * 10_000, 2), Split::Rows);
    }

    /// The pool's hand-off cost: a job of empty parts, back to back (what a layer pays on top
    /// of its work). Ignored by default; `cargo test --release -p mobilenetc-runtime --lib
    /// dispatch -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn dispatch_overhead() {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        let hits = AtomicUsize::new(0);
        for parts in [2, 4, 8] {
            let mut t: Vec<f64> = (0..20_000)
                .map(|_| {
                    let s = std::time::Instant::now();
                    super::run_parts(parts, &|_| {
                        hits.fetch_add(1, Relaxed);
                    });
                    s.elapsed().as_secs_f64()
                })
                .collect();
            t.sort_by(f64::total_cmp);
            println!("{parts} parts: median {:.2} µs, p90 {:.2} µs, best {:.2} µs", t[t.len() / 2] * 1e6, t[t.len() * 9 / 10] * 1e6, t[0] * 1e6);
        }
        assert_eq!(hits.load(Relaxed), 20_000 * 14);
    }
}
