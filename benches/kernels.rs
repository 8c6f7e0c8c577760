//! One training epoch at each of the first six points of `hwbench scale`'s ladder, with the fused
//! CPU kernels and with candle's stock operations, on 1 thread and on every CPU: the measurement
//! behind `--kernels auto` choosing the fused ones at every size (README, "Kernels").
//! `cargo bench --bench kernels`

mod common;

use std::time::Duration;

use candle_core::Device;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hwbench::engine::SyncPolicy;
use hwbench::engine::device::cpu::{keep_freed_memory, limit_threads};
use hwbench::engine::fused::Kernels;
use hwbench::engine::session::Prepared;
use hwbench::engine::synthetic;
use hwbench::scale::ladder;
use hwbench::train::protocol::TrainConfig;

use common::trained_epochs;

fn kernels_by_size(c: &mut Criterion) {
    keep_freed_memory();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("epoch");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2));
    for size in ladder::quick() {
        let (x, y) = synthetic::rows(0, size);
        let config = TrainConfig {
            hidden: size.hidden,
            lr: 0.01,
            epochs: u64::MAX,
            split_seed: 0,
            init: synthetic::init_weights(0, size),
        };
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

criterion_group!(benches, kernels_by_size);
criterion_main!(benches);
