//! One training epoch of the iris MLP on the CPU, per thread setting, and what hwbench's own
//! measurement adds to it.
//!
//! - `epoch/cpu×N`: one epoch as `train-compare` runs it (loss kept on the device, no readback).
//! - `overhead/bare` vs `overhead/instrumented`: 1000 epochs with nothing but forward, backward and
//!   the SGD step, against the same 1000 epochs through `session::train` (loss buffer, readback
//!   checks, clocks). Their ratio is the cost of measuring.

mod common;

use std::time::{Duration, Instant};

use candle_core::Device;
use candle_nn::{Optimizer, SGD};
use criterion::{Criterion, criterion_group, criterion_main};
use hwbench::engine::SyncPolicy;
use hwbench::engine::data;
use hwbench::engine::device::cpu::limit_threads;
use hwbench::engine::model::{InitWeights, Mlp};
use hwbench::engine::session::Prepared;
use hwbench::train::protocol::TrainConfig;

use common::trained_epochs;

fn config() -> TrainConfig {
    TrainConfig {
        hidden: 10,
        lr: 0.01,
        epochs: 20_000,
        split_seed: 42,
        init: InitWeights::reference(),
    }
}

fn bare_epochs(prepared: &Prepared, cfg: &TrainConfig, epochs: u64) -> Duration {
    let model = Mlp::new(&cfg.init, &prepared.device).unwrap();
    let mut sgd = SGD::new(model.vars(), cfg.lr).unwrap();
    let start = Instant::now();
    for _ in 0..epochs {
        let loss = model.loss(&prepared.train).unwrap();
        sgd.backward_step(&loss).unwrap();
    }
    start.elapsed()
}

fn epochs_per_thread_setting(c: &mut Criterion) {
    let cfg = config();
    let prepared = Prepared::new(&data::prepare(cfg.split_seed), Device::Cpu).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut settings = vec![1];
    if cores > 1 {
        settings.push(cores);
    }
    let mut group = c.benchmark_group("epoch");
    for threads in settings {
        limit_threads(threads);
        group.bench_function(format!("cpu×{threads}"), |b| {
            b.iter_custom(|iters| trained_epochs(&prepared, &cfg, SyncPolicy::NEVER, iters))
        });
    }
    group.finish();
}

fn measurement_overhead(c: &mut Criterion) {
    limit_threads(1);
    let cfg = config();
    let prepared = Prepared::new(&data::prepare(cfg.split_seed), Device::Cpu).unwrap();
    let mut group = c.benchmark_group("overhead");
    group.bench_function("bare", |b| {
        b.iter_custom(|iters| bare_epochs(&prepared, &cfg, iters * 1000))
    });
    group.bench_function("instrumented", |b| {
        b.iter_custom(|iters| {
            trained_epochs(&prepared, &cfg, SyncPolicy { every: 100 }, iters * 1000)
        })
    });
    group.finish();
}

criterion_group!(benches, epochs_per_thread_setting, measurement_overhead);
criterion_main!(benches);
