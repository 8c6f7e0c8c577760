//! What the training benchmarks share.

use std::time::Duration;

use hwbench::engine::SyncPolicy;
use hwbench::engine::session::{self, Length, Prepared};
use hwbench::train::protocol::TrainConfig;

/// `epochs` epochs through `session::train`, the loop every worker runs, timed by its own clock
/// (read after synchronising the device).
pub fn trained_epochs(
    prepared: &Prepared,
    config: &TrainConfig,
    policy: SyncPolicy,
    epochs: u64,
) -> Duration {
    let trained = session::train(
        prepared,
        &config.init,
        config.lr,
        policy,
        Length::Epochs(epochs),
        false,
        &mut |_| Ok(()),
    )
    .unwrap();
    Duration::from_secs_f64(trained.result.total_s)
}
