//! Which micro-kernels run: detected once at start-up, overridable per thread for tests.
//!
//! Packed weight layouts are the same for every ISA, so the choice is made at run time, never at
//! packing time. Adding NEON means a new variant here and a micro-kernel module in `gemm`.

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set variant of the micro-kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Plain Rust written to auto-vectorize; runs everywhere.
    Portable,
    /// x86-64 AVX2 + FMA (256-bit).
    Avx2Fma,
    /// x86-64 AVX-512F (512-bit).
    Avx512,
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2Fma, Isa::Avx512];

    /// Whether this CPU can run the variant.
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The best variant this CPU supports.
    pub fn detect() -> Isa {
        [Isa::Avx512, Isa::Avx2Fma].into_iter().find(|i| i.supported()).unwrap_or(Isa::Portable)
    }

    fn code(self) -> u8 {
        match self {
            Isa::Portable => 1,
            Isa::Avx2Fma => 2,
            Isa::Avx512 => 3,
        }
    }

    fn from_code(c: u8) -> Option<Isa> {
        match c {
            1 => Some(Isa::Portable),
            2 => Some(Isa::Avx2Fma),
            3 => Some(Isa::Avx512),
            _ => None,
        }
    }
}

/// Detected once; 0 = not yet.
static DETECTED: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// A per-thread override (tests force each variant without racing other test threads).
    static FORCED: Cell<u8> = const { Cell::new(0) };
}

/// The variant the kernels use on this thread: the forced one if any, else the detected best.
#[inline]
pub fn current() -> Isa {
    if let Some(isa) = Isa::from_code(FORCED.with(|f| f.get())) {
        return isa;
    }
    match Isa::from_code(DETECTED.load(Ordering::Relaxed)) {
        Some(isa) => isa,
        None => {
            let isa = Isa::detect();
            DETECTED.store(isa.code(), Ordering::Relaxed);
            isa
        }
    }
}

/// Runs `f` with the kernels forced to `isa` on this thread (and on threads the kernels spawn
/// for it). Returns `None` without running `f` when the CPU cannot run `isa`.
pub fn with_isa<R>(isa: Isa, f: impl FnOnce() -> R) -> Option<R> {
    if !isa.supported() {
        return None;
    }
    let prev = FORCED.with(|c| c.replace(isa.code()));
    struct Restore(u8);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(prev);
    Some(f())
}
