//! `cargo +nightly fuzz run report_parser fuzz/seeds`: see `fuzz/pipeline.rs`.

#![no_main]

#[path = "../pipeline.rs"]
mod pipeline;

libfuzzer_sys::fuzz_target!(|data: &[u8]| pipeline::run(data));
