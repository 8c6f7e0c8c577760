//! Records the target triple for `hwbench info`, and gives the CUDA companion a run-time search
//! path for the CUDA libraries where the toolkit usually lives.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=HWBENCH_TARGET={target}");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        // Only the companion binary links CUDA; `hwbench` itself never does.
        println!(
            "cargo:rustc-link-arg-bin=hwbench-cuda=-Wl,-rpath,$ORIGIN:/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib"
        );
        println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
