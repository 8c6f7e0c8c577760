use candle_core::Device;
use hwbench::engine::session::{self, Length, Prepared};
use hwbench::engine::{SyncPolicy, data, device::cpu::limit_threads, model::InitWeights};
fn main() {
    limit_threads(1);
    let p = Prepared::new(&data::prepare(42), Device::Cpu).unwrap();
    let t = session::train(
        &p,
        &InitWeights::reference(),
        0.01,
        SyncPolicy::NEVER,
        Length::Epochs(300_000),
        false,
        &mut |_| Ok(()),
    )
    .unwrap();
    println!("{:.2} us", t.result.total_s * 1e6 / 300_000.0);
}
