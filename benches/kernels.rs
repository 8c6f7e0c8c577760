//! One training epoch at each of the first six points of `hwbench scale`'s ladder, with the fused
//! CPU kernels and with candle's stock operations, on 1 thread and on every CPU: the measurement
//! behind `--kernels auto` choosing the fused ones at every size (README, "Kernels").
//! `cargo bench --bench kernels`

use std::time::Duration;

use candle_core::Device;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hwbench::scale::ladder;
use hwbench::train::fused::Kernels;
use hwbench::train::session::{self, Length, Prepared};
use hwbench::train::synthetic;
use hwbench::train::{SyncPolicy, TrainConfig};

/// candle and the fused kernels read the thread count from the environment on every call.
fn set_threads(threads: usize) {
    // SAFETY: set while no other thread of this benchmark reads the environment (criterion runs
    // benchmarks one at a time on the main thread; rayon's workers do not read it).
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
    }
}

fn kernels_by_size(c: &mut Criterion) {
    hwbench::train::device::cpu::keep_freed_memory();
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
            set_threads(threads);
            for kernels in [Kernels::Fused, Kernels::Composed] {
                let prepared = Prepared::rows(&x, &y, Device::Cpu, kernels).unwrap();
                let id = BenchmarkId::new(format!("{}/cpu×{threads}", kernels.name()), size);
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        let trained = session::train(
                            &prepared,
                            &config,
                            SyncPolicy::NEVER,
                            Length::Epochs(iters),
                            false,
                            &mut |_| Ok(()),
                        )
                        .unwrap();
                        Duration::from_secs_f64(trained.result.total_s)
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, kernels_by_size);
criterion_main!(benches);
