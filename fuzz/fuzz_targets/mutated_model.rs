//! A program of structured mutations of the seed model → import, shape inference, passes,
//! planner, lowering and the executor.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mobilenetc_fuzz::harness::mutated(data);
});
