//! candle on the CPU against the PyTorch reference run (tests/fixtures/torch_iris_seed0.json):
//! the same split, scaling, initial weights, loss at every recorded epoch, and test accuracy.

use candle_core::Device;
use hwbench::engine::data;
use hwbench::engine::fused::Kernels;
use hwbench::engine::model::InitWeights;
use hwbench::engine::session::{self, Prepared};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(crate::util::fixture("torch_iris_seed0.json")).unwrap(),
    )
    .unwrap()
}

/// The whole run in a release build (`cargo test --release`, as CI runs it); a prefix otherwise.
fn epochs_to_check() -> usize {
    if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    }
}

fn train(kernels: Kernels, epochs: usize) -> (Vec<f32>, f64) {
    let mut prepared = Prepared::new(&data::prepare(42), Device::Cpu).unwrap();
    prepared.kernels = kernels;
    let trained =
        session::train_epochs(&prepared, &InitWeights::reference(), 0.01, epochs as u64).unwrap();
    let accuracy = trained
        .model
        .accuracy(prepared.test.as_ref().unwrap())
        .unwrap();
    (trained.curve, accuracy)
}

#[test]
fn split_matches_scikit_learn() {
    let reference = reference();
    let indices = |key: &str| -> Vec<usize> {
        reference["split"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    };
    let data = data::prepare(42);
    assert_eq!(data.train_indices, indices("train_indices"));
    assert_eq!(data.test_indices, indices("test_indices"));
}

#[test]
fn scaling_is_fitted_on_the_training_rows() {
    let reference = reference();
    let (features, _) = data::iris();
    let data = data::prepare(42);
    for f in 0..4 {
        let min = data
            .train_indices
            .iter()
            .map(|&i| features[i][f])
            .fold(f64::INFINITY, f64::min);
        let max = data
            .train_indices
            .iter()
            .map(|&i| features[i][f])
            .fold(f64::NEG_INFINITY, f64::max);
        assert!((min - reference["minmax"]["data_min"][f].as_f64().unwrap()).abs() < 1e-12);
        assert!((max - reference["minmax"]["data_max"][f].as_f64().unwrap()).abs() < 1e-12);
    }
}

#[test]
fn embedded_initial_weights_are_the_reference_ones() {
    let reference = reference();
    let init = InitWeights::reference();
    let flat = |key: &str| -> Vec<f32> {
        let value = &reference["initial_weights"][key];
        match value.as_array().unwrap()[0].as_array() {
            Some(_) => value
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|row| {
                    row.as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap() as f32)
                })
                .collect(),
            None => value
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect(),
        }
    };
    assert_eq!(init.fc1_weight, flat("fc1.weight"));
    assert_eq!(init.fc1_bias, flat("fc1.bias"));
    assert_eq!(init.fc2_weight, flat("fc2.weight"));
    assert_eq!(init.fc2_bias, flat("fc2.bias"));
}

#[test]
fn candle_reproduces_pytorch_loss_at_every_recorded_epoch() {
    let reference = reference();
    let epochs = epochs_to_check();
    let (losses, accuracy) = train(Kernels::Fused, epochs);
    let mut checked = 0;
    let mut worst = 0f64;
    for (epoch, expected) in reference["loss_by_epoch"].as_object().unwrap() {
        let epoch: usize = epoch.parse().unwrap();
        if epoch > epochs {
            continue;
        }
        let diff = (f64::from(losses[epoch - 1]) - expected.as_f64().unwrap()).abs();
        worst = worst.max(diff);
        assert!(
            diff <= 1e-4,
            "epoch {epoch}: candle {} vs PyTorch {expected}",
            losses[epoch - 1]
        );
        checked += 1;
    }
    assert!(checked >= 100, "checked {checked} epochs");
    eprintln!("{checked} recorded epochs within {worst:e} of PyTorch");
    if epochs == 20_000 {
        let expected = reference["final_test_accuracy"].as_f64().unwrap();
        assert!(
            (accuracy - expected).abs() < 1e-6,
            "test accuracy {accuracy} vs {expected}"
        );
    }
}

/// The fused CPU kernels and candle's stock operations (the path CUDA takes) agree, which also
/// checks the fused kernels' hand-written gradients against candle's autograd.
#[test]
fn fused_and_composed_kernels_agree() {
    let (fused, fused_accuracy) = train(Kernels::Fused, 500);
    let (composed, composed_accuracy) = train(Kernels::Stock, 500);
    for (epoch, (a, b)) in fused.iter().zip(&composed).enumerate() {
        assert!(
            (a - b).abs() < 1e-5,
            "epoch {}: fused {a} vs composed {b}",
            epoch + 1
        );
    }
    assert_eq!(fused_accuracy, composed_accuracy);
}

/// The correctness gate lets the composed path (what a GPU runs) through over the whole run, with
/// a wide margin: the tolerance is at least 100× the difference float32 rounding makes here.
#[test]
fn the_correctness_gate_passes_the_composed_kernels_with_a_margin() {
    use hwbench::engine::measured::sample_curve;
    use hwbench::train::analysis::{GATE_RELATIVE, first_disagreement};
    let epochs = epochs_to_check();
    let (fused, _) = train(Kernels::Fused, epochs);
    let (composed, _) = train(Kernels::Stock, epochs);
    let worst = fused
        .iter()
        .zip(&composed)
        .map(|(a, b)| ((a - b) / a).abs())
        .fold(0f32, f32::max);
    eprintln!("fused vs composed over {epochs} epochs: at most {worst:e} relative");
    assert!(worst * 100.0 < GATE_RELATIVE, "{worst:e} relative");
    let (fused, composed) = (sample_curve(&fused, 2048), sample_curve(&composed, 2048));
    assert_eq!(first_disagreement(&fused, &composed), None);
    // A 1% error anywhere is caught, at its epoch.
    let mut wrong = composed.clone();
    wrong[700].1 *= 1.01;
    let caught = first_disagreement(&fused, &wrong).unwrap();
    assert_eq!(caught.epoch, wrong[700].0);
}

#[test]
fn seeded_weights_follow_pytorch_ranges() {
    let init = InitWeights::from_seed(7, 16);
    assert_eq!(init.fc1_weight.len(), 16 * 4);
    assert!(
        init.fc1_weight.iter().all(|w| w.abs() <= 0.5),
        "fan_in 4: |w| ≤ 1/2"
    );
    assert!(
        init.fc2_weight.iter().all(|w| w.abs() <= 0.25),
        "fan_in 16: |w| ≤ 1/4"
    );
    assert_eq!(init, InitWeights::from_seed(7, 16), "deterministic");
    assert_ne!(init, InitWeights::from_seed(8, 16));
}

#[test]
fn other_split_seeds_give_other_disjoint_splits() {
    let a = data::prepare(0);
    let b = data::prepare(42);
    assert_ne!(a.test_indices, b.test_indices);
    let mut all: Vec<usize> = a
        .train_indices
        .iter()
        .chain(&a.test_indices)
        .copied()
        .collect();
    all.sort();
    assert_eq!(all, (0..150).collect::<Vec<_>>());
}

/// Expected values printed by scikit-learn 1.x: `train_test_split(np.arange(150), test_size=0.2,
/// random_state=seed)`.
#[test]
fn any_split_seed_matches_scikit_learn() {
    let cases: &[(u32, [usize; 8], [usize; 5])] = &[
        (
            0,
            [114, 62, 33, 107, 7, 100, 40, 86],
            [137, 84, 27, 127, 132],
        ),
        (
            7,
            [149, 84, 40, 66, 106, 41, 52, 94],
            [126, 79, 22, 139, 74],
        ),
        (
            123_456,
            [15, 128, 14, 79, 41, 40, 132, 104],
            [8, 99, 37, 69, 80],
        ),
    ];
    for (seed, test_head, train_head) in cases {
        let data = data::prepare(*seed);
        assert_eq!(&data.test_indices[..8], test_head, "seed {seed}");
        assert_eq!(&data.train_indices[..5], train_head, "seed {seed}");
    }
}
