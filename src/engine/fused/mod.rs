//! A whole training epoch of the MLP on the CPU, written by hand: forward, softmax cross-entropy,
//! backward and the SGD update over buffers allocated once.
//!
//! On the course's model candle's general-purpose path spends far more time on bookkeeping than
//! on arithmetic (an epoch is ~49 k floating-point operations): a tensor and a graph node per
//! operation, a gradient store, a new tensor per parameter update. On large models it pays for
//! memory traffic the model does not need (a gradient for the input data, separate ReLU and bias
//! tensors each with its own gradient). The fused epoch does the same arithmetic as candle's
//! composed operations and candle-nn's SGD, in place: its matrix products call the `gemm`
//! crate's microkernels (what candle's own CPU matmul calls) for the widest vectors the CPU has
//! (`isa`), and products and element-wise passes are shared by candle's CPU threads when large
//! enough (`parallel`).
//!
//! On any other device (CUDA) the model composes candle's stock operations (`model::Mlp`); tests
//! check on the CPU that both paths give the same losses, which also checks the hand-written
//! gradients against candle's autograd.

pub mod isa;
mod parallel;

pub use parallel::shares_epoch;

use serde::{Deserialize, Serialize};

use candle_core::{Result, Storage, bail};
use isa::multiversioned;
use parallel::{CHUNK, Matrix, Product, Shared};

use super::model::{Batch, Parameters};

/// Which implementation the model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The hand-written CPU epoch (only on the CPU).
    Fused,
    /// candle's stock operations (any device).
    Stock,
}

impl Kernels {
    pub fn for_device(device: &candle_core::Device) -> Self {
        if device.is_cpu() {
            Self::Fused
        } else {
            Self::Stock
        }
    }

    /// What `choice` means on `device`: the fused epoch exists only on the CPU.
    pub fn chosen(device: &candle_core::Device, choice: KernelChoice) -> Self {
        match choice {
            KernelChoice::Stock => Self::Stock,
            KernelChoice::Auto | KernelChoice::Fused => Self::for_device(device),
        }
    }

    /// As reports name them.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fused => "fused",
            Self::Stock => "stock",
        }
    }
}

/// Which kernels the model is asked to use (`--kernels`): `auto` follows the device — the fused
/// epoch on the CPU, where hwbench has its own, candle's stock operations elsewhere — and `fused`
/// or `stock` force one (the fused epoch exists only on the CPU: `fused` elsewhere is `stock`),
/// to measure one against the other.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum KernelChoice {
    #[default]
    Auto,
    Fused,
    Stock,
}

const NAME: &str = "fused epoch";

/// The model's training state on the CPU: its parameters and every buffer an epoch writes,
/// allocated once, for one batch of rows.
pub struct FusedEpoch {
    lr: f32,
    rows: usize,
    parameters: Parameters,
    /// [rows, hidden]: the hidden layer's output, after its ReLU.
    hidden: Vec<f32>,
    /// [rows, classes]: the scores, then the probabilities, then the scores' gradient.
    scores: Vec<f32>,
    /// Each row's loss, summed in row order whatever the threads.
    row_losses: Vec<f64>,
    /// [rows, hidden]: the gradient of the hidden layer's output, then of its input.
    grad_hidden: Vec<f32>,
    /// The parameters' gradients, in their layout.
    grad: Parameters,
}

impl FusedEpoch {
    /// Training `parameters` on `batch` with SGD at `lr`.
    pub fn new(parameters: Parameters, batch: &Batch, lr: f64) -> Result<Self> {
        let rows = batch.host_y.len();
        let (inputs, hidden, classes) = (parameters.inputs, parameters.hidden, parameters.classes);
        if batch.x.dims() != [rows, inputs + 1] {
            bail!(
                "{NAME}: rows of shape {:?} for a model of {inputs} inputs",
                batch.x.dims()
            );
        }
        if let Some(&bad) = batch.host_y.iter().find(|&&t| t as usize >= classes) {
            bail!("{NAME}: class {bad} of {classes}");
        }
        Ok(Self {
            lr: lr as f32,
            rows,
            hidden: vec![0.0; rows * hidden],
            scores: vec![0.0; rows * classes],
            row_losses: vec![0.0; rows],
            grad_hidden: vec![0.0; rows * hidden],
            grad: parameters.zeros_like(),
            parameters,
        })
    }

    pub fn parameters(&self) -> &Parameters {
        &self.parameters
    }

    /// One epoch of full-batch SGD on `batch` (the one given to [`FusedEpoch::new`]): returns the
    /// mean cross-entropy before the update, as PyTorch's `CrossEntropyLoss`.
    pub fn step(&mut self, batch: &Batch) -> Result<f32> {
        let (storage, layout) = batch.x.storage_and_layout();
        let Storage::Cpu(x) = &*storage else {
            bail!("{NAME}: the rows must be on the CPU")
        };
        let x = Matrix::new(x, layout, NAME)?;
        if x.rows != self.rows || batch.host_y.len() != self.rows {
            bail!("{NAME}: {} rows for a state of {}", x.rows, self.rows);
        }
        let Parameters {
            inputs,
            hidden,
            classes,
            ..
        } = self.parameters;
        let p = &self.parameters;
        let fc1 = Matrix::of(&p.fc1, inputs + 1, hidden, NAME)?;
        let fc2 = Matrix::of(&p.fc2_weight, hidden, classes, NAME)?;

        // hidden = relu(x · fc1).
        parallel::products(
            &mut [Product {
                a: x,
                b: fc1,
                out: &mut self.hidden,
            }],
            NAME,
        )?;
        in_chunks(&mut self.hidden, |chunk, _| relu(chunk));
        let h = Matrix::of(&self.hidden, self.rows, hidden, NAME)?;

        // scores = hidden · fc2 + bias, turned into probabilities and then into the scores'
        // gradient, (softmax − one-hot) / rows, row by row.
        parallel::products(
            &mut [Product {
                a: h,
                b: fc2,
                out: &mut self.scores,
            }],
            NAME,
        )?;
        let (bias, targets) = (&p.fc2_bias, &batch.host_y);
        let scale = 1.0 / self.rows as f32;
        let row = |z: &mut [f32], target: usize, loss: &mut f64| {
            let mut max = f32::NEG_INFINITY;
            for (z, b) in z.iter_mut().zip(bias) {
                *z += b;
                max = max.max(*z);
            }
            let target_score = z[target];
            let mut sum = 0f32;
            for p in z.iter_mut() {
                *p = (*p - max).exp();
                sum += *p;
            }
            // −log softmax[target] = log Σ exp(l − max) − (l[target] − max)
            *loss = f64::from(sum.ln() - (target_score - max));
            for (class, g) in z.iter_mut().enumerate() {
                *g = (*g / sum - f32::from(class == target)) * scale;
            }
        };
        let (scores, losses) = (
            Shared::of(&mut self.scores),
            Shared::of(&mut self.row_losses),
        );
        for_rows(self.rows, classes, |range| {
            // SAFETY: the row ranges are disjoint.
            let (z, loss) = unsafe {
                (
                    scores.slice(range.start * classes..range.end * classes),
                    losses.slice(range.clone()),
                )
            };
            for ((z, &target), loss) in z.chunks_mut(classes).zip(&targets[range]).zip(loss) {
                row(z, target as usize, loss);
            }
        });
        let loss = (self.row_losses.iter().sum::<f64>() / self.rows as f64) as f32;

        // The bias's gradient sums the rows, in row order.
        let grad = &mut self.grad;
        grad.fc2_bias.fill(0.0);
        for row in self.scores.chunks(classes) {
            for (gb, g) in grad.fc2_bias.iter_mut().zip(row) {
                *gb += g;
            }
        }
        // d fc2 = hiddenᵀ · d scores and d hidden = d scores · fc2ᵀ: the same work, together.
        let grad_scores = Matrix::of(&self.scores, self.rows, classes, NAME)?;
        parallel::products(
            &mut [
                Product {
                    a: grad_scores,
                    b: fc2.transposed_if(true),
                    out: &mut self.grad_hidden,
                },
                Product {
                    a: h.transposed_if(true),
                    b: grad_scores,
                    out: &mut grad.fc2_weight,
                },
            ],
            NAME,
        )?;
        // Through the ReLU.
        let out = &self.hidden;
        in_chunks(&mut self.grad_hidden, |chunk, range| {
            relu_backward(chunk, &out[range]);
        });
        // d fc1 = xᵀ · d (hidden before the ReLU).
        parallel::products(
            &mut [Product {
                a: x.transposed_if(true),
                b: Matrix::of(&self.grad_hidden, self.rows, hidden, NAME)?,
                out: &mut grad.fc1,
            }],
            NAME,
        )?;

        // SGD.
        let lr = self.lr;
        let p = &mut self.parameters;
        for (w, g) in [
            (&mut p.fc1, &grad.fc1),
            (&mut p.fc2_weight, &grad.fc2_weight),
            (&mut p.fc2_bias, &grad.fc2_bias),
        ] {
            in_chunks(w, |chunk, range| sgd(chunk, &g[range], lr));
        }
        Ok(loss)
    }
}

multiversioned! {
    /// ReLU in place. NaN stays NaN: a diverging run must still be seen to diverge. A select, not
    /// a branch: the sign of each value is a coin toss a branch predictor loses.
    fn relu(values: &mut [f32]) {
        for v in values {
            *v = if *v > 0.0 || v.is_nan() { *v } else { 0.0 };
        }
    }
}

multiversioned! {
    /// ReLU's backward in place: the gradient where the output is positive (0 at 0, as in
    /// PyTorch).
    fn relu_backward(grad: &mut [f32], out: &[f32]) {
        for (g, &y) in grad.iter_mut().zip(out) {
            *g = if y > 0.0 { *g } else { 0.0 };
        }
    }
}

multiversioned! {
    /// One SGD step, as candle-nn's: w − g · lr.
    fn sgd(weights: &mut [f32], grad: &[f32], lr: f32) {
        for (w, g) in weights.iter_mut().zip(grad) {
            *w -= g * lr;
        }
    }
}

/// `f` over consecutive chunks of `values`, each with its range (to take the same range of
/// other buffers), shared by the threads when there are enough values.
fn in_chunks(values: &mut [f32], f: impl Fn(&mut [f32], std::ops::Range<usize>) + Sync) {
    let len = values.len();
    let target = Shared::of(values);
    parallel::for_ranges(len, CHUNK, |range| {
        // SAFETY: the ranges are disjoint.
        f(unsafe { target.slice(range.clone()) }, range);
    });
}

/// `f` over consecutive ranges of `rows` rows of `classes` values each, shared by the threads
/// when there are enough values.
fn for_rows(rows: usize, classes: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    let rows_per_task = (CHUNK / classes.max(1)).max(1);
    parallel::for_tasks(rows.div_ceil(rows_per_task), rows * classes, |task| {
        f(task * rows_per_task..rows.min((task + 1) * rows_per_task));
    });
}
