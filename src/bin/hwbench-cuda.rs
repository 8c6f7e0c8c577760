//! `hwbench-cuda`: the CUDA companion. It links CUDA, so it lives apart from `hwbench`, which
//! starts it as the worker of each CUDA column (`train-compare`, `scale`, `report`) and asks it
//! to `describe` itself for `info`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("worker") => ExitCode::from(hwbench::worker::serve()),
        Some("describe") => {
            let build = hwbench::companion::this_build();
            println!("{}", serde_json::to_string(&build).expect("serialisable"));
            ExitCode::SUCCESS
        }
        Some("--version") | Some("-V") => {
            println!("hwbench-cuda {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "hwbench-cuda is started by `hwbench train-compare` and `hwbench scale`; usage: hwbench-cuda worker | describe | --version"
            );
            ExitCode::from(2)
        }
    }
}
