//! Two fused operations for a tiny MLP on the CPU, where candle's general-purpose kernels spend
//! far more time on bookkeeping than on arithmetic (an epoch here is ~40 k floating-point
//! operations).
//!
//! Each is a candle custom op with a hand-written forward and backward, so candle's autograd still
//! drives backpropagation and candle-nn's SGD still updates the parameters. On any other device
//! (CUDA) the same functions compose candle's stock operations instead; tests check on the CPU that
//! both paths give the same numbers, which also checks the hand-written gradients.

use std::sync::Mutex;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, bail};

/// Which implementation the model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The hand-written CPU ops (only on the CPU).
    Fused,
    /// candle's stock operations (any device).
    Composed,
}

impl Kernels {
    pub fn for_device(device: &candle_core::Device) -> Self {
        if device.is_cpu() {
            Self::Fused
        } else {
            Self::Composed
        }
    }
}

/// Matrix product of two 2-D tensors. The fused version computes no gradient for an input that
/// needs none (the data), which candle's general matmul always does.
pub fn matmul(a: &Tensor, b: &Tensor, kernels: Kernels) -> Result<Tensor> {
    match kernels {
        Kernels::Fused => a.apply_op2(b, MatMul),
        Kernels::Composed => a.matmul(b),
    }
}

/// ReLU. Its gradient is 0 at 0, as in PyTorch.
pub fn relu(x: &Tensor, kernels: Kernels) -> Result<Tensor> {
    match kernels {
        Kernels::Fused => x.apply_op1(Relu),
        Kernels::Composed => x.relu(),
    }
}

/// Mean cross-entropy of `logits + bias` against class indices `targets` (PyTorch's
/// `CrossEntropyLoss` on a linear layer's output). `targets` is a u32 tensor on the device;
/// `host_targets` the same indices on the host (used by the fused op).
pub fn softmax_cross_entropy(
    logits: &Tensor,
    bias: &Tensor,
    targets: &Tensor,
    host_targets: &[u32],
    kernels: Kernels,
) -> Result<Tensor> {
    match kernels {
        Kernels::Fused => logits.apply_op2(
            bias,
            SoftmaxCrossEntropy {
                targets: host_targets.to_vec(),
                probabilities: Mutex::new(None),
            },
        ),
        Kernels::Composed => candle_nn::loss::cross_entropy(&logits.broadcast_add(bias)?, targets),
    }
}

/// The contiguous f32 data of a CPU tensor's storage.
fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        bail!("{op}: only f32 is supported")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: the input must be contiguous"),
    }
}

fn dims2(shape: &Shape, op: &str) -> Result<(usize, usize)> {
    match shape.dims() {
        &[rows, cols] => Ok((rows, cols)),
        dims => bail!("{op}: expected a matrix, got shape {dims:?}"),
    }
}

struct MatMul;

impl CustomOp2 for MatMul {
    fn name(&self) -> &'static str {
        "hwbench-matmul"
    }

    fn cpu_fwd(
        &self,
        a: &CpuStorage,
        a_layout: &Layout,
        b: &CpuStorage,
        b_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (m, k) = dims2(a_layout.shape(), self.name())?;
        let (k2, n) = dims2(b_layout.shape(), self.name())?;
        if k != k2 {
            bail!("{}: cannot multiply [{m}, {k}] by [{k2}, {n}]", self.name());
        }
        let c = a.matmul(b, (1, m, n, k), a_layout, b_layout)?;
        Ok((c, Shape::from((m, n))))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // dA = dC · Bᵀ, only when A is part of the graph; dB = Aᵀ · dC.
        let grad_a = if a.track_op() {
            Some(grad.matmul(&b.t()?)?)
        } else {
            None
        };
        let grad_b = if b.track_op() {
            Some(a.t()?.matmul(grad)?)
        } else {
            None
        };
        Ok((grad_a, grad_b))
    }
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "hwbench-relu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(storage, layout, self.name())?;
        // NaN stays NaN (a diverging run must still be seen to diverge).
        let y = x
            .iter()
            .map(|&v| if v > 0.0 || v.is_nan() { v } else { 0.0 })
            .collect();
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let out = res.flatten_all()?.to_vec1::<f32>()?;
        let grad_out = grad.flatten_all()?.to_vec1::<f32>()?;
        let grad_in: Vec<f32> = out
            .iter()
            .zip(&grad_out)
            .map(|(&y, &g)| if y > 0.0 { g } else { 0.0 })
            .collect();
        Ok(Some(Tensor::from_vec(grad_in, res.shape(), res.device())?))
    }
}

struct SoftmaxCrossEntropy {
    targets: Vec<u32>,
    /// softmax(logits + bias), kept by the forward pass for the backward pass.
    probabilities: Mutex<Option<Vec<f32>>>,
}

impl CustomOp2 for SoftmaxCrossEntropy {
    fn name(&self) -> &'static str {
        "hwbench-softmax-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        logits: &CpuStorage,
        logits_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let z = f32_slice(logits, logits_layout, self.name())?;
        let b = f32_slice(bias, bias_layout, self.name())?;
        let classes = b.len();
        let rows = self.targets.len();
        if z.len() != rows * classes {
            bail!(
                "{}: {} logits for {rows} rows of {classes} classes",
                self.name(),
                z.len()
            );
        }
        let mut probabilities = vec![0f32; z.len()];
        let mut total = 0f64;
        for (row, (&target, p)) in self
            .targets
            .iter()
            .zip(probabilities.chunks_mut(classes))
            .enumerate()
        {
            let z = &z[row * classes..(row + 1) * classes];
            let max = z
                .iter()
                .zip(b)
                .map(|(z, b)| z + b)
                .fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for ((p, z), b) in p.iter_mut().zip(z).zip(b) {
                *p = (z + b - max).exp();
                sum += *p;
            }
            for p in p.iter_mut() {
                *p /= sum;
            }
            let target = target as usize;
            // −log softmax[target] = log Σ exp(l − max) − (l[target] − max)
            total += f64::from(sum.ln() - (z[target] + b[target] - max));
        }
        *self.probabilities.lock().expect("not poisoned") = Some(probabilities);
        let loss = (total / rows as f64) as f32;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(probabilities) = self.probabilities.lock().expect("not poisoned").take() else {
            bail!("{}: backward without forward", self.name())
        };
        let scale = grad.to_dtype(DType::F32)?.to_scalar::<f32>()? / self.targets.len() as f32;
        let classes = bias.elem_count();
        let mut grad_logits = probabilities;
        let mut grad_bias = vec![0f32; classes];
        for (row, &target) in grad_logits.chunks_mut(classes).zip(&self.targets) {
            row[target as usize] -= 1.0;
            for (g, gb) in row.iter_mut().zip(grad_bias.iter_mut()) {
                *g *= scale;
                *gb += *g;
            }
        }
        Ok((
            Some(Tensor::from_vec(
                grad_logits,
                logits.shape(),
                logits.device(),
            )?),
            Some(Tensor::from_vec(grad_bias, bias.shape(), bias.device())?),
        ))
    }
}
