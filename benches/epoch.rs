//! One training epoch of the iris MLP on the CPU: against the hardware floor, per thread setting,
//! and what hwbench's own measurement adds to it.
//!
//! - `floor/hand-fused`: the fastest an epoch of the course's model can be on this core — one
//!   hand-written loop over plain arrays whose sizes the compiler knows (forward, softmax
//!   cross-entropy, backward and SGD row by row, nothing allocated) — next to
//!   `floor/hwbench cpu×1`, the same epoch as `train-compare` runs it (the fused epoch, loss kept
//!   on the device). Their ratio is how far hwbench's general path is from the floor.
//! - `epoch/cpu×N`: one epoch as `train-compare` runs it, per thread setting.
//! - `overhead/bare` vs `overhead/instrumented`: 1000 epochs with nothing but the fused epoch,
//!   against the same 1000 epochs through `session::train` (loss buffer, readback checks,
//!   clocks). Their ratio is the cost of measuring; it is also measured in interleaved rounds.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use candle_core::Device;
use criterion::{Criterion, criterion_group, criterion_main};
use hwbench::engine::SyncPolicy;
use hwbench::engine::data;
use hwbench::engine::device::cpu::limit_threads;
use hwbench::engine::fused::FusedEpoch;
use hwbench::engine::model::{InitWeights, Parameters};
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

/// The course's model with its sizes known to the compiler: I inputs plus the constant 1, H
/// hidden units, C classes, trained on R rows.
struct Floor<const I: usize, const H: usize, const C: usize, const R: usize> {
    x: [[f32; I]; R],
    y: [usize; R],
    fc1: [[f32; H]; I],
    fc2: [[f32; C]; H],
    bias: [f32; C],
}

impl<const I: usize, const H: usize, const C: usize, const R: usize> Floor<I, H, C, R> {
    fn new(p: &Parameters, x: &[f32], y: &[u32]) -> Self {
        assert_eq!((p.inputs + 1, p.hidden, p.classes, y.len()), (I, H, C, R));
        Self {
            x: std::array::from_fn(|r| std::array::from_fn(|i| x[r * I + i])),
            y: std::array::from_fn(|r| y[r] as usize),
            fc1: std::array::from_fn(|i| std::array::from_fn(|j| p.fc1[i * H + j])),
            fc2: std::array::from_fn(|j| std::array::from_fn(|c| p.fc2_weight[j * C + c])),
            bias: std::array::from_fn(|c| p.fc2_bias[c]),
        }
    }

    /// One epoch of full-batch SGD at `lr`, in one pass over the rows: returns the loss before
    /// the update.
    #[inline(never)]
    fn epoch(&mut self, lr: f32) -> f32 {
        let mut grad_fc1 = [[0f32; H]; I];
        let mut grad_fc2 = [[0f32; C]; H];
        let mut grad_bias = [0f32; C];
        let mut loss = 0f64;
        let scale = 1.0 / R as f32;
        for (x, &target) in self.x.iter().zip(&self.y) {
            let mut h = [0f32; H];
            for (xi, row) in x.iter().zip(&self.fc1) {
                for (h, w) in h.iter_mut().zip(row) {
                    *h += xi * w;
                }
            }
            for h in &mut h {
                *h = h.max(0.0);
            }
            let mut z = self.bias;
            for (h, row) in h.iter().zip(&self.fc2) {
                for (z, w) in z.iter_mut().zip(row) {
                    *z += h * w;
                }
            }
            let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            let mut p = [0f32; C];
            for (p, z) in p.iter_mut().zip(&z) {
                *p = (z - max).exp();
                sum += *p;
            }
            loss += f64::from(sum.ln() - (z[target] - max));
            let mut dz = [0f32; C];
            for (c, (dz, p)) in dz.iter_mut().zip(&p).enumerate() {
                *dz = (p / sum - f32::from(c == target)) * scale;
            }
            let mut dh = [0f32; H];
            for ((dh, h), (w, g)) in dh
                .iter_mut()
                .zip(&h)
                .zip(self.fc2.iter().zip(&mut grad_fc2))
            {
                let mut sum = 0f32;
                for ((w, g), dz) in w.iter().zip(g.iter_mut()).zip(&dz) {
                    sum += w * dz;
                    *g += h * dz;
                }
                *dh = if *h > 0.0 { sum } else { 0.0 };
            }
            for (g, dz) in grad_bias.iter_mut().zip(&dz) {
                *g += dz;
            }
            for (xi, g) in x.iter().zip(&mut grad_fc1) {
                for (g, dh) in g.iter_mut().zip(&dh) {
                    *g += xi * dh;
                }
            }
        }
        let step = |w: &mut [f32], g: &[f32]| w.iter_mut().zip(g).for_each(|(w, g)| *w -= g * lr);
        step(self.fc1.as_flattened_mut(), grad_fc1.as_flattened());
        step(self.fc2.as_flattened_mut(), grad_fc2.as_flattened());
        step(&mut self.bias, &grad_bias);
        (loss / R as f64) as f32
    }
}

/// Rounds of a ratio measured in one go each (A then B, interleaved round by round, so that a drift
/// of the machine between criterion's benchmarks weighs on both alike): the median of `ROUNDS`,
/// the lowest and the highest.
fn interleaved(mut ratio: impl FnMut() -> f64) -> (f64, f64, f64) {
    let mut ratios: Vec<f64> = (0..ROUNDS).map(|_| ratio()).collect();
    ratios.sort_by(f64::total_cmp);
    (ratios[ROUNDS / 2], ratios[0], ratios[ROUNDS - 1])
}

/// Rounds of [`interleaved`].
const ROUNDS: usize = 9;

/// The course's epoch at the floor against hwbench's, on one thread, in one run.
fn floor_and_hwbench(c: &mut Criterion) {
    limit_threads(1);
    let cfg = config();
    let data = data::prepare(cfg.split_seed);
    let prepared = Prepared::new(&data, Device::Cpu).unwrap();
    let parameters = Parameters::new(&cfg.init);
    let x = prepared
        .train
        .x
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let mut floor = Floor::<5, 10, 3, 120>::new(&parameters, &x, &data.train_y);
    // The floor trains the same model: its losses follow hwbench's.
    let mut fused = FusedEpoch::new(parameters, &prepared.train, cfg.lr).unwrap();
    for epoch in 0..200 {
        let (a, b) = (
            floor.epoch(cfg.lr as f32),
            fused.step(&prepared.train).unwrap(),
        );
        assert!(
            (a - b).abs() <= 1e-5 * b,
            "epoch {epoch}: floor {a} vs hwbench {b}"
        );
    }
    // criterion times one benchmark after the other, and this machine's speed drifts between
    // them: the ratio is also measured in interleaved rounds, floor then hwbench.
    let epochs = 20_000;
    let (median, low, high) = interleaved(|| {
        let start = Instant::now();
        for _ in 0..epochs {
            black_box(floor.epoch(black_box(cfg.lr as f32)));
        }
        let floor_time = start.elapsed();
        let hwbench = trained_epochs(&prepared, &cfg, SyncPolicy::NEVER, epochs);
        hwbench.as_secs_f64() / floor_time.as_secs_f64()
    });
    eprintln!(
        "floor: hwbench's cpu×1 epoch takes {median:.2}× the hand-fused one (median of {ROUNDS} interleaved rounds of {epochs} epochs; {low:.2}× to {high:.2}×)"
    );
    let mut group = c.benchmark_group("floor");
    group.bench_function("hand-fused", |b| {
        b.iter(|| black_box(floor.epoch(black_box(cfg.lr as f32))))
    });
    group.bench_function("hwbench cpu×1", |b| {
        b.iter_custom(|iters| trained_epochs(&prepared, &cfg, SyncPolicy::NEVER, iters))
    });
    group.finish();
}

fn bare_epochs(prepared: &Prepared, cfg: &TrainConfig, epochs: u64) -> Duration {
    let mut state = FusedEpoch::new(Parameters::new(&cfg.init), &prepared.train, cfg.lr).unwrap();
    let start = Instant::now();
    for _ in 0..epochs {
        black_box(state.step(&prepared.train).unwrap());
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
    // As for the floor: the ratio in interleaved rounds too, bare then instrumented.
    let epochs = 20_000;
    let (median, low, high) = interleaved(|| {
        let bare = bare_epochs(&prepared, &cfg, epochs);
        let instrumented = trained_epochs(&prepared, &cfg, SyncPolicy { every: 100 }, epochs);
        instrumented.as_secs_f64() / bare.as_secs_f64()
    });
    eprintln!(
        "overhead: the instrumented loop takes {median:.3}× the bare one (median of {ROUNDS} interleaved rounds of {epochs} epochs; {low:.3}× to {high:.3}×)"
    );
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

criterion_group!(
    benches,
    floor_and_hwbench,
    epochs_per_thread_setting,
    measurement_overhead
);
criterion_main!(benches);
