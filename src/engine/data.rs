//! The iris data set (embedded), scikit-learn's train/test split, and MinMax scaling.
//!
//! The split reproduces `train_test_split(test_size=0.2, random_state=seed)` exactly: scikit-learn
//! draws `RandomState(seed).permutation(150)`, NumPy's legacy Mersenne Twister shuffle, and takes
//! the first 30 indices as the test set and the rest as the training set.

const IRIS_CSV: &str = include_str!("../../data/iris.csv");

pub const FEATURES: usize = 4;
pub const CLASSES: usize = 3;

/// Rows scaled and split, ready to become tensors.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Dataset {
    pub train_x: Vec<f32>,
    pub train_y: Vec<u32>,
    pub test_x: Vec<f32>,
    pub test_y: Vec<u32>,
    pub train_indices: Vec<usize>,
    pub test_indices: Vec<usize>,
}

impl Dataset {
    pub fn train_rows(&self) -> usize {
        self.train_y.len()
    }

    pub fn test_rows(&self) -> usize {
        self.test_y.len()
    }
}

/// The 150 rows of Fisher's iris data as scikit-learn ships them.
pub fn iris() -> (Vec<[f64; FEATURES]>, Vec<u32>) {
    let mut features = Vec::with_capacity(150);
    let mut labels = Vec::with_capacity(150);
    for line in IRIS_CSV.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let mut row = [0.0; FEATURES];
        for (value, text) in row.iter_mut().zip(&fields) {
            *value = text.parse().expect("embedded iris.csv is well-formed");
        }
        features.push(row);
        labels.push(match fields[FEATURES] {
            "setosa" => 0,
            "versicolor" => 1,
            _ => 2,
        });
    }
    (features, labels)
}

/// The split, then MinMax scaling fitted on the training rows only.
pub fn prepare(split_seed: u32) -> Dataset {
    let (features, labels) = iris();
    let (train_indices, test_indices) = train_test_split(features.len(), 0.2, split_seed);

    let mut min = [f64::INFINITY; FEATURES];
    let mut max = [f64::NEG_INFINITY; FEATURES];
    for &i in &train_indices {
        for f in 0..FEATURES {
            min[f] = min[f].min(features[i][f]);
            max[f] = max[f].max(features[i][f]);
        }
    }
    // As scikit-learn's MinMaxScaler computes it: x * scale + min_, in float64.
    let scale: Vec<f64> = (0..FEATURES)
        .map(|f| {
            let range = max[f] - min[f];
            if range == 0.0 { 1.0 } else { 1.0 / range }
        })
        .collect();
    let transform = |indices: &[usize]| -> (Vec<f32>, Vec<u32>) {
        let x = indices
            .iter()
            .flat_map(|&i| (0..FEATURES).map(move |f| (i, f)))
            .map(|(i, f)| (features[i][f] * scale[f] + (-min[f] * scale[f])) as f32)
            .collect();
        let y = indices.iter().map(|&i| labels[i]).collect();
        (x, y)
    };
    let (train_x, train_y) = transform(&train_indices);
    let (test_x, test_y) = transform(&test_indices);
    Dataset {
        train_x,
        train_y,
        test_x,
        test_y,
        train_indices,
        test_indices,
    }
}

/// scikit-learn's `train_test_split(range(n), test_size, random_state=seed)` → (train, test).
pub fn train_test_split(n: usize, test_size: f64, seed: u32) -> (Vec<usize>, Vec<usize>) {
    let n_test = (test_size * n as f64).ceil() as usize;
    let permutation = MersenneTwister::new(seed).permutation(n);
    let test = permutation[..n_test].to_vec();
    let train = permutation[n_test..].to_vec();
    (train, test)
}

/// MT19937 as NumPy's legacy `RandomState` uses it.
pub struct MersenneTwister {
    state: [u32; 624],
    index: usize,
}

impl MersenneTwister {
    /// `RandomState(seed)` for an integer seed (NumPy's `init_genrand`).
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            state[i] = 1_812_433_253u32
                .wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: 624 }
    }

    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn twist(&mut self) {
        for i in 0..624 {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= 0x9908_b0df;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// A double in [0, 1) with 53 random bits (NumPy's `random_sample`).
    pub fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// A uniform integer in [0, max] by rejection on the smallest covering bit mask (NumPy's
    /// `random_interval`, which the legacy shuffle uses).
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16] {
            mask |= mask >> shift;
        }
        loop {
            let value = self.next_u32() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// `RandomState.permutation(n)`: a Fisher–Yates shuffle of 0..n from the end.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut values: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            values.swap(i, j);
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iris_has_150_rows_in_three_balanced_classes() {
        let (features, labels) = iris();
        assert_eq!(features.len(), 150);
        for class in 0..3 {
            assert_eq!(labels.iter().filter(|&&l| l == class).count(), 50);
        }
    }

    #[test]
    fn mersenne_twister_matches_the_reference_sequence() {
        // The first outputs of MT19937 seeded with 5489 (the generator's published default).
        let mut mt = MersenneTwister::new(5489);
        assert_eq!(mt.next_u32(), 3_499_211_612);
        assert_eq!(mt.next_u32(), 581_869_302);
        assert_eq!(mt.next_u32(), 3_890_346_734);
    }

    #[test]
    fn scaled_training_features_span_zero_to_one() {
        let data = prepare(42);
        for f in 0..FEATURES {
            let column: Vec<f32> = data
                .train_x
                .iter()
                .skip(f)
                .step_by(FEATURES)
                .copied()
                .collect();
            let min = column.iter().copied().fold(f32::INFINITY, f32::min);
            let max = column.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert!(
                min.abs() < 1e-6 && (max - 1.0).abs() < 1e-6,
                "feature {f}: {min}..{max}"
            );
        }
    }
}
