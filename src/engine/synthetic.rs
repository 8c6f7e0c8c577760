//! A training problem of any size, drawn from a seed: the rows, their classes and the initial
//! weights of an inputs → hidden → classes MLP (`hwbench scale`).
//!
//! Every value comes from a counter-based hash of (seed, tensor, index), so that a worker makes
//! exactly the data any other worker makes without receiving it, and the PyTorch worker computes
//! the same numbers with a few vectorised integer operations (`pytorch_worker.py`,
//! `synthetic_uniform`): every intermediate stays below 2⁶³, so int64 tensors give the same bits.
//!
//! Values: features uniform in [−1, 1); weights and biases uniform in ±1/√fan_in (the ranges of
//! PyTorch's `nn.Linear`); classes uniform. The classes are unrelated to the features: the model
//! memorises rather than learns, which costs the same arithmetic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::model::InitWeights;

/// The shape of one training problem: features per row, hidden units, classes, rows.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub struct Size {
    pub inputs: usize,
    pub hidden: usize,
    pub classes: usize,
    pub rows: usize,
}

/// The largest size hwbench accepts: each dimension, and every tensor (rows × inputs, rows ×
/// hidden, rows × classes, the weights) below 2³¹ elements.
pub mod limits {
    pub const DIMENSION: usize = 1 << 20;
    pub const ELEMENTS: usize = 1 << 31;
}

impl Size {
    /// The course's model: iris's 4 features, 10 hidden units, 3 classes, 120 training rows.
    pub const COURSE: Self = Self {
        inputs: 4,
        hidden: 10,
        classes: 3,
        rows: 120,
    };

    /// Why this size cannot be trained, in one line.
    pub fn check(&self) -> Result<(), String> {
        let dims = [
            ("inputs", self.inputs),
            ("hidden", self.hidden),
            ("classes", self.classes),
            ("rows", self.rows),
        ];
        for (name, value) in dims {
            if !(1..=limits::DIMENSION).contains(&value) {
                return Err(format!(
                    "{self}: {name} must be between 1 and {}",
                    limits::DIMENSION
                ));
            }
        }
        if self.classes < 2 {
            return Err(format!("{self}: a classifier needs at least 2 classes"));
        }
        let tensors = [
            ("rows × inputs", self.rows * (self.inputs + 1)),
            ("rows × hidden", self.rows * self.hidden),
            ("rows × classes", self.rows * self.classes),
            ("inputs × hidden", (self.inputs + 1) * self.hidden),
            ("hidden × classes", self.hidden * self.classes),
        ];
        for (name, elements) in tensors {
            if elements >= limits::ELEMENTS {
                return Err(format!(
                    "{self}: {name} is {elements} elements, more than a tensor may hold here (2³¹)"
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.inputs, self.hidden, self.classes, self.rows
        )
    }
}

impl FromStr for Size {
    type Err = String;

    /// `IN:HIDDEN:CLASSES:ROWS`, e.g. `64:256:16:1024`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let malformed = || {
            format!(
                "'{text}' is not a size: write IN:HIDDEN:CLASSES:ROWS with whole numbers, e.g. 64:256:16:1024"
            )
        };
        let numbers: Vec<usize> = text
            .split(':')
            .map(|part| part.trim().parse::<usize>())
            .collect::<Result<_, _>>()
            .map_err(|_| malformed())?;
        let [inputs, hidden, classes, rows] = numbers[..] else {
            return Err(malformed());
        };
        let size = Self {
            inputs,
            hidden,
            classes,
            rows,
        };
        size.check()?;
        Ok(size)
    }
}

/// Which tensor a value belongs to: each has its own stream of the generator.
#[derive(Clone, Copy)]
enum Stream {
    Features = 1,
    Classes = 2,
    Fc1Weight = 3,
    Fc1Bias = 4,
    Fc2Weight = 5,
    Fc2Bias = 6,
}

const MASK: u64 = 0xffff_ffff;
const MULTIPLIER: u64 = 0x045d_9f3b;

/// A 32-bit integer hash (two multiply–xorshift rounds). Every product is below 2³² × 2²⁷.
fn mix(x: u64) -> u64 {
    let x = (((x >> 16) ^ x) * MULTIPLIER) & MASK;
    let x = (((x >> 16) ^ x) * MULTIPLIER) & MASK;
    (x >> 16) ^ x
}

/// The 32-bit hashes of stream `stream` under `seed`, one per index.
fn hashes(seed: u32, stream: Stream, count: usize) -> impl Iterator<Item = u64> {
    let base = mix((u64::from(seed) * 0x9e37 + stream as u64) & MASK);
    (0..count as u64).map(move |i| mix(base ^ (i & MASK)))
}

/// `count` values uniform in [−1, 1), exactly representable in f32: 24 random bits each.
fn uniform(seed: u32, stream: Stream, count: usize) -> impl Iterator<Item = f32> {
    hashes(seed, stream, count).map(|h| (h >> 8) as f32 * (2.0 / 16_777_216.0) - 1.0)
}

/// `count` values uniform in ±1/√fan_in, as f32 (the bound rounded to f32 first, as PyTorch
/// would).
fn weights(seed: u32, stream: Stream, count: usize, fan_in: usize) -> Vec<f32> {
    let bound = (1.0 / (fan_in as f64).sqrt()) as f32;
    uniform(seed, stream, count).map(|v| v * bound).collect()
}

/// The rows (row-major, `size.rows × size.inputs`) and their classes.
pub fn rows(seed: u32, size: Size) -> (Vec<f32>, Vec<u32>) {
    let features = uniform(seed, Stream::Features, size.rows * size.inputs).collect();
    let classes = hashes(seed, Stream::Classes, size.rows)
        .map(|h| (h % size.classes as u64) as u32)
        .collect();
    (features, classes)
}

/// The initial weights of `size`'s model.
pub fn init_weights(seed: u32, size: Size) -> InitWeights {
    let Size {
        inputs,
        hidden,
        classes,
        ..
    } = size;
    InitWeights {
        source: format!("seed {seed} (hwbench's synthetic generator)"),
        inputs,
        hidden,
        classes,
        fc1_weight: weights(seed, Stream::Fc1Weight, hidden * inputs, inputs),
        fc1_bias: weights(seed, Stream::Fc1Bias, hidden, inputs),
        fc2_weight: weights(seed, Stream::Fc2Weight, classes * hidden, hidden),
        fc2_bias: weights(seed, Stream::Fc2Bias, classes, hidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_fixed_by_the_seed_and_in_range() {
        let size = Size {
            inputs: 3,
            hidden: 5,
            classes: 4,
            rows: 1000,
        };
        let (x, y) = rows(7, size);
        assert_eq!((x.len(), y.len()), (3000, 1000));
        assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
        assert!(y.iter().all(|&c| c < 4));
        // Every class occurs, and the mean is near 0: the hash spreads its values.
        assert!((0..4).all(|c| y.contains(&c)));
        let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        assert_eq!(rows(7, size), (x.clone(), y));
        assert_ne!(rows(8, size).0, x);
        let init = init_weights(7, size);
        let bound = 1.0 / 3f32.sqrt();
        assert!(init.fc1_weight.iter().all(|v| v.abs() <= bound));
        assert_eq!(init.fc2_weight.len(), 20);
    }

    #[test]
    fn the_generator_gives_the_values_computed_independently_in_python() {
        // Computed with Python integers from the description above; pytorch_worker.py's
        // synthetic_uniform gives the same (checked by the PyTorch scale test where torch is).
        let features: Vec<f32> = uniform(0, Stream::Features, 4).collect();
        assert_eq!(
            features,
            [-0.823_258_3, 0.790_558_7, 0.991_953_6, -0.875_997_2]
        );
        let hashes: Vec<u64> = hashes(42, Stream::Fc1Weight, 4).collect();
        assert_eq!(hashes, [1240776599, 3103899781, 1478886967, 3631986634]);
        assert!(mix(u64::from(u32::MAX)) <= MASK);
    }

    #[test]
    fn sizes_parse_and_absurd_ones_are_refused() {
        assert_eq!("4:10:3:120".parse::<Size>(), Ok(Size::COURSE));
        assert_eq!(Size::COURSE.to_string(), "4:10:3:120");
        for bad in [
            "",
            "4:10:3",
            "4:10:3:120:1",
            "a:b:c:d",
            "4:-1:3:120",
            "4:10:3:1.5",
        ] {
            let why = bad.parse::<Size>().unwrap_err();
            assert!(why.contains("IN:HIDDEN:CLASSES:ROWS"), "{bad}: {why}");
        }
        for absurd in [
            "0:10:3:120",
            "4:10:1:120",
            "4:10:3:99999999",
            "65536:65536:3:1",
        ] {
            assert!(absurd.parse::<Size>().is_err(), "{absurd}");
        }
    }
}
