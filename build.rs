//! Records the target triple and candle's version for the reports, and gives the CUDA companion a run-time search
//! path for the CUDA libraries where the toolkit usually lives.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=HWBENCH_TARGET={target}");
    // The candle version that trains, for reports (`hwbench report`, each column's facts).
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let candle = lock
        .split("[[package]]")
        .find(|block| block.contains("name = \"candle-core\""))
        .and_then(|block| block.lines().find_map(|l| l.strip_prefix("version = ")))
        .map_or("unknown", |v| v.trim_matches('"'));
    println!("cargo:rustc-env=HWBENCH_CANDLE_VERSION={candle}");
    println!("cargo:rerun-if-changed=Cargo.lock");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".to_string(), |v| v.trim().to_string());
    println!("cargo:rustc-env=HWBENCH_RUSTC={rustc}");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        // Only the companion binary links CUDA; `hwbench` itself never does. It looks for CUDA's
        // libraries in lib/ beside it first (scripts/build-cuda.sh --install puts them there),
        // then beside it, then where the toolkit installs them.
        println!(
            "cargo:rustc-link-arg-bin=hwbench-cuda=-Wl,-rpath,$ORIGIN/lib:$ORIGIN:/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib"
        );
        // What `hwbench-cuda describe` reports: the toolkit and the GPUs the kernels target.
        let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "unknown".to_string());
        let cap = match cap.len() {
            2 | 3 => format!("{}.{}", &cap[..cap.len() - 1], &cap[cap.len() - 1..]),
            _ => cap,
        };
        println!("cargo:rustc-env=HWBENCH_CUDA_COMPUTE_CAP={cap}");
        // candle-kernels embeds PTX, which the driver compiles for any newer GPU on first use.
        println!("cargo:rustc-env=HWBENCH_CUDA_PTX=1");
        let version = std::env::var("CUDARC_CUDA_VERSION").unwrap_or_default();
        let version = match version.parse::<u32>() {
            Ok(v) => format!("{}.{}", v / 1000, (v % 1000) / 10),
            Err(_) => "unknown".to_string(),
        };
        println!("cargo:rustc-env=HWBENCH_CUDA_VERSION={version}");
        println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
        println!("cargo:rerun-if-env-changed=CUDARC_CUDA_VERSION");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
