//! hwbench's integration tests, in one test executable (one link, one place for helpers, in the
//! manner of ripgrep's `tests/tests.rs`). `util` holds what every module shares.

mod util;

mod architecture;
mod cli_diff;
mod cli_fleet;
mod cli_info;
mod cli_pytorch;
mod cli_report;
mod cli_train;
mod cpu_parsing;
mod findings;
mod fuzz_regressions;
mod gpu_check;
mod hostile;
mod info_report;
mod python_on_path;
mod redaction;
mod reference;
mod scale;
mod schema;
mod signals;
mod worker;
