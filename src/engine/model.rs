//! The inputs → hidden → classes MLP, its initial weights, and how they are chosen.
//!
//! For the course's iris model (4 → hidden → 3), initial weights come from one of three places: the PyTorch reference run's own
//! (`torch.manual_seed(0)`, embedded, the default for hidden = 10), a seed (`--seed`, drawn like
//! PyTorch's `nn.Linear`: uniform in ±1/√fan_in, but from hwbench's own generator), or a
//! safetensors file (`--init-weights`). `hwbench scale` draws them for any size from its seed
//! (`synthetic::init_weights`).

use std::path::Path;

use candle_core::{D, DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::data::{CLASSES, FEATURES, MersenneTwister};
use super::limits;

const REFERENCE_INIT: &[u8] = include_bytes!("../../data/torch_iris_seed0_init.safetensors");

/// Exact initial parameters, row-major as PyTorch stores them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InitWeights {
    /// Where they came from, e.g. "PyTorch torch.manual_seed(0)", "seed 7", "file init.safetensors".
    pub source: String,
    /// Features per row (4 for iris).
    #[serde(default = "iris_inputs")]
    pub inputs: usize,
    pub hidden: usize,
    /// Classes (3 for iris).
    #[serde(default = "iris_classes")]
    pub classes: usize,
    /// [hidden, inputs]
    pub fc1_weight: Vec<f32>,
    pub fc1_bias: Vec<f32>,
    /// [classes, hidden]
    pub fc2_weight: Vec<f32>,
    pub fc2_bias: Vec<f32>,
}

fn iris_inputs() -> usize {
    FEATURES
}

fn iris_classes() -> usize {
    CLASSES
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
            inputs: FEATURES,
            hidden,
            classes: CLASSES,
            fc1_weight: uniform(hidden * FEATURES, FEATURES),
            fc1_bias: uniform(hidden, FEATURES),
            fc2_weight: uniform(CLASSES * hidden, hidden),
            fc2_bias: uniform(CLASSES, hidden),
        }
    }

    /// Reads `fc1.weight` [hidden,4], `fc1.bias` [hidden], `fc2.weight` [3,hidden], `fc2.bias` [3].
    /// The header is checked first (names, shapes, sizes), so that a huge or hostile file is
    /// refused before its data is read; values must be finite.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let bytes = read_safetensors(path)?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| {
            format!(
                "--init-weights '{}' is not a safetensors file: {e}",
                path.display()
            )
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let init = Self::from_tensors(&tensors, &format!("file {name}"))
            .map_err(|e| format!("--init-weights '{}': {e}", path.display()))?;
        for (tensor, values) in [
            ("fc1.weight", &init.fc1_weight),
            ("fc1.bias", &init.fc1_bias),
            ("fc2.weight", &init.fc2_weight),
            ("fc2.bias", &init.fc2_bias),
        ] {
            if values.iter().any(|v| !v.is_finite()) {
                return Err(format!(
                    "--init-weights '{}': {tensor} holds NaN or infinite values",
                    path.display()
                ));
            }
        }
        Ok(init)
    }

    fn from_tensors(
        tensors: &std::collections::HashMap<String, Tensor>,
        source: &str,
    ) -> Result<Self, String> {
        let get = |name: &str| -> Result<&Tensor, String> {
            tensors.get(name).ok_or_else(|| {
                format!(
                    "no tensor named '{name}' (expected fc1.weight, fc1.bias, fc2.weight, fc2.bias)"
                )
            })
        };
        let fc1_weight = get("fc1.weight")?;
        let hidden = hidden_units(fc1_weight.dims())?;
        let expect = |name: &str, shape: &[usize]| -> Result<Vec<f32>, String> {
            let tensor = get(name)?;
            if tensor.dims() != shape {
                return Err(format!(
                    "{name} has shape {:?}, expected {shape:?}",
                    tensor.dims()
                ));
            }
            tensor
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| format!("{name}: {e}"))
        };
        Ok(Self {
            source: source.to_string(),
            inputs: FEATURES,
            hidden,
            classes: CLASSES,
            fc1_weight: expect("fc1.weight", &[hidden, FEATURES])?,
            fc1_bias: expect("fc1.bias", &[hidden])?,
            fc2_weight: expect("fc2.weight", &[CLASSES, hidden])?,
            fc2_bias: expect("fc2.bias", &[CLASSES])?,
        })
    }
}

/// The hidden units `fc1.weight`'s shape gives, within hwbench's limits.
fn hidden_units(shape: &[usize]) -> Result<usize, String> {
    match shape {
        [h, f] if *f == FEATURES && (1..=limits::HIDDEN).contains(h) => Ok(*h),
        _ => Err(format!(
            "fc1.weight has shape {shape:?}, expected [hidden, {FEATURES}] with hidden from 1 to {}",
            limits::HIDDEN
        )),
    }
}

/// The largest safetensors header read (this model's is a few hundred bytes).
const MAX_HEADER: u64 = 1 << 20;
/// The most tensor data read (this model at 4096 hidden units in float64 is 230 KiB).
const MAX_DATA: u64 = 64 << 20;

/// The bytes of a safetensors file, up to the end of its last tensor, after checking its header:
/// the four tensors are there with fitting shapes, and their data is in the file.
fn read_safetensors(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let shown = path.display();
    let not_safetensors =
        |why: String| format!("--init-weights '{shown}' is not a safetensors file: {why}");
    if path.is_dir() {
        return Err(format!(
            "--init-weights '{shown}' is a folder: give a .safetensors file"
        ));
    }
    // A named pipe or a device could keep hwbench waiting for a writer that never comes.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(format!(
            "--init-weights '{shown}' is not a regular file (a pipe or a device): give a .safetensors file"
        ));
    }
    let mut file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read --init-weights '{shown}': {e}"))?;
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = vec![0u8; 8];
    file.read_exact(&mut bytes)
        .map_err(|_| not_safetensors("too short".to_string()))?;
    let header_length = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    if header_length > MAX_HEADER || 8 + header_length > length {
        return Err(not_safetensors(format!(
            "its header claims {header_length} bytes"
        )));
    }
    bytes.resize(8 + header_length as usize, 0);
    file.read_exact(&mut bytes[8..])
        .map_err(|e| not_safetensors(e.to_string()))?;
    let header: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..]).map_err(|e| not_safetensors(e.to_string()))?;
    let shape = |name: &str| -> Option<Vec<usize>> {
        header.get(name)?["shape"]
            .as_array()?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect()
    };
    match shape("fc1.weight") {
        Some(dims) => {
            hidden_units(&dims).map_err(|e| format!("--init-weights '{shown}': {e}"))?;
        }
        None => {
            return Err(format!(
                "--init-weights '{shown}': no tensor named 'fc1.weight' (expected fc1.weight, fc1.bias, fc2.weight, fc2.bias)"
            ));
        }
    }
    let data = header
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .filter_map(|(_, entry)| entry["data_offsets"][1].as_u64())
        .max()
        .unwrap_or(0);
    if data > MAX_DATA {
        return Err(not_safetensors(format!(
            "it holds {} MiB of tensors; this model needs less than 1 MiB",
            data >> 20
        )));
    }
    if 8 + header_length + data > length {
        return Err(not_safetensors(format!(
            "its tensors need {data} bytes, the file ends before"
        )));
    }
    bytes.resize(8 + (header_length + data) as usize, 0);
    file.read_exact(&mut bytes[8 + header_length as usize..])
        .map_err(|e| not_safetensors(e.to_string()))?;
    Ok(bytes)
}

/// One split of the data on a device, in the form the model consumes.
pub struct Batch {
    /// Features with a constant 1 appended to each row, [rows, inputs + 1]: the first layer's bias is then
    /// part of its matrix product (see [`Mlp`]).
    pub x: Tensor,
    /// Class indices, [rows], u32.
    pub y: Tensor,
    /// The same class indices on the host (the fused CPU epoch reads them).
    pub host_y: Vec<u32>,
}

impl Batch {
    /// `features` holds `labels.len()` rows of equally many features.
    pub fn new(features: &[f32], labels: &[u32], device: &Device) -> candle_core::Result<Self> {
        let rows = labels.len();
        let inputs = features.len() / rows.max(1);
        let with_ones: Vec<f32> = features
            .chunks(inputs.max(1))
            .flat_map(|row| row.iter().copied().chain([1.0]))
            .collect();
        Ok(Self {
            x: Tensor::from_vec(with_ones, (rows, inputs + 1), device)?,
            y: Tensor::from_slice(labels, rows, device)?,
            host_y: labels.to_vec(),
        })
    }
}

/// The model's parameters on the host, in the layout both the fused epoch and [`Mlp`] use.
///
/// PyTorch's `fc1 = nn.Linear(inputs, hidden)` computes `x · W1ᵀ + b1`. Here `W1ᵀ` and `b1` are
/// stored together as one [inputs + 1, hidden] matrix and the inputs carry a constant 1, so the
/// layer is a single matrix product whose gradient includes the bias's; `fc2`'s weight is stored
/// transposed ([hidden, classes]). The arithmetic, and what plain SGD does to every number, is
/// exactly PyTorch's; what goes is a broadcast addition and a transposition per layer, whose
/// backward passes cost more than the layers' arithmetic on a model this small.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameters {
    pub inputs: usize,
    pub hidden: usize,
    pub classes: usize,
    /// [inputs + 1, hidden]: rows 0..inputs are fc1.weightᵀ, the last row is fc1.bias.
    pub fc1: Vec<f32>,
    /// [hidden, classes]: fc2.weightᵀ.
    pub fc2_weight: Vec<f32>,
    /// [classes]
    pub fc2_bias: Vec<f32>,
}

impl Parameters {
    pub fn new(init: &InitWeights) -> Self {
        let (inputs, h, classes) = (init.inputs, init.hidden, init.classes);
        let mut fc1 = vec![0f32; (inputs + 1) * h];
        for unit in 0..h {
            for feature in 0..inputs {
                fc1[feature * h + unit] = init.fc1_weight[unit * inputs + feature];
            }
            fc1[inputs * h + unit] = init.fc1_bias[unit];
        }
        let mut fc2_weight = vec![0f32; h * classes];
        for class in 0..classes {
            for unit in 0..h {
                fc2_weight[unit * classes + class] = init.fc2_weight[class * h + unit];
            }
        }
        Self {
            inputs,
            hidden: h,
            classes,
            fc1,
            fc2_weight,
            fc2_bias: init.fc2_bias.clone(),
        }
    }

    /// The same shapes, all zeros.
    pub fn zeros_like(&self) -> Self {
        Self {
            fc1: vec![0.0; self.fc1.len()],
            fc2_weight: vec![0.0; self.fc2_weight.len()],
            fc2_bias: vec![0.0; self.fc2_bias.len()],
            ..*self
        }
    }
}

/// The model's parameters on one device, as candle variables that candle-nn's SGD updates in
/// place, and the model as candle's stock operations (the path every non-CPU device takes, and
/// the CPU with `--kernels stock`).
pub struct Mlp {
    /// [inputs + 1, hidden] (see [`Parameters`]).
    fc1: Var,
    /// [hidden, classes]
    fc2_weight: Var,
    /// [classes]
    fc2_bias: Var,
}

impl Mlp {
    pub fn new(init: &InitWeights, device: &Device) -> candle_core::Result<Self> {
        Self::from_parameters(&Parameters::new(init), device)
    }

    pub fn from_parameters(p: &Parameters, device: &Device) -> candle_core::Result<Self> {
        Ok(Self {
            fc1: Var::from_slice(&p.fc1, (p.inputs + 1, p.hidden), device)?,
            fc2_weight: Var::from_slice(&p.fc2_weight, (p.hidden, p.classes), device)?,
            fc2_bias: Var::from_slice(&p.fc2_bias, p.classes, device)?,
        })
    }

    pub fn vars(&self) -> Vec<Var> {
        vec![
            self.fc1.clone(),
            self.fc2_weight.clone(),
            self.fc2_bias.clone(),
        ]
    }

    /// Class scores, [rows, classes].
    pub fn logits(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        batch
            .x
            .matmul(self.fc1.as_tensor())?
            .relu()?
            .matmul(self.fc2_weight.as_tensor())?
            .broadcast_add(self.fc2_bias.as_tensor())
    }

    /// Mean cross-entropy of the logits against the classes, as PyTorch's CrossEntropyLoss.
    pub fn loss(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        candle_nn::loss::cross_entropy(&self.logits(batch)?, &batch.y)
    }

    /// Share of rows whose highest score is the true class.
    pub fn accuracy(&self, batch: &Batch) -> candle_core::Result<f64> {
        let predicted = self.logits(batch)?.argmax(D::Minus1)?;
        let correct = predicted
            .eq(&batch.y)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()?;
        Ok(f64::from(correct) / batch.host_y.len() as f64)
    }
}
