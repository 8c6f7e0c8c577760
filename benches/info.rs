//! The collection step of `hwbench info` (every probe and the findings, no
//! rendering): the machine probed afresh each time, as one `hwbench info` does.

use criterion::{Criterion, criterion_group, criterion_main};
use hwbench::info::machine::Machine;
use hwbench::info::{self, findings};

fn collect(c: &mut Criterion) {
    c.bench_function("info/collect", |b| {
        b.iter(|| info::collect(&Machine::probe(None)))
    });
    let report = info::collect(&Machine::probe(None));
    c.bench_function("info/findings", |b| b.iter(|| findings::assess(&report)));
}

criterion_group!(benches, collect);
criterion_main!(benches);
