//! The collection step of `hwbench info` (every probe and the findings, no
//! rendering).

use criterion::{Criterion, criterion_group, criterion_main};
use hwbench::info::{self, GpuSource, Root, findings};

fn collect(c: &mut Criterion) {
    let source = GpuSource::Nvml;
    let root = Root::real();
    c.bench_function("info/collect", |b| b.iter(|| info::collect(&source, &root)));
    let report = info::collect(&source, &root);
    c.bench_function("info/findings", |b| b.iter(|| findings::assess(&report)));
}

criterion_group!(benches, collect);
criterion_main!(benches);
