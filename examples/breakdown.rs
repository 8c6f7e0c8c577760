//! Per-epoch cost of the two kernel sets on the CPU, 20000 epochs each through the engine's
//! training loop, with the loss at epochs 1, 2000 and 20000: the fused CPU epoch against candle's
//! stock operations (the path CUDA takes).
//! `cargo run --release --example breakdown`
//! (20000 epochs of the reference run end at a loss of 0.0619 in PyTorch.)

use candle_core::Device;
use hwbench::engine::data;
use hwbench::engine::device::cpu::limit_threads;
use hwbench::engine::fused::{Kernels, isa};
use hwbench::engine::model::InitWeights;
use hwbench::engine::session::{self, Prepared};

fn main() -> anyhow::Result<()> {
    limit_threads(1);
    let mut prepared = Prepared::new(&data::prepare(42), Device::Cpu)?;
    let epochs = 20_000;
    for kernels in [Kernels::Fused, Kernels::Stock] {
        prepared.kernels = kernels;
        let trained = session::train_epochs(&prepared, &InitWeights::reference(), 0.01, epochs)?;
        let v = &trained.curve;
        println!(
            "{} ({}): {:.2} µs/epoch; loss@1 {} @2000 {} @20000 {}",
            kernels.name(),
            isa::chosen().name(),
            trained.result.total_s * 1e6 / epochs as f64,
            v[0],
            v[1999],
            v[19999]
        );
    }
    Ok(())
}
