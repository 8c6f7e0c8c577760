//! `cargo +nightly fuzz run report_parser fuzz/seeds`: see `fuzz/pipeline.rs`.

#![no_main]

// Each target uses its half of the shared pipeline.
#[allow(dead_code)]
#[path = "../pipeline.rs"]
mod pipeline;

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipeline::reports(data));
