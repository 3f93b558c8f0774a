//! This thread's CPU time, shared by the timing examples (`#[path]`-included).

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
}

/// Seconds of CPU time this thread has run (Linux `CLOCK_THREAD_CPUTIME_ID`): on one thread it
/// leaves out the time other processes had the core, which on a shared machine is most of the
/// noise.
pub fn thread_cpu() -> f64 {
    let mut t = Timespec { sec: 0, nsec: 0 };
    // SAFETY: a valid out-pointer; clock 3 is CLOCK_THREAD_CPUTIME_ID on Linux.
    unsafe { clock_gettime(3, &mut t) };
    t.sec as f64 + t.nsec as f64 * 1e-9
}
