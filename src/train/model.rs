//! The 4 → hidden → 3 MLP, its initial weights, and how they are chosen.
//!
//! Initial weights come from one of three places: the PyTorch reference run's own
//! (`torch.manual_seed(0)`, embedded, the default for hidden = 10), a seed (`--seed`, drawn like
//! PyTorch's `nn.Linear`: uniform in ±1/√fan_in, but from hwbench's own generator), or a
//! safetensors file (`--init-weights`).

use std::path::Path;

use candle_core::{D, DType, Device, Module, Tensor, Var};
use candle_nn::Linear;
use serde::{Deserialize, Serialize};

use super::data::{CLASSES, FEATURES, MersenneTwister};

const REFERENCE_INIT: &[u8] = include_bytes!("../../data/torch_iris_seed0_init.safetensors");

/// Exact initial parameters, row-major as PyTorch stores them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InitWeights {
    /// Where they came from, e.g. "PyTorch torch.manual_seed(0)", "seed 7", "file init.safetensors".
    pub source: String,
    pub hidden: usize,
    /// [hidden, 4]
    pub fc1_weight: Vec<f32>,
    pub fc1_bias: Vec<f32>,
    /// [3, hidden]
    pub fc2_weight: Vec<f32>,
    pub fc2_bias: Vec<f32>,
}

impl InitWeights {
    /// The PyTorch reference run's initial weights (hidden = 10).
    pub fn reference() -> Self {
        let tensors = candle_core::safetensors::load_buffer(REFERENCE_INIT, &Device::Cpu)
            .expect("embedded reference weights are valid safetensors");
        Self::from_tensors(&tensors, "PyTorch torch.manual_seed(0) (the reference run)")
            .expect("embedded reference weights have the reference shapes")
    }

    /// Uniform in ±1/√fan_in for weights and biases, like PyTorch's `nn.Linear` defaults.
    pub fn from_seed(seed: u32, hidden: usize) -> Self {
        let mut rng = MersenneTwister::new(seed);
        let mut uniform = |count: usize, fan_in: usize| -> Vec<f32> {
            let bound = 1.0 / (fan_in as f64).sqrt();
            (0..count)
                .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
                .collect()
        };
        Self {
            source: format!("seed {seed} (hwbench's generator)"),
            hidden,
            fc1_weight: uniform(hidden * FEATURES, FEATURES),
            fc1_bias: uniform(hidden, FEATURES),
            fc2_weight: uniform(CLASSES * hidden, hidden),
            fc2_bias: uniform(CLASSES, hidden),
        }
    }

    /// Reads `fc1.weight` [hidden,4], `fc1.bias` [hidden], `fc2.weight` [3,hidden], `fc2.bias` [3].
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read --init-weights '{}': {e}", path.display()))?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| {
            format!("--init-weights '{}' is not a safetensors file: {e}", path.display())
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::from_tensors(&tensors, &format!("file {name}"))
            .map_err(|e| format!("--init-weights '{}': {e}", path.display()))
    }

    fn from_tensors(
        tensors: &std::collections::HashMap<String, Tensor>,
        source: &str,
    ) -> Result<Self, String> {
        let get = |name: &str| -> Result<&Tensor, String> {
            tensors
                .get(name)
                .ok_or_else(|| format!("no tensor named '{name}' (expected fc1.weight, fc1.bias, fc2.weight, fc2.bias)"))
        };
        let fc1_weight = get("fc1.weight")?;
        let hidden = match fc1_weight.dims() {
            [h, f] if *f == FEATURES && *h > 0 => *h,
            dims => return Err(format!("fc1.weight has shape {dims:?}, expected [hidden, {FEATURES}]")),
        };
        let expect = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
            let tensor = get(name)?;
            if tensor.dims() != shape {
                return Err(format!("{name} has shape {:?}, expected {shape:?}", tensor.dims()));
            }
            tensor
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| format!("{name}: {e}"))
        };
        Ok(Self {
            source: source.to_string(),
            hidden,
            fc1_weight: expect("fc1.weight", &[hidden, FEATURES])?,
            fc1_bias: expect("fc1.bias", &[hidden])?,
            fc2_weight: expect("fc2.weight", &[CLASSES, hidden])?,
            fc2_bias: expect("fc2.bias", &[CLASSES])?,
        })
    }
}

/// The model's parameters on one device, as candle variables the optimizer updates in place.
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
    vars: Vec<Var>,
}

impl Mlp {
    pub fn new(init: &InitWeights, device: &Device) -> candle_core::Result<Self> {
        let var = |values: &[f32], shape: &[usize]| Var::from_slice(values, shape, device);
        let w1 = var(&init.fc1_weight, &[init.hidden, FEATURES])?;
        let b1 = var(&init.fc1_bias, &[init.hidden])?;
        let w2 = var(&init.fc2_weight, &[CLASSES, init.hidden])?;
        let b2 = var(&init.fc2_bias, &[CLASSES])?;
        Ok(Self {
            fc1: Linear::new(w1.as_tensor().clone(), Some(b1.as_tensor().clone())),
            fc2: Linear::new(w2.as_tensor().clone(), Some(b2.as_tensor().clone())),
            vars: vec![w1, b1, w2, b2],
        })
    }

    pub fn vars(&self) -> Vec<Var> {
        self.vars.clone()
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.relu()?)
    }

    /// Mean cross-entropy of the logits against class indices, as PyTorch's CrossEntropyLoss.
    pub fn loss(&self, x: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::loss::cross_entropy(&self.forward(x)?, y)
    }

    /// Share of rows whose highest logit is the true class.
    pub fn accuracy(&self, x: &Tensor, y: &Tensor) -> candle_core::Result<f64> {
        let predicted = self.forward(x)?.argmax(D::Minus1)?;
        let correct = predicted.eq(y)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()?;
        Ok(f64::from(correct) / y.dims()[0] as f64)
    }
}
