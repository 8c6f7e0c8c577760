//! The model's two layers as fused CPU operations: `relu(x · W)` and `cross_entropy(h · W + b)`.
//!
//! On the course's model candle's general-purpose kernels spend far more time on bookkeeping than
//! on arithmetic (an epoch is ~49 k floating-point operations); on large models they pay for
//! memory traffic the layers do not need (a gradient for the input data, separate ReLU and bias
//! tensors each with its own gradient to accumulate). Each fused layer is a candle custom op with
//! a hand-written forward and backward, so candle's autograd still drives backpropagation and
//! candle-nn's SGD still updates the parameters; their matrix products call the `gemm` crate (what
//! candle's own CPU matmul calls) directly, and products and element-wise passes are shared by
//! candle's CPU threads when large enough (`parallel`).
//!
//! On any other device (CUDA) the same functions compose candle's stock operations instead; tests
//! check on the CPU that both paths give the same numbers, which also checks the hand-written
//! gradients.

use std::sync::Mutex;

mod parallel;

use serde::{Deserialize, Serialize};

use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, DType, Device, Layout, Result, Shape, Storage, Tensor, bail,
};
use parallel::{CHUNK, Matrix, Shared};

/// Which implementation the model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The hand-written CPU ops (only on the CPU).
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

    /// What `choice` means on `device`: the fused ops exist only on the CPU.
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

/// Which kernels the candle model is asked to use (`--kernels`): `auto` follows the device — the
/// fused ops on the CPU, where hwbench has its own, candle's stock operations elsewhere — and
/// `fused` or `stock` force one (the fused ops exist only on the CPU: `fused` elsewhere is
/// `stock`), to measure one against the other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KernelChoice {
    #[default]
    Auto,
    Fused,
    Stock,
}

/// `relu(x · w)` for 2-D tensors. The fused version computes no gradient for an input that needs
/// none (the data), which candle's general matmul always does. ReLU's gradient is 0 at 0, as in
/// PyTorch.
pub fn linear_relu(x: &Tensor, w: &Tensor, kernels: Kernels) -> Result<Tensor> {
    match kernels {
        Kernels::Fused => x.apply_op2(w, LinearRelu),
        Kernels::Stock => x.matmul(w)?.relu(),
    }
}

/// Mean cross-entropy of `h · w + bias` against class indices (PyTorch's `CrossEntropyLoss` on a
/// linear layer's output). `targets` is a u32 tensor on the device; `host_targets` the same
/// indices on the host (used by the fused op).
pub fn linear_cross_entropy(
    h: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    targets: &Tensor,
    host_targets: &[u32],
    kernels: Kernels,
) -> Result<Tensor> {
    match kernels {
        Kernels::Fused => h.apply_op3(
            w,
            bias,
            LinearCrossEntropy {
                targets: host_targets.to_vec(),
                probabilities: Mutex::new(None),
            },
        ),
        Kernels::Stock => {
            candle_nn::loss::cross_entropy(&h.matmul(w)?.broadcast_add(bias)?, targets)
        }
    }
}

/// A product to compute: each operand with whether to transpose it.
type Operands<'a> = ((&'a Tensor, bool), (&'a Tensor, bool));

/// The products asked for (`None`: not needed), computed together on the threads, as tensors.
fn both(
    first: Option<Operands>,
    second: Option<Operands>,
    op: &str,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let asked: Vec<Operands> = [first, second].into_iter().flatten().collect();
    let storage: Vec<_> = asked
        .iter()
        .map(|((a, _), (b, _))| (a.storage_and_layout(), b.storage_and_layout()))
        .collect();
    let mut list = Vec::with_capacity(asked.len());
    for (((_, a_t), (_, b_t)), ((a_storage, a_layout), (b_storage, b_layout))) in
        asked.iter().zip(&storage)
    {
        let (Storage::Cpu(a), Storage::Cpu(b)) = (&**a_storage, &**b_storage) else {
            bail!("{op}: the fused ops run on the CPU only")
        };
        list.push((
            Matrix::new(a, a_layout, op)?.transposed_if(*a_t),
            Matrix::new(b, b_layout, op)?.transposed_if(*b_t),
        ));
    }
    let mut tensors = parallel::products(&list, op)?
        .into_iter()
        .zip(&list)
        .map(|(out, (a, b))| Tensor::from_vec(out, (a.rows, b.cols), &Device::Cpu));
    let mut next = |asked: bool| asked.then(|| tensors.next()).flatten().transpose();
    Ok((next(first.is_some())?, next(second.is_some())?))
}

/// `grad` where `out` is positive, 0 elsewhere (ReLU's backward), read in place from both
/// tensors' storage.
fn masked(grad: &Tensor, out: &Tensor) -> Result<Vec<f32>> {
    let (g_storage, g_layout) = grad.storage_and_layout();
    let (o_storage, o_layout) = out.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(g)), Storage::Cpu(CpuStorage::F32(o))) =
        (&*g_storage, &*o_storage)
    else {
        bail!("ReLU backward: f32 CPU tensors only")
    };
    let (Some((g_start, g_end)), Some((o_start, o_end))) =
        (g_layout.contiguous_offsets(), o_layout.contiguous_offsets())
    else {
        bail!("ReLU backward: the gradient and the output must be contiguous")
    };
    let (g, o) = (&g[g_start..g_end], &o[o_start..o_end]);
    if g.len() != o.len() {
        bail!(
            "ReLU backward: {} gradients for {} outputs",
            g.len(),
            o.len()
        );
    }
    let mut before = vec![0f32; g.len()];
    let target = Shared::of(&mut before);
    parallel::for_ranges(g.len(), CHUNK, |range| {
        // SAFETY: the ranges are disjoint.
        let dst = unsafe { target.slice(range.clone()) };
        // A select, not a branch (see the forward).
        for ((d, &g), &y) in dst.iter_mut().zip(&g[range.clone()]).zip(&o[range]) {
            *d = if y > 0.0 { g } else { 0.0 };
        }
    });
    Ok(before)
}

/// `f` over consecutive ranges of `rows` rows of `classes` values each, shared by the threads
/// when there are enough values.
fn for_rows(rows: usize, classes: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    let rows_per_task = (CHUNK / classes.max(1)).max(1);
    parallel::for_tasks(rows.div_ceil(rows_per_task), rows * classes, |task| {
        f(task * rows_per_task..rows.min((task + 1) * rows_per_task));
    });
}

struct LinearRelu;

impl CustomOp2 for LinearRelu {
    fn name(&self) -> &'static str {
        "hwbench-linear-relu"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = Matrix::new(x, x_layout, self.name())?;
        let w = Matrix::new(w, w_layout, self.name())?;
        let mut out = parallel::product(x, w, self.name())?;
        let len = out.len();
        let target = Shared::of(&mut out);
        parallel::for_ranges(len, CHUNK, |range| {
            // SAFETY: the ranges are disjoint.
            let chunk = unsafe { target.slice(range) };
            // NaN stays NaN (a diverging run must still be seen to diverge). A select, not a
            // branch: the sign of each value is a coin toss a branch predictor loses.
            for v in chunk {
                *v = if *v > 0.0 || v.is_nan() { *v } else { 0.0 };
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((x.rows, w.cols))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // The gradient before the ReLU: the output's where the output is positive.
        let before = Tensor::from_vec(masked(grad, res)?, res.shape(), res.device())?;
        // dX = dZ · Wᵀ, only when X is part of the graph; dW = Xᵀ · dZ.
        let (grad_x, grad_w) = both(
            x.track_op().then_some(((&before, false), (w, true))),
            w.track_op().then_some(((x, true), (&before, false))),
            self.name(),
        )?;
        Ok((grad_x, grad_w))
    }
}

struct LinearCrossEntropy {
    targets: Vec<u32>,
    /// softmax(h · w + bias), kept by the forward pass for the backward pass.
    probabilities: Mutex<Option<Vec<f32>>>,
}

impl CustomOp3 for LinearCrossEntropy {
    fn name(&self) -> &'static str {
        "hwbench-linear-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        h: &CpuStorage,
        h_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let h = Matrix::new(h, h_layout, self.name())?;
        let w = Matrix::new(w, w_layout, self.name())?;
        let CpuStorage::F32(b) = bias else {
            bail!("{}: only f32 is supported", self.name())
        };
        let Some((start, end)) = bias_layout.contiguous_offsets() else {
            bail!("{}: the bias must be contiguous", self.name())
        };
        let b = &b[start..end];
        let classes = b.len();
        let rows = self.targets.len();
        if h.rows != rows || w.cols != classes {
            bail!(
                "{}: [{}, {}] scores for {rows} rows of {classes} classes",
                self.name(),
                h.rows,
                w.cols
            );
        }
        if let Some(&bad) = self.targets.iter().find(|&&t| t as usize >= classes) {
            bail!("{}: class {bad} of {classes}", self.name());
        }
        // The scores, turned into probabilities in place, row by row.
        let mut probabilities = parallel::product(h, w, self.name())?;
        let mut row_losses = vec![0f64; rows];
        let row_loss = |z: &mut [f32], target: u32, loss: &mut f64| {
            let max = z
                .iter()
                .zip(b)
                .map(|(z, b)| z + b)
                .fold(f32::NEG_INFINITY, f32::max);
            let target_score = z[target as usize] + b[target as usize];
            let mut sum = 0f32;
            for (p, b) in z.iter_mut().zip(b) {
                *p = (*p + b - max).exp();
                sum += *p;
            }
            for p in z.iter_mut() {
                *p /= sum;
            }
            // −log softmax[target] = log Σ exp(l − max) − (l[target] − max)
            *loss = f64::from(sum.ln() - (target_score - max));
        };
        let (scores, losses) = (Shared::of(&mut probabilities), Shared::of(&mut row_losses));
        for_rows(rows, classes, |range| {
            // SAFETY: the row ranges are disjoint.
            let (z, loss) = unsafe {
                (
                    scores.slice(range.start * classes..range.end * classes),
                    losses.slice(range.clone()),
                )
            };
            for ((z, &target), loss) in z.chunks_mut(classes).zip(&self.targets[range]).zip(loss) {
                row_loss(z, target, loss);
            }
        });
        // Summed in row order whatever the threads: the same loss on every run.
        let total: f64 = row_losses.iter().sum();
        *self.probabilities.lock().expect("not poisoned") = Some(probabilities);
        let loss = (total / rows as f64) as f32;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        h: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(probabilities) = self.probabilities.lock().expect("not poisoned").take() else {
            bail!("{}: backward without forward", self.name())
        };
        let scale = grad.to_dtype(DType::F32)?.to_scalar::<f32>()? / self.targets.len() as f32;
        let classes = bias.elem_count();
        let rows = self.targets.len();
        // The scores' gradient: (softmax − one-hot) / rows.
        let mut grad_scores = probabilities;
        let scores = Shared::of(&mut grad_scores);
        for_rows(rows, classes, |range| {
            // SAFETY: the row ranges are disjoint.
            let block = unsafe { scores.slice(range.start * classes..range.end * classes) };
            for (row, &target) in block.chunks_mut(classes).zip(&self.targets[range]) {
                row[target as usize] -= 1.0;
                for g in row.iter_mut() {
                    *g *= scale;
                }
            }
        });
        // The bias's gradient sums the rows, in row order.
        let mut grad_bias = vec![0f32; classes];
        for row in grad_scores.chunks(classes) {
            for (gb, g) in grad_bias.iter_mut().zip(row) {
                *gb += g;
            }
        }
        let grad_scores = Tensor::from_vec(grad_scores, (rows, classes), h.device())?;
        // dH = dZ · Wᵀ and dW = Hᵀ · dZ: the same work, each on half the threads.
        let (grad_h, grad_w) = both(
            h.track_op().then_some(((&grad_scores, false), (w, true))),
            w.track_op().then_some(((h, true), (&grad_scores, false))),
            self.name(),
        )?;
        let grad_bias = Tensor::from_vec(grad_bias, bias.shape(), bias.device())?;
        Ok((grad_h, grad_w, Some(grad_bias)))
    }
}
