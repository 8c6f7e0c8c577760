//! Per-epoch cost of the two kernel sets on the CPU, 20000 epochs each, with the loss at epochs
//! 1, 2000 and 20000: the fused CPU ops against candle's stock operations (the path CUDA takes).
//! `RAYON_NUM_THREADS=1 cargo run --release --example breakdown`
//! (20000 epochs of the reference run end at a loss of 0.0619 in PyTorch.)

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, SGD};
use hwbench::engine::fused::Kernels;
use hwbench::engine::{
    data,
    model::{Batch, InitWeights, Mlp},
};
use std::time::Instant;
fn main() -> anyhow::Result<()> {
    let d = data::prepare(42);
    let dev = Device::Cpu;
    let b = Batch::new(&d.train_x, &d.train_y, &dev)?;
    let init = InitWeights::reference();
    for k in [Kernels::Fused, Kernels::Stock] {
        let m = Mlp::with_kernels(&init, &dev, k)?;
        let mut sgd = SGD::new(m.vars(), 0.01)?;
        let n = 20000;
        let losses = Tensor::zeros(n, DType::F32, &dev)?;
        let t = Instant::now();
        for i in 0..n {
            let l = m.loss(&b)?;
            losses.slice_set(&l.reshape(1)?, 0, i)?;
            sgd.backward_step(&l)?;
        }
        let v = losses.to_vec1::<f32>()?;
        println!(
            "{k:?}: {:.1} us/epoch; loss@1 {} @2000 {} @20000 {}",
            t.elapsed().as_secs_f64() * 1e6 / n as f64,
            v[0],
            v[1999],
            v[19999]
        );
    }
    Ok(())
}
