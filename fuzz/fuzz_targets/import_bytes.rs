//! Arbitrary bytes → the importer (and, when they import, the whole pipeline).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mobilenetc_fuzz::harness::import_bytes(data);
});
