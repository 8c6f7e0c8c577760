//! The collection step of `hwbench info` (every probe, no rendering).

use criterion::{Criterion, criterion_group, criterion_main};
use hwbench::info::{self, GpuSource};

fn collect(c: &mut Criterion) {
    let source = GpuSource::Nvml;
    c.bench_function("info/collect", |b| b.iter(|| info::collect(&source)));
}

criterion_group!(benches, collect);
criterion_main!(benches);
