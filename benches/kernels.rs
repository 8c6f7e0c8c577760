//! One training epoch along `hwbench scale`'s ladder on 1 thread and on every CPU:
//!
//! - `epoch`: the first six points with the fused CPU epoch and with candle's stock operations —
//!   the measurement behind `--kernels auto` choosing the fused one at every size;
//! - `isa`: the first seven points with the fused epoch forced onto each instruction set this CPU
//!   has (AVX-512, AVX2) — the measurement behind the one the kernels choose by themselves;
//! - `largest`: 512:2048:512:8192 on every CPU, with its share of the FP32 peak `hwbench info`
//!   reckons for those cores (the median of 5 epochs, printed before criterion's figures).
//!
//! README, "Kernels". `cargo bench --bench kernels`

mod common;

use std::time::Duration;

use candle_core::Device;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hwbench::engine::SyncPolicy;
use hwbench::engine::device::cpu::{keep_freed_memory, limit_threads};
use hwbench::engine::fused::Kernels;
use hwbench::engine::fused::isa::{self, Isa};
use hwbench::engine::session::Prepared;
use hwbench::engine::synthetic;
use hwbench::scale::ladder;
use hwbench::train::protocol::TrainConfig;

use common::trained_epochs;

/// The training configuration and rows of `size`.
fn point(size: synthetic::Size) -> (TrainConfig, Vec<f32>, Vec<u32>) {
    let (x, y) = synthetic::rows(0, size);
    let config = TrainConfig {
        hidden: size.hidden,
        lr: 0.01,
        epochs: u64::MAX,
        split_seed: 0,
        init: synthetic::init_weights(0, size),
    };
    (config, x, y)
}

fn kernels_by_size(c: &mut Criterion) {
    keep_freed_memory();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("epoch");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for size in ladder::quick() {
        let (config, x, y) = point(size);
        for threads in [1, cores] {
            limit_threads(threads);
            for kernels in [Kernels::Fused, Kernels::Stock] {
                let prepared = Prepared::rows(&x, &y, Device::Cpu, kernels).unwrap();
                let id = BenchmarkId::new(format!("{}/cpu×{threads}", kernels.name()), size);
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        trained_epochs(&prepared, &config, SyncPolicy::NEVER, iters)
                    })
                });
            }
        }
    }
    group.finish();
}

fn instruction_sets_by_size(c: &mut Criterion) {
    keep_freed_memory();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let available: Vec<Isa> = [Isa::Avx512, Isa::Avx2]
        .into_iter()
        .filter(|isa| isa.available())
        .collect();
    eprintln!(
        "instruction sets: {} available, {} chosen by the kernels",
        available
            .iter()
            .map(|isa| isa.name())
            .collect::<Vec<_>>()
            .join(", "),
        isa::chosen().name()
    );
    let mut group = c.benchmark_group("isa");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for size in &ladder::DEFAULT[..7] {
        let (config, x, y) = point(*size);
        let prepared = Prepared::rows(&x, &y, Device::Cpu, Kernels::Fused).unwrap();
        for threads in [1, cores] {
            limit_threads(threads);
            // Interleaved by size: a drift of the machine weighs on every instruction set alike.
            for &isa in &available {
                isa::force(isa).unwrap();
                let id = BenchmarkId::new(format!("{}/cpu×{threads}", isa.name()), size);
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        trained_epochs(&prepared, &config, SyncPolicy::NEVER, iters)
                    })
                });
            }
        }
    }
    isa::force(Isa::widest()).unwrap();
    group.finish();
}

fn largest_against_peak(c: &mut Criterion) {
    keep_freed_memory();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    limit_threads(cores);
    let size = ladder::DEFAULT[7];
    let (config, x, y) = point(size);
    let prepared = Prepared::rows(&x, &y, Device::Cpu, Kernels::Fused).unwrap();
    let mut epochs: Vec<f64> = (0..5)
        .map(|_| trained_epochs(&prepared, &config, SyncPolicy::NEVER, 1).as_secs_f64())
        .collect();
    epochs.sort_by(f64::total_cmp);
    let gflops = ladder::flop_per_epoch(size) / epochs[2] / 1e9;
    let cpu = hwbench::info::machine::Machine::probe(None).cpu;
    match hwbench::info::peaks::cpu_threads_peak(&cpu, cores) {
        Some((peak, basis)) => eprintln!(
            "largest: {size} on cpu×{cores}: {gflops:.0} GFLOP/s, {:.0}% of the FP32 peak ({peak:.0} GFLOP/s: {basis})",
            100.0 * gflops / peak
        ),
        None => eprintln!(
            "largest: {size} on cpu×{cores}: {gflops:.0} GFLOP/s (no FP32 peak known for this CPU)"
        ),
    }
    let mut group = c.benchmark_group("largest");
    group.sample_size(10);
    group.bench_function(BenchmarkId::new(format!("fused/cpu×{cores}"), size), |b| {
        b.iter_custom(|iters| trained_epochs(&prepared, &config, SyncPolicy::NEVER, iters))
    });
    group.finish();
}

criterion_group!(
    benches,
    kernels_by_size,
    instruction_sets_by_size,
    largest_against_peak
);
criterion_main!(benches);
