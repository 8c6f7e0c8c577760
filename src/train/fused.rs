//! The model's two layers as fused CPU operations: `relu(x · W)` and `cross_entropy(h · W + b)`.
//!
//! On the course's model candle's general-purpose kernels spend far more time on bookkeeping than
//! on arithmetic (an epoch is ~49 k floating-point operations); on large models they pay for
//! memory traffic the layers do not need (a gradient for the input data, separate ReLU and bias
//! tensors each with its own gradient to accumulate). Each fused layer is a candle custom op with
//! a hand-written forward and backward, so candle's autograd still drives backpropagation and
//! candle-nn's SGD still updates the parameters; their matrix products call the `gemm` crate (what
//! candle's own CPU matmul calls) directly, on candle's threads when a product is large enough to
//! share, and their element-wise passes run on rayon's threads when large.
//!
//! On any other device (CUDA) the same functions compose candle's stock operations instead; tests
//! check on the CPU that both paths give the same numbers, which also checks the hand-written
//! gradients.

use std::sync::Mutex;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use candle_core::{
    CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor, bail,
};

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

    /// What `choice` means on `device`: the fused ops exist only on the CPU.
    pub fn chosen(device: &candle_core::Device, choice: KernelChoice) -> Self {
        match choice {
            KernelChoice::Stock => Self::Composed,
            KernelChoice::Auto | KernelChoice::Fused => Self::for_device(device),
        }
    }

    /// As reports name them.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fused => "fused",
            Self::Composed => "stock",
        }
    }
}

/// Which CPU kernels the candle model uses at a size: chosen by measurement (`auto`), or forced
/// (to measure one against the other).
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
        Kernels::Composed => x.matmul(w)?.relu(),
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
        Kernels::Composed => {
            candle_nn::loss::cross_entropy(&h.matmul(w)?.broadcast_add(bias)?, targets)
        }
    }
}

/// Below this many multiply–adds a product runs on one thread: waking the others costs more than
/// they save (the course's model is far below it).
const PARALLEL_PRODUCT: usize = 1 << 22;

/// Below this many elements an element-wise pass runs on one thread.
const PARALLEL_ELEMENTS: usize = 1 << 18;

/// A matrix in a tensor's storage: its data from the first element, its shape and strides.
#[derive(Clone, Copy)]
struct Matrix<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    fn new(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<Self> {
        let CpuStorage::F32(data) = storage else {
            bail!("{op}: only f32 is supported")
        };
        let (rows, cols) = dims2(layout.shape(), op)?;
        let &[row_stride, col_stride] = layout.stride() else {
            bail!("{op}: expected a matrix")
        };
        let data = &data[layout.start_offset()..];
        // The last element must be inside the storage.
        if rows > 0 && cols > 0 && (rows - 1) * row_stride + (cols - 1) * col_stride >= data.len() {
            bail!("{op}: the layout points outside the tensor's storage");
        }
        Ok(Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// The transpose when `transpose`, without moving any data.
    fn transposed_if(self, transpose: bool) -> Self {
        if !transpose {
            return self;
        }
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// `a · b` into a new row-major buffer, through the `gemm` crate, on candle's threads when the
/// product is large enough to share: split by output blocks (gemm's own way) when the output is
/// large, split along the sum when it is small and the sum long (a weight's gradient: few outputs,
/// one term per row), where gemm's split leaves all but one thread idle.
fn product(a: Matrix, b: Matrix, threads: usize, op: &str) -> Result<Vec<f32>> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        bail!("{op}: cannot multiply [{m}, {k}] by [{}, {n}]", b.rows);
    }
    if k == 0 {
        return Ok(vec![0.0; m * n]);
    }
    if threads < 2 || m * n * k < PARALLEL_PRODUCT {
        return Ok(gemm_into(a, b, gemm::Parallelism::None));
    }
    if m * n >= WIDE_OUTPUT {
        return Ok(gemm_into(a, b, gemm::Parallelism::Rayon(threads)));
    }
    let parts = threads.min(k / MIN_SHARE_OF_SUM).max(1);
    let bounds: Vec<(usize, usize)> = (0..parts)
        .map(|i| (k * i / parts, k * (i + 1) / parts))
        .collect();
    let partial: Vec<Vec<f32>> = bounds
        .par_iter()
        .map(|&(from, to)| {
            let a_part = Matrix {
                data: &a.data[from * a.col_stride..],
                cols: to - from,
                ..a
            };
            let b_part = Matrix {
                data: &b.data[from * b.row_stride..],
                rows: to - from,
                ..b
            };
            gemm_into(a_part, b_part, gemm::Parallelism::None)
        })
        .collect();
    let mut parts = partial.into_iter();
    let mut out = parts.next().unwrap_or_else(|| vec![0.0; m * n]);
    for part in parts {
        for (o, p) in out.iter_mut().zip(&part) {
            *o += p;
        }
    }
    Ok(out)
}

/// Outputs from this many elements up are split among threads by gemm itself.
const WIDE_OUTPUT: usize = 1 << 15;

/// A thread's share of a split sum is at least this many terms.
const MIN_SHARE_OF_SUM: usize = 256;

/// One gemm call into a new row-major m × n buffer (k ≥ 1, shapes checked by the caller).
fn gemm_into(a: Matrix, b: Matrix, parallelism: gemm::Parallelism) -> Vec<f32> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    // SAFETY: `a` and `b` lie inside their storage (checked in `Matrix::new`; a part of one along
    // the sum lies inside it too) with the strides given; the destination has room for m × n
    // values with row stride n. With `read_dst` false and k ≥ 1, gemm writes every destination
    // element before anything reads it, so the length is set only once all are initialised.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
        out.set_len(m * n);
    }
    out
}

/// The threads candle may use.
fn threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// `a · b` (each transposed first when asked) of two CPU tensors, as a new tensor, on up to
/// `threads` threads.
fn tensor_product(
    (a, a_t): (&Tensor, bool),
    (b, b_t): (&Tensor, bool),
    threads: usize,
    op: &str,
) -> Result<Tensor> {
    let (a_storage, a_layout) = a.storage_and_layout();
    let (b_storage, b_layout) = b.storage_and_layout();
    let (Storage::Cpu(a_cpu), Storage::Cpu(b_cpu)) = (&*a_storage, &*b_storage) else {
        bail!("{op}: the fused ops run on the CPU only")
    };
    let a = Matrix::new(a_cpu, a_layout, op)?.transposed_if(a_t);
    let b = Matrix::new(b_cpu, b_layout, op)?.transposed_if(b_t);
    let out = product(a, b, threads, op)?;
    Tensor::from_vec(out, (a.rows, b.cols), &candle_core::Device::Cpu)
}

/// A product to compute: each operand with whether to transpose it.
type Operands<'a> = ((&'a Tensor, bool), (&'a Tensor, bool));

/// The products asked for (`None`: not needed); two at once share the threads, one running
/// beside the other.
fn both(
    first: Option<Operands>,
    second: Option<Operands>,
    op: &str,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let run = |operands: Option<Operands>, threads: usize| {
        operands
            .map(|(a, b)| tensor_product(a, b, threads, op))
            .transpose()
    };
    // Multiply–adds of one product: m × k (all of a, transposed or not) × n.
    let work = |((a, _), (b, b_t)): Operands| -> usize {
        let n = b
            .dims2()
            .map_or(0, |(rows, cols)| if b_t { rows } else { cols });
        a.elem_count() * n
    };
    let all = threads();
    let large = first
        .zip(second)
        .is_some_and(|(f, s)| work(f) + work(s) >= PARALLEL_PRODUCT);
    if large && all > 1 {
        let (a, b) = rayon::join(|| run(first, all / 2), || run(second, all - all / 2));
        Ok((a?, b?))
    } else {
        Ok((run(first, all)?, run(second, all)?))
    }
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
    // A select, not a branch (see the forward).
    let keep = |(&g, &y): (&f32, &f32)| if y > 0.0 { g } else { 0.0 };
    let mut before = Vec::with_capacity(g.len());
    if parallel(g.len()) {
        g.par_iter()
            .zip(o.par_iter())
            .with_min_len(CHUNK)
            .map(keep)
            .collect_into_vec(&mut before);
    } else {
        before.extend(g.iter().zip(o).map(keep));
    }
    Ok(before)
}

/// Whether a pass over `elements` values is worth rayon's threads.
fn parallel(elements: usize) -> bool {
    elements >= PARALLEL_ELEMENTS && candle_core::utils::get_num_threads() > 1
}

/// Elements per task of a parallel pass: large enough that each task's loop vectorises.
const CHUNK: usize = 1 << 13;

/// `f` over `data` in chunks, on rayon's threads when there is enough of it.
fn for_chunks(data: &mut [f32], f: impl Fn(&mut [f32]) + Sync + Send) {
    if parallel(data.len()) {
        data.par_chunks_mut(CHUNK).for_each(f);
    } else {
        f(data);
    }
}

fn dims2(shape: &Shape, op: &str) -> Result<(usize, usize)> {
    match shape.dims() {
        &[rows, cols] => Ok((rows, cols)),
        dims => bail!("{op}: expected a matrix, got shape {dims:?}"),
    }
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
        let mut out = product(x, w, threads(), self.name())?;
        // NaN stays NaN (a diverging run must still be seen to diverge).
        // A select, not a branch: the sign of each value is a coin toss a branch predictor loses.
        for_chunks(&mut out, |chunk| {
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
        let mut probabilities = product(h, w, threads(), self.name())?;
        let mut row_losses = vec![0f64; rows];
        let row_loss = |(z, (&target, loss)): (&mut [f32], (&u32, &mut f64))| {
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
        let rows_iter = self.targets.iter().zip(row_losses.iter_mut());
        if parallel(probabilities.len()) {
            probabilities
                .par_chunks_mut(classes)
                .zip(self.targets.par_iter().zip(row_losses.par_iter_mut()))
                .for_each(row_loss);
        } else {
            probabilities
                .chunks_mut(classes)
                .zip(rows_iter)
                .for_each(row_loss);
        }
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
        let scale_row = |(row, &target): (&mut [f32], &u32)| {
            row[target as usize] -= 1.0;
            for g in row.iter_mut() {
                *g *= scale;
            }
        };
        if parallel(grad_scores.len()) {
            grad_scores
                .par_chunks_mut(classes)
                .zip(self.targets.par_iter())
                .for_each(scale_row);
        } else {
            grad_scores
                .chunks_mut(classes)
                .zip(&self.targets)
                .for_each(scale_row);
        }
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
