//! The sizes `hwbench scale` climbs, what each costs in arithmetic, and how much memory it needs.
//!
//! The default ladder goes from the course's model (4 → 10 → 3 on 120 rows, about 49 kFLOP per
//! epoch) to 1024 → 4096 → 1000 on 16384 rows (about 0.68 TFLOP per epoch) in eight steps, each
//! multiplying the work by about 8 (between 6.5 and 9.5): every dimension grows by roughly the same
//! factor per step, rounded to sizes a GPU library handles well (multiples of 8 from the third
//! point on).

use super::results::LadderPoint;
use crate::engine::synthetic::Size;

const fn size(inputs: usize, hidden: usize, classes: usize, rows: usize) -> Size {
    Size {
        inputs,
        hidden,
        classes,
        rows,
    }
}

/// The default ladder.
pub const DEFAULT: [Size; 9] = [
    Size::COURSE,
    size(8, 24, 6, 224),
    size(16, 48, 16, 384),
    size(32, 96, 24, 768),
    size(64, 192, 56, 1280),
    size(128, 448, 112, 2560),
    size(256, 896, 224, 5120),
    size(512, 2048, 512, 8192),
    size(1024, 4096, 1000, 16384),
];

/// `--quick` and `hwbench report`: the first six points (up to about 1.4 GFLOP per epoch).
pub fn quick() -> Vec<Size> {
    DEFAULT[..6].to_vec()
}

/// Floating-point operations of one training epoch at `size`, counted on the model's arithmetic
/// (not on any library's way of doing it), with R rows, I inputs, H hidden units, C classes and
/// P = (I+1)·H + (H+1)·C parameters:
///
/// - forward: 2·R·I·H (first layer) + R·H (its bias) + R·H (ReLU) + 2·R·H·C (second layer) + R·C
///   (its bias) + 5·R·C (softmax cross-entropy: max, subtract, exp, sum, divide);
/// - backward, without the gradient of the input data (nothing needs it): 2·R·C (the loss's
///   gradient) + R·C (second bias) + 2·R·H·C (second weight) + 2·R·H·C (the hidden layer's
///   gradient) + R·H (ReLU) + R·H (first bias) + 2·R·I·H (first weight);
/// - the SGD update: 2·P.
///
/// In all: 4·R·I·H + 6·R·H·C + 4·R·H + 8·R·C + 2·P.
pub fn flop_per_epoch(size: Size) -> f64 {
    let [r, i, h, c] = [size.rows, size.inputs, size.hidden, size.classes].map(|v| v as f64);
    let parameters = (i + 1.0) * h + (h + 1.0) * c;
    4.0 * r * i * h + 6.0 * r * h * c + 4.0 * r * h + 8.0 * r * c + 2.0 * parameters
}

/// What one point needs on its device, in MiB (an estimate, a quarter above the tensors' sum for
/// the allocator and temporaries): the rows with their constant column, twice (the product's
/// transposed copy in the backward pass); five [rows, hidden] tensors (the layer's output, its
/// ReLU, their gradients, a transposed copy); three [rows, classes] tensors; the parameters three
/// times (values, gradients, the update).
pub fn memory_needed_mib(size: Size) -> f64 {
    let [r, i, h, c] = [size.rows, size.inputs, size.hidden, size.classes].map(|v| v as f64);
    let parameters = (i + 1.0) * h + (h + 1.0) * c;
    let elements = 2.0 * r * (i + 1.0) + 5.0 * r * h + 3.0 * r * c + 3.0 * parameters;
    elements * 4.0 * 1.25 / (1024.0 * 1024.0)
}

/// The sizes with what each costs, as a report lists them.
pub fn points(sizes: &[Size]) -> Vec<LadderPoint> {
    sizes
        .iter()
        .map(|&size| LadderPoint {
            size,
            flop_per_epoch: flop_per_epoch(size),
            memory_needed_mib: memory_needed_mib(size),
            course: size == Size::COURSE,
        })
        .collect()
}

/// A ladder as given (`--sizes`): no size twice, climbed in order of work.
pub fn sorted(sizes: &[Size]) -> Result<Vec<Size>, String> {
    let mut ladder = sizes.to_vec();
    for (i, size) in ladder.iter().enumerate() {
        if ladder[..i].contains(size) {
            return Err(format!("--sizes lists {size} twice: give each once"));
        }
    }
    ladder.sort_by(|a, b| flop_per_epoch(*a).total_cmp(&flop_per_epoch(*b)));
    Ok(ladder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flop_formula_counts_the_course_model_by_hand() {
        // 4·120·4·10 + 6·120·10·3 + 4·120·10 + 8·120·3 + 2·(5·10 + 11·3)
        assert_eq!(
            flop_per_epoch(Size::COURSE),
            19_200.0 + 21_600.0 + 4_800.0 + 2_880.0 + 166.0
        );
        // One row, one input, one hidden unit, two classes: 4 + 12 + 4 + 16 + 2·(2 + 4).
        assert_eq!(flop_per_epoch(size(1, 1, 2, 1)), 48.0);
    }

    #[test]
    fn the_default_ladder_multiplies_the_work_by_about_eight_per_step() {
        let flops: Vec<f64> = DEFAULT.iter().map(|s| flop_per_epoch(*s)).collect();
        for pair in flops.windows(2) {
            let step = pair[1] / pair[0];
            assert!((6.5..=9.5).contains(&step), "{step}");
        }
        // From about 49 kFLOP to about 0.68 TFLOP.
        assert!((flops[0] - 48_646.0).abs() < 1.0);
        assert!((flops[8] / 1e12 - 0.678).abs() < 0.001, "{}", flops[8]);
        for size in DEFAULT {
            size.check().unwrap();
        }
    }

    #[test]
    fn the_memory_estimate_grows_with_the_ladder_and_fits_a_large_gpu() {
        let needs: Vec<f64> = DEFAULT.iter().map(|s| memory_needed_mib(*s)).collect();
        assert!(needs.windows(2).all(|p| p[1] > p[0]));
        // The largest point: about 2.1 GiB.
        assert!((2000.0..2300.0).contains(&needs[8]), "{}", needs[8]);
    }

    #[test]
    fn a_custom_ladder_is_climbed_in_order_of_work_and_without_repeats() {
        let big = size(64, 256, 16, 1024);
        assert_eq!(
            sorted(&[big, Size::COURSE]).unwrap(),
            vec![Size::COURSE, big]
        );
        assert!(sorted(&[big, big]).unwrap_err().contains("twice"));
    }
}
