//! NVIDIA GPUs through NVML, loaded at run time: hwbench builds and starts with no NVIDIA software.
//!
//! Each query stands alone: one that answers NotSupported or NoPermission leaves that field `null`
//! with its reason. A machine without the driver gets a section saying exactly that.

use std::path::Path;

use nvml_wrapper::bitmasks::device::ThrottleReasons;
use nvml_wrapper::enum_wrappers::device::{
    Brand, Clock, EccCounter, MemoryError, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::{Device, Nvml};
use serde::{Deserialize, Serialize};

use super::{Unavailable, keep};

const MIB: u64 = 1024 * 1024;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct GpuSection {
    /// True when NVML loaded and initialised.
    pub nvml_loaded: bool,
    /// Why there is no GPU data, e.g. "no NVIDIA driver: libnvidia-ml.so.1 not found".
    pub message: Option<String>,
    pub driver_version: Option<String>,
    /// The newest CUDA version the installed driver supports, e.g. "13.0". Neither the toolkit's
    /// version nor the runtime's.
    pub cuda_driver_version: Option<String>,
    pub nvml_version: Option<String>,
    /// NVML's own error when it could not start, e.g. "driver/library version mismatch".
    #[serde(default)]
    pub nvml_error: Option<String>,
    pub devices: Vec<GpuReport>,
    /// The NVIDIA display and 3D controllers on the PCI bus (sysfs, vendor 0x10de), by address:
    /// what NVML should see. `null` where /sys/bus/pci cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_gpus: Option<Vec<String>>,
    /// The driver's Xid errors in the kernel log since boot, counted per GPU and number; `null`
    /// (with the reason) where the log cannot be read, absent on machines without NVIDIA GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xids: Option<Vec<super::xid::XidCount>>,
    /// How each pair of GPUs reaches the other (machines with two GPUs or more).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology: Vec<GpuPath>,
    pub unavailable: Unavailable,
}

/// The NVIDIA GPUs sysfs lists under `root`: PCI devices of vendor 0x10de whose class is a VGA
/// (0x0300) or 3D (0x0302) controller, by address ("0000:07:00.0"), sorted.
pub fn pci_gpus(root: &super::Root) -> Option<Vec<String>> {
    let entries = std::fs::read_dir(root.path("/sys/bus/pci/devices")).ok()?;
    let mut found: Vec<String> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let read = |file: &str| {
                root.read(&format!("/sys/bus/pci/devices/{name}/{file}"))
                    .map(|t| t.trim().to_lowercase())
            };
            if read("vendor")? != "0x10de" {
                return None;
            }
            let class = read("class")?;
            (class.starts_with("0x0300") || class.starts_with("0x0302"))
                .then_some(name.to_lowercase())
        })
        .take(1024)
        .collect();
    found.sort();
    Some(found)
}

/// Each GPU's NUMA node and that node's CPUs, from sysfs: the GPU's PCI device found among
/// `on_bus` (sysfs's addresses) by its NVML bus id.
pub fn fill_numa(devices: &mut [GpuReport], on_bus: &[String], root: &super::Root) {
    for gpu in devices {
        let found = gpu.pci_bus_id.as_deref().and_then(|bus_id| {
            on_bus
                .iter()
                .find(|address| same_pci_device(bus_id, address))
        });
        let node = match found {
            None => Err("its PCI device is not in /sys/bus/pci".to_string()),
            Some(address) => numa_node(root, address),
        };
        gpu.numa_node = keep(node, "numa_node", &mut gpu.unavailable);
        gpu.numa_cpus = gpu.numa_node.and_then(|node| {
            let list = root.read(&format!("/sys/devices/system/node/node{node}/cpulist"))?;
            let cpus = super::cpu::parse_cpu_list(&list);
            (!cpus.is_empty()).then(|| super::cpu::cpu_list_text(&cpus))
        });
    }
}

fn numa_node(root: &super::Root, address: &str) -> Result<u32, String> {
    let text = root
        .read(&format!("/sys/bus/pci/devices/{address}/numa_node"))
        .ok_or_else(|| "sysfs gives no numa_node for its PCI device".to_string())?;
    match text.trim().parse::<i64>() {
        Ok(-1) => Err("the kernel gives no NUMA node for it (a one-node machine)".to_string()),
        Ok(node) => u32::try_from(node).map_err(|_| format!("sysfs gives NUMA node {node}")),
        Err(_) => Err("sysfs's numa_node is not a number".to_string()),
    }
}

/// Whether two PCI addresses name the same device, however they are written: NVML's bus id
/// ("00000000:07:00.0", an 8-digit domain), sysfs's ("0000:07:00.0", 4 digits), or the driver's
/// Xid lines ("0000:07:00", no function: it matches any function).
pub fn same_pci_device(a: &str, b: &str) -> bool {
    let parts = |address: &str| -> Option<(u32, String, Option<String>)> {
        let (domain, rest) = address.split_once(':')?;
        let (slot, function) = match rest.split_once('.') {
            Some((slot, function)) => (slot, Some(function.to_lowercase())),
            None => (rest, None),
        };
        Some((
            u32::from_str_radix(domain, 16).ok()?,
            slot.to_lowercase(),
            function,
        ))
    };
    match (parts(a), parts(b)) {
        (Some((domain_a, slot_a, function_a)), Some((domain_b, slot_b, function_b))) => {
            domain_a == domain_b
                && slot_a == slot_b
                && (function_a.is_none() || function_b.is_none() || function_a == function_b)
        }
        _ => false,
    }
}

/// A PCI address without its domain, as both NVML ("00000000:07:00.0") and sysfs
/// ("0000:07:00.0") write it: "07:00.0".
pub fn pci_slot(address: &str) -> String {
    let parts: Vec<&str> = address.rsplitn(3, ':').collect();
    match parts.as_slice() {
        [function, bus, ..] => format!("{bus}:{function}").to_lowercase(),
        _ => address.to_lowercase(),
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct GpuReport {
    /// NVML index (PCI bus order; may differ from CUDA's order unless CUDA_DEVICE_ORDER=PCI_BUS_ID).
    pub index: u32,
    pub name: Option<String>,
    /// Product line as NVML names it: "GeForce RTX", "NVIDIA RTX", "Tesla" (data centre), …
    pub brand: Option<String>,
    /// "Ampere", "Hopper", "Blackwell", …
    pub architecture: Option<String>,
    /// CUDA compute capability, e.g. "9.0".
    pub compute_capability: Option<String>,
    pub memory_total_mib: Option<u64>,
    pub memory_used_mib: Option<u64>,
    pub memory_free_mib: Option<u64>,
    pub pcie_generation_current: Option<u32>,
    pub pcie_generation_max: Option<u32>,
    pub pcie_width_current: Option<u32>,
    pub pcie_width_max: Option<u32>,
    pub power_draw_w: Option<f64>,
    /// The power management limit in force now.
    pub power_limit_w: Option<f64>,
    pub power_limit_default_w: Option<f64>,
    /// The limit actually enforced (the lowest of all limits that apply).
    pub power_limit_enforced_w: Option<f64>,
    pub sm_clock_mhz: Option<u32>,
    pub sm_clock_max_mhz: Option<u32>,
    /// NVML's default applications (graphics) clock, where the board has one: the rated boost on
    /// RTX workstation boards, the base clock on some data-centre boards (585 MHz on a T4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock_default_app_mhz: Option<u32>,
    pub memory_clock_mhz: Option<u32>,
    pub memory_clock_max_mhz: Option<u32>,
    pub temperature_c: Option<u32>,
    /// The temperature at which the board starts slowing its clocks down, °C (NVML's slowdown
    /// threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_slowdown_c: Option<u32>,
    pub persistence_mode: Option<bool>,
    pub mig_enabled: Option<bool>,
    /// MIG mode after the next GPU reset.
    pub mig_pending: Option<bool>,
    pub mig_devices: Vec<MigDevice>,
    pub ecc_enabled: Option<bool>,
    pub ecc_pending: Option<bool>,
    pub pci_bus_id: Option<String>,
    /// Redacted unless `--no-redact`.
    pub uuid: Option<String>,
    /// Redacted unless `--no-redact`.
    pub serial: Option<String>,
    /// CUDA cores, as NVML counts them.
    #[serde(default)]
    pub cuda_cores: Option<u32>,
    /// Streaming multiprocessors: the cores over the cores per SM of the architecture.
    #[serde(default)]
    pub sm_count: Option<u32>,
    #[serde(default)]
    pub memory_bus_width_bits: Option<u32>,
    /// Theoretical FP32 throughput: cores × 2 (an FMA) × the rated boost clock, TFLOP/s (see
    /// `fp32_peak_basis`).
    #[serde(default)]
    pub fp32_peak_tflops: Option<f64>,
    /// How `fp32_peak_tflops` was reckoned: which clock, from where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp32_peak_basis: Option<String>,
    /// Theoretical memory bandwidth: bus width × maximum memory clock × 2 / 8, GB/s.
    #[serde(default)]
    pub memory_bandwidth_peak_gbs: Option<f64>,
    /// "data centre", "workstation", "consumer desktop", "laptop" or "embedded".
    #[serde(default)]
    pub class: Option<String>,
    /// How busy the GPU's SMs were over NVML's last sample period, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_gpu_percent: Option<u32>,
    /// What holds the clocks down right now, as NVML's clocks event reasons name it
    /// ("sw_power_cap", "hw_thermal_slowdown", …; "gpu_idle" when nothing runs).
    #[serde(default)]
    pub clocks_event_reasons: Option<Vec<String>>,
    /// Uncorrected ECC errors since the driver loaded.
    #[serde(default)]
    pub ecc_uncorrected_volatile: Option<u64>,
    #[serde(default)]
    pub remapped_rows: Option<RemappedRows>,
    /// Pages waiting for the GPU's next reset to be retired.
    #[serde(default)]
    pub retired_pages_pending: Option<bool>,
    /// Other processes using the GPU (compute and graphics); pid and name only unredacted.
    #[serde(default)]
    pub processes: Option<Vec<GpuProcess>>,
    /// The CPUs close to the GPU (NVML's affinity), e.g. "0-31,64-95".
    #[serde(default)]
    pub cpu_affinity: Option<String>,
    /// The NUMA node sysfs gives the GPU's PCI device, and that node's CPUs ("0-31"): a process
    /// feeding this GPU runs best there. Absent where sysfs does not say (one-node machines say
    /// -1), with the reason in `unavailable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_node: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_cpus: Option<String>,
    /// NVML answered GPU_IS_LOST for it: the GPU fell off the bus or is otherwise inaccessible.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
    /// What the driver asks to be done for the GPU to be usable again after an error (NVML's
    /// GPU recovery action, drivers 555 on): "none", "gpu_reset", "node_reboot", "drain_p2p",
    /// "drain_and_reset". Absent where the driver does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_action: Option<String>,
    /// The GPU's NVLink links, each with its state: absent on GPUs without NVLink (NVML answers
    /// "not supported" for the first link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlinks: Option<Vec<NvLinkState>>,
    pub unavailable: Unavailable,
}

impl GpuReport {
    /// How many of its NVLink links are up (`None` on GPUs without NVLink).
    pub fn active_nvlinks(&self) -> Option<usize> {
        Some(self.nvlinks.as_ref()?.iter().filter(|l| l.active).count())
    }

    /// Its NVLink links that are down, by number.
    pub fn nvlinks_down(&self) -> Vec<String> {
        self.nvlinks
            .iter()
            .flatten()
            .filter(|l| !l.active)
            .map(|l| l.link.to_string())
            .collect()
    }
}

/// One NVLink link of a GPU.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct NvLinkState {
    pub link: u32,
    /// Whether the link is up (NVML's link state).
    pub active: bool,
    /// NVLink version of the link (4 on Hopper), where NVML says.
    #[serde(default)]
    pub version: Option<u32>,
    /// The PCI bus id at the other end (a GPU, or an NVSwitch), where NVML says.
    #[serde(default)]
    pub remote_pci_bus_id: Option<String>,
}

/// How two GPUs reach each other, as `nvidia-smi topo -m` says, in words.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct GpuPath {
    /// The two GPUs' NVML indices, the lower first.
    pub gpus: (u32, u32),
    /// "NVLink" (direct links between the two, or through NVSwitches), "one board", "one PCIe
    /// switch", "PCIe switches under one host bridge", "one host bridge", "one NUMA node" or
    /// "across NUMA nodes (CPU sockets)".
    pub path: String,
    /// Active NVLink links joining the two directly (0 through NVSwitches or PCIe).
    #[serde(default)]
    pub nvlinks: u32,
}

/// NVML's row remapping counts (Ampere and newer).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct RemappedRows {
    pub correctable: u32,
    pub uncorrectable: u32,
    /// A remapping waits for the next reset.
    pub pending: bool,
    /// A remapping failed.
    pub failed: bool,
}

/// A process using a GPU.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct GpuProcess {
    /// Redacted unless `--no-redact`.
    pub pid: Option<u32>,
    /// Redacted unless `--no-redact`.
    pub name: Option<String>,
    pub memory_used_mib: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MigDevice {
    pub index: u32,
    pub name: Option<String>,
    pub memory_total_mib: Option<u64>,
    /// Redacted unless `--no-redact`.
    pub uuid: Option<String>,
}

/// The placeholders of a GPU's identifying values, by position (so that two machines of a kind
/// still compare): its UUID, serial, and each MIG device's UUID.
fn uuid_placeholder(gpu: u32) -> String {
    format!("GPU-redacted-{gpu}")
}

fn serial_placeholder(gpu: u32) -> String {
    format!("serial-redacted-{gpu}")
}

fn mig_placeholder(gpu: u32, mig: u32) -> String {
    format!("MIG-redacted-{gpu}-{mig}")
}

impl GpuSection {
    /// The GPUs' UUIDs, serials and MIG UUIDs, with their placeholders.
    pub fn secrets(&self) -> Vec<(String, String)> {
        let mut secrets = Vec::new();
        for gpu in &self.devices {
            if let Some(uuid) = &gpu.uuid {
                secrets.push((uuid.clone(), uuid_placeholder(gpu.index)));
            }
            if let Some(serial) = &gpu.serial {
                secrets.push((serial.clone(), serial_placeholder(gpu.index)));
            }
            for mig in &gpu.mig_devices {
                if let Some(uuid) = &mig.uuid {
                    secrets.push((uuid.clone(), mig_placeholder(gpu.index, mig.index)));
                }
            }
        }
        secrets
    }

    /// Replaces every UUID, serial and MIG UUID with its placeholder, as data.
    pub fn redact_identities(&mut self) {
        for gpu in &mut self.devices {
            let index = gpu.index;
            gpu.uuid
                .iter_mut()
                .for_each(|u| *u = uuid_placeholder(index));
            gpu.serial
                .iter_mut()
                .for_each(|s| *s = serial_placeholder(index));
            for mig in &mut gpu.mig_devices {
                let placeholder = mig_placeholder(index, mig.index);
                mig.uuid.iter_mut().for_each(|u| *u = placeholder.clone());
            }
        }
    }

    /// A section that explains why there is no GPU data.
    pub fn without_gpus(message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::default()
        }
    }

    /// Reads a recorded section (the test seam); a bad file becomes the section's message.
    pub fn from_file(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| {
                Self::without_gpus(format!("recorded GPU data {}: {e}", path.display()))
            })
    }
}

/// What NVML's GPU_IS_LOST means, in a user's words.
const LOST: &str = "the GPU has fallen off the bus";

/// What a failed NVML query means, in a user's words.
fn reason(error: NvmlError) -> String {
    match error {
        NvmlError::NotSupported => "not supported by this device".to_string(),
        NvmlError::NoPermission => "no permission".to_string(),
        NvmlError::GpuLost => LOST.to_string(),
        other => other.to_string(),
    }
}

fn ask<T>(result: Result<T, NvmlError>) -> Result<T, String> {
    result.map_err(reason)
}

pub fn probe_nvml() -> GpuSection {
    const NO_DRIVER: &str = "no NVIDIA driver: libnvidia-ml.so.1 not found";
    if !super::loader::may_find("libnvidia-ml.so.1") {
        return GpuSection::without_gpus(NO_DRIVER);
    }
    let nvml = match Nvml::init() {
        Ok(nvml) => nvml,
        Err(NvmlError::LibloadingError(_)) => {
            return GpuSection::without_gpus(NO_DRIVER);
        }
        Err(NvmlError::DriverNotLoaded) => {
            return GpuSection::without_gpus(
                "NVIDIA driver installed but not loaded (NVML: driver not loaded)",
            );
        }
        Err(NvmlError::LibRmVersionMismatch) => {
            return GpuSection {
                nvml_error: Some("driver/library version mismatch".to_string()),
                ..GpuSection::without_gpus(
                    "NVML cannot start: the NVIDIA kernel module and the user-space driver are different versions",
                )
            };
        }
        Err(e) => return GpuSection::without_gpus(format!("NVML failed to initialise: {e}")),
    };
    let mut unavailable = Unavailable::new();
    let cuda =
        ask(nvml.sys_cuda_driver_version()).map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10));
    let mut section = GpuSection {
        nvml_loaded: true,
        message: None,
        pci_gpus: None,
        xids: None,
        topology: Vec::new(),
        driver_version: keep(
            ask(nvml.sys_driver_version()),
            "driver_version",
            &mut unavailable,
        ),
        cuda_driver_version: keep(cuda, "cuda_driver_version", &mut unavailable),
        nvml_version: keep(
            ask(nvml.sys_nvml_version()),
            "nvml_version",
            &mut unavailable,
        ),
        nvml_error: None,
        devices: Vec::new(),
        unavailable: Unavailable::new(),
    };
    match nvml.device_count() {
        Ok(0) => section.message = Some("NVIDIA driver loaded, but it sees no GPU".to_string()),
        Ok(count) => {
            for index in 0..count {
                section.devices.push(match nvml.device_by_index(index) {
                    Ok(device) => probe_device(&nvml, index, &device),
                    Err(e) => {
                        let mut report = GpuReport {
                            index,
                            lost: matches!(e, NvmlError::GpuLost),
                            ..GpuReport::default()
                        };
                        report.unavailable.insert("device".into(), reason(e));
                        report
                    }
                });
            }
        }
        Err(e) => {
            unavailable.insert("devices".into(), reason(e));
        }
    }
    section.topology = topology(&nvml, &section.devices);
    section.unavailable = unavailable;
    section
}

fn probe_device(nvml: &Nvml, index: u32, device: &Device) -> GpuReport {
    let mut u = Unavailable::new();
    let memory = ask(device.memory_info());
    let mem = |pick: fn(&nvml_wrapper::struct_wrappers::device::MemoryInfo) -> u64| {
        memory.as_ref().map(|m| pick(m) / MIB).map_err(Clone::clone)
    };
    let watts = |r: Result<u32, NvmlError>| ask(r).map(|mw| f64::from(mw) / 1000.0);
    let compute = ask(device.cuda_compute_capability());
    let mig = ask(device.mig_mode());
    let ecc = ask(device.is_ecc_enabled());
    let architecture = compute
        .as_ref()
        .ok()
        .and_then(|cc| architecture_from_compute_capability(cc.major, cc.minor))
        .map(str::to_string)
        .ok_or(())
        .or_else(|()| ask(device.architecture()).map(|a| a.to_string()));
    let mig_enabled = mig.as_ref().map(|m| m.current == 1).map_err(Clone::clone);

    let mut report = GpuReport {
        index,
        name: keep(ask(device.name()), "name", &mut u),
        brand: keep(ask(device.brand()).map(brand_name), "brand", &mut u),
        architecture: keep(architecture, "architecture", &mut u),
        compute_capability: keep(
            compute.map(|cc| format!("{}.{}", cc.major, cc.minor)),
            "compute_capability",
            &mut u,
        ),
        memory_total_mib: keep(mem(|m| m.total), "memory_total_mib", &mut u),
        memory_used_mib: keep(mem(|m| m.used), "memory_used_mib", &mut u),
        memory_free_mib: keep(mem(|m| m.free), "memory_free_mib", &mut u),
        pcie_generation_current: keep(
            ask(device.current_pcie_link_gen()),
            "pcie_generation_current",
            &mut u,
        ),
        pcie_generation_max: keep(
            ask(device.max_pcie_link_gen()),
            "pcie_generation_max",
            &mut u,
        ),
        pcie_width_current: keep(
            ask(device.current_pcie_link_width()),
            "pcie_width_current",
            &mut u,
        ),
        pcie_width_max: keep(ask(device.max_pcie_link_width()), "pcie_width_max", &mut u),
        power_draw_w: keep(watts(device.power_usage()), "power_draw_w", &mut u),
        power_limit_w: keep(
            watts(device.power_management_limit()),
            "power_limit_w",
            &mut u,
        ),
        power_limit_default_w: keep(
            watts(device.power_management_limit_default()),
            "power_limit_default_w",
            &mut u,
        ),
        power_limit_enforced_w: keep(
            watts(device.enforced_power_limit()),
            "power_limit_enforced_w",
            &mut u,
        ),
        sm_clock_mhz: keep(ask(device.clock_info(Clock::SM)), "sm_clock_mhz", &mut u),
        sm_clock_max_mhz: keep(
            ask(device.max_clock_info(Clock::SM)),
            "sm_clock_max_mhz",
            &mut u,
        ),
        sm_clock_default_app_mhz: keep(
            ask(device.default_applications_clock(Clock::Graphics)),
            "sm_clock_default_app_mhz",
            &mut u,
        ),
        memory_clock_mhz: keep(
            ask(device.clock_info(Clock::Memory)),
            "memory_clock_mhz",
            &mut u,
        ),
        memory_clock_max_mhz: keep(
            ask(device.max_clock_info(Clock::Memory)),
            "memory_clock_max_mhz",
            &mut u,
        ),
        temperature_c: keep(
            ask(device.temperature(TemperatureSensor::Gpu)),
            "temperature_c",
            &mut u,
        ),
        temperature_slowdown_c: keep(
            ask(device.temperature_threshold(TemperatureThreshold::Slowdown)),
            "temperature_slowdown_c",
            &mut u,
        ),
        persistence_mode: keep(
            ask(device.is_in_persistent_mode()),
            "persistence_mode",
            &mut u,
        ),
        mig_enabled: keep(mig_enabled.clone(), "mig_enabled", &mut u),
        mig_pending: keep(mig.map(|m| m.pending == 1), "mig_pending", &mut u),
        mig_devices: Vec::new(),
        ecc_enabled: keep(
            ecc.as_ref()
                .map(|e| e.currently_enabled)
                .map_err(Clone::clone),
            "ecc_enabled",
            &mut u,
        ),
        ecc_pending: keep(ecc.map(|e| e.pending_enabled), "ecc_pending", &mut u),
        pci_bus_id: keep(
            ask(device.pci_info()).map(|p| p.bus_id),
            "pci_bus_id",
            &mut u,
        ),
        uuid: keep(ask(device.uuid()), "uuid", &mut u),
        serial: keep(ask(device.serial()), "serial", &mut u),
        cuda_cores: keep(ask(device.num_cores()), "cuda_cores", &mut u),
        sm_count: None,
        memory_bus_width_bits: keep(
            ask(device.memory_bus_width()),
            "memory_bus_width_bits",
            &mut u,
        ),
        fp32_peak_tflops: None,
        fp32_peak_basis: None,
        memory_bandwidth_peak_gbs: None,
        class: None,
        utilization_gpu_percent: keep(
            ask(device.utilization_rates()).map(|u| u.gpu),
            "utilization_gpu_percent",
            &mut u,
        ),
        clocks_event_reasons: keep(
            ask(device.current_throttle_reasons()).map(reason_names),
            "clocks_event_reasons",
            &mut u,
        ),
        ecc_uncorrected_volatile: keep(
            ask(device.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile)),
            "ecc_uncorrected_volatile",
            &mut u,
        ),
        remapped_rows: keep(remapped_rows(device), "remapped_rows", &mut u),
        retired_pages_pending: keep(
            ask(device.are_pages_pending_retired()),
            "retired_pages_pending",
            &mut u,
        ),
        recovery_action: keep(recovery_action(device), "recovery_action", &mut u),
        processes: keep(processes(device), "processes", &mut u),
        cpu_affinity: keep(
            ask(device.cpu_affinity(16)).map(|masks| affinity_list(&masks)),
            "cpu_affinity",
            &mut u,
        ),
        // From sysfs, once the GPUs on the PCI bus are known (`fill_numa`).
        numa_node: None,
        numa_cpus: None,
        lost: false,
        nvlinks: nvlinks(device),
        unavailable: Unavailable::new(),
    };
    if mig_enabled == Ok(true) {
        match mig_devices(nvml, device) {
            Ok(devices) => report.mig_devices = devices,
            Err(e) => {
                u.insert("mig_devices".into(), e);
            }
        }
    }
    // A GPU that falls off the bus answers every query with GPU_IS_LOST.
    report.lost = u.values().any(|why| why == LOST);
    report.unavailable = u;
    report
}

/// The GPU's NVLink links, or `None` where it has none (the first link is "not supported").
fn nvlinks(device: &Device) -> Option<Vec<NvLinkState>> {
    let mut links = Vec::new();
    for link in 0..nvml_wrapper_sys::bindings::NVML_NVLINK_MAX_LINKS {
        let wrapper = device.link_wrapper_for(link);
        match wrapper.is_active() {
            Ok(active) => links.push(NvLinkState {
                link,
                active,
                version: wrapper.version().ok(),
                remote_pci_bus_id: active
                    .then(|| wrapper.remote_pci_info().ok().map(|pci| pci.bus_id))
                    .flatten(),
            }),
            // Links are numbered from 0 up; the first one missing ends them.
            Err(_) => break,
        }
    }
    (!links.is_empty()).then_some(links)
}

/// How every pair of GPUs reaches the other: direct NVLink links (counted from each GPU's
/// links' far ends), else NVML's common ancestor in the PCIe tree.
fn topology(nvml: &Nvml, devices: &[GpuReport]) -> Vec<GpuPath> {
    let mut paths = Vec::new();
    for (i, a) in devices.iter().enumerate() {
        for b in &devices[i + 1..] {
            let direct = direct_nvlinks(a, b);
            let path = if direct > 0 || nvswitched(a, devices) && nvswitched(b, devices) {
                Ok("NVLink".to_string())
            } else {
                match (nvml.device_by_index(a.index), nvml.device_by_index(b.index)) {
                    (Ok(da), Ok(db)) => ask(da.topology_common_ancestor(db)).map(path_name),
                    (Err(e), _) | (_, Err(e)) => Err(reason(e)),
                }
            };
            if let Ok(path) = path {
                paths.push(GpuPath {
                    gpus: (a.index, b.index),
                    path,
                    nvlinks: direct,
                });
            }
        }
    }
    paths
}

/// Active links of `a` whose far end is `b`.
pub fn direct_nvlinks(a: &GpuReport, b: &GpuReport) -> u32 {
    let Some(b_address) = &b.pci_bus_id else {
        return 0;
    };
    a.nvlinks
        .iter()
        .flatten()
        .filter(|l| l.active)
        .filter(|l| {
            l.remote_pci_bus_id
                .as_deref()
                .is_some_and(|remote| same_pci_device(remote, b_address))
        })
        .count() as u32
}

/// A GPU with an active link to an NVSwitch (a far end that is none of `devices`): on such
/// machines (HGX), every GPU on the switches reaches every other over NVLink.
pub fn nvswitched(gpu: &GpuReport, devices: &[GpuReport]) -> bool {
    gpu.nvlinks.iter().flatten().any(|l| {
        l.active
            && l.remote_pci_bus_id.as_deref().is_some_and(|remote| {
                !devices.iter().any(|d| {
                    d.pci_bus_id
                        .as_deref()
                        .is_some_and(|address| same_pci_device(remote, address))
                })
            })
    })
}

fn path_name(level: nvml_wrapper::enum_wrappers::device::TopologyLevel) -> String {
    use nvml_wrapper::enum_wrappers::device::TopologyLevel;
    match level {
        TopologyLevel::Internal => "one board",
        TopologyLevel::Single => "one PCIe switch",
        TopologyLevel::Multiple => "PCIe switches under one host bridge",
        TopologyLevel::HostBridge => "one host bridge",
        TopologyLevel::Node => "one NUMA node",
        TopologyLevel::System => "across NUMA nodes (CPU sockets)",
    }
    .to_string()
}

/// NVML's clocks event reasons, by name.
fn reason_names(reasons: ThrottleReasons) -> Vec<String> {
    [
        (ThrottleReasons::GPU_IDLE, "gpu_idle"),
        (
            ThrottleReasons::APPLICATIONS_CLOCKS_SETTING,
            "applications_clocks_setting",
        ),
        (ThrottleReasons::SW_POWER_CAP, "sw_power_cap"),
        (ThrottleReasons::HW_SLOWDOWN, "hw_slowdown"),
        (ThrottleReasons::SYNC_BOOST, "sync_boost"),
        (ThrottleReasons::SW_THERMAL_SLOWDOWN, "sw_thermal_slowdown"),
        (ThrottleReasons::HW_THERMAL_SLOWDOWN, "hw_thermal_slowdown"),
        (
            ThrottleReasons::HW_POWER_BRAKE_SLOWDOWN,
            "hw_power_brake_slowdown",
        ),
        (
            ThrottleReasons::DISPLAY_CLOCK_SETTING,
            "display_clock_setting",
        ),
    ]
    .into_iter()
    .filter(|(flag, _)| reasons.contains(*flag))
    .map(|(_, name)| name.to_string())
    .collect()
}

/// NVML's GPU recovery action (field 230, NVML_FI_DEV_GET_GPU_RECOVERY_ACTION), in words.
fn recovery_action(device: &Device) -> Result<String, String> {
    const GET_GPU_RECOVERY_ACTION: u32 = 230;
    let samples = ask(device.field_values_for(&[FieldId(GET_GPU_RECOVERY_ACTION)]))?;
    let sample = samples
        .into_iter()
        .next()
        .ok_or("NVML returned no recovery action")?
        .map_err(reason)?;
    let value = match sample.value.map_err(reason)? {
        SampleValue::U32(v) => u64::from(v),
        SampleValue::U64(v) => v,
        SampleValue::I64(v) => u64::try_from(v).map_err(|_| format!("recovery action {v}"))?,
        other => return Err(format!("recovery action of an unexpected type: {other:?}")),
    };
    recovery_action_name(value)
        .map(str::to_string)
        .ok_or_else(|| format!("unknown recovery action {value}"))
}

/// nvmlDeviceGpuRecoveryAction_t in words.
pub fn recovery_action_name(value: u64) -> Option<&'static str> {
    Some(match value {
        0 => "none",
        1 => "gpu_reset",
        2 => "node_reboot",
        3 => "drain_p2p",
        4 => "drain_and_reset",
        _ => return None,
    })
}

/// NVML's CPU affinity masks (64 CPUs per word) as a CPU list.
fn affinity_list(masks: &[std::os::raw::c_ulong]) -> String {
    let cpus: Vec<usize> = masks
        .iter()
        .enumerate()
        .flat_map(|(word, &bits)| {
            (0..64)
                .filter(move |bit| (bits >> bit) & 1 == 1)
                .map(move |bit| word * 64 + bit)
        })
        .collect();
    super::cpu::cpu_list_text(&cpus)
}

/// The other processes on the GPU, with their memory; names from /proc (pids of this machine's
/// process namespace).
fn processes(device: &Device) -> Result<Vec<GpuProcess>, String> {
    use nvml_wrapper::enums::device::UsedGpuMemory;
    let mut all = ask(device.running_compute_processes())?;
    all.extend(device.running_graphics_processes().unwrap_or_default());
    let me = std::process::id();
    let mut seen = std::collections::BTreeSet::new();
    Ok(all
        .into_iter()
        .filter(|p| p.pid != me && seen.insert(p.pid))
        .map(|p| GpuProcess {
            pid: Some(p.pid),
            name: std::fs::read_to_string(format!("/proc/{}/comm", p.pid))
                .ok()
                .map(|n| n.trim().to_string()),
            memory_used_mib: match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => Some(bytes / MIB),
                UsedGpuMemory::Unavailable => None,
            },
        })
        .collect())
}

/// Row remapping, through NVML's C API (nvml-wrapper has no call for it).
fn remapped_rows(device: &Device) -> Result<RemappedRows, String> {
    use nvml_wrapper_sys::bindings::{
        NvmlLib, nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED, nvmlReturn_enum_NVML_SUCCESS,
    };
    // SAFETY: loading libnvidia-ml.so.1, which NVML already loaded and initialised in this process.
    let lib = unsafe { NvmlLib::new("libnvidia-ml.so.1") }.map_err(|e| e.to_string())?;
    let (mut correctable, mut uncorrectable, mut pending, mut failed) = (0, 0, 0, 0);
    // SAFETY: a valid device handle and pointers to locals.
    let status = unsafe {
        lib.nvmlDeviceGetRemappedRows(
            device.handle(),
            &mut correctable,
            &mut uncorrectable,
            &mut pending,
            &mut failed,
        )
    };
    match status {
        s if s == nvmlReturn_enum_NVML_SUCCESS => Ok(RemappedRows {
            correctable,
            uncorrectable,
            pending: pending != 0,
            failed: failed != 0,
        }),
        s if s == nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED => {
            Err("not supported by this device".to_string())
        }
        s => Err(format!("NVML error {s}")),
    }
}

/// The MIG devices of a GPU in MIG mode. nvml-wrapper has no call for them, so this asks NVML's
/// C API directly (the library is already loaded; loading it again only takes a reference).
fn mig_devices(nvml: &Nvml, device: &Device) -> Result<Vec<MigDevice>, String> {
    use nvml_wrapper_sys::bindings::{NvmlLib, nvmlDevice_t, nvmlReturn_enum_NVML_SUCCESS};
    // SAFETY: loading libnvidia-ml.so.1, which NVML already loaded and initialised in this process.
    let lib = unsafe { NvmlLib::new("libnvidia-ml.so.1") }.map_err(|e| e.to_string())?;
    // SAFETY: the handle is valid for as long as `nvml` is, which outlives this function.
    let parent = unsafe { device.handle() };
    let mut count = 0;
    // SAFETY: a valid device handle and a pointer to a local.
    if unsafe { lib.nvmlDeviceGetMaxMigDeviceCount(parent, &mut count) }
        != nvmlReturn_enum_NVML_SUCCESS
    {
        return Err("NVML could not count MIG devices".to_string());
    }
    let mut devices = Vec::new();
    for index in 0..count {
        let mut handle: nvmlDevice_t = std::ptr::null_mut();
        // SAFETY: as above; a slot without a MIG device answers NOT_FOUND and is skipped.
        let status = unsafe { lib.nvmlDeviceGetMigDeviceHandleByIndex(parent, index, &mut handle) };
        if status != nvmlReturn_enum_NVML_SUCCESS || handle.is_null() {
            continue;
        }
        // SAFETY: a MIG device handle NVML just gave us, used only while `nvml` lives.
        let mig = unsafe { Device::new(handle, nvml) };
        devices.push(MigDevice {
            index,
            name: mig.name().ok(),
            memory_total_mib: mig.memory_info().ok().map(|m| m.total / MIB),
            uuid: mig.uuid().ok(),
        });
    }
    Ok(devices)
}

/// Architecture from compute capability: it knows GPUs newer than NVML's own enum.
pub fn architecture_from_compute_capability(major: i32, minor: i32) -> Option<&'static str> {
    Some(match (major, minor) {
        (3, _) => "Kepler",
        (5, _) => "Maxwell",
        (6, _) => "Pascal",
        (7, 0) | (7, 2) => "Volta",
        (7, 5) => "Turing",
        (8, 9) => "Ada Lovelace",
        (8, _) => "Ampere",
        (9, _) => "Hopper",
        (10, _) | (11, _) | (12, _) => "Blackwell",
        _ => return None,
    })
}

fn brand_name(brand: Brand) -> String {
    match brand {
        Brand::Tesla => "Tesla (data centre)".to_string(),
        Brand::GeForceRTX => "GeForce RTX".to_string(),
        Brand::NvidiaRTX => "NVIDIA RTX (workstation)".to_string(),
        Brand::QuadroRTX => "Quadro RTX".to_string(),
        Brand::TitanRTX => "Titan RTX".to_string(),
        Brand::Nvidia => "NVIDIA".to_string(),
        other => format!("{other:?}"),
    }
}

/// How many CUDA devices a framework would see: the GPUs NVML reports, limited by
/// `CUDA_VISIBLE_DEVICES` (`visible`) as CUDA reads it.
pub fn visible_count(gpus: &GpuSection, visible: Option<&str>) -> usize {
    let Some(list) = visible else {
        return gpus.devices.len();
    };
    // CUDA takes the entries up to the first one that names no device (so "-1" or "" hide every
    // GPU), and a device named twice ends the list too.
    let mut seen = Vec::new();
    for entry in list.split(',').map(str::trim) {
        let found = if entry.starts_with("GPU-") || entry.starts_with("MIG-") {
            gpus.devices.iter().position(|gpu| {
                gpu.uuid.as_deref().is_some_and(|u| u.starts_with(entry))
                    || gpu
                        .mig_devices
                        .iter()
                        .any(|m| m.uuid.as_deref().is_some_and(|u| u.starts_with(entry)))
            })
        } else {
            entry
                .parse::<usize>()
                .ok()
                .filter(|&i| i < gpus.devices.len())
        };
        match found {
            Some(index) if !seen.contains(&index) => seen.push(index),
            _ => break,
        }
    }
    seen.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GPU at `address` whose links lead to `remotes` (`None`: a link that is down).
    fn gpu(index: u32, address: &str, remotes: &[Option<&str>]) -> GpuReport {
        GpuReport {
            index,
            pci_bus_id: Some(address.to_string()),
            nvlinks: Some(
                remotes
                    .iter()
                    .enumerate()
                    .map(|(link, remote)| NvLinkState {
                        link: link as u32,
                        active: remote.is_some(),
                        version: Some(4),
                        remote_pci_bus_id: remote.map(str::to_string),
                    })
                    .collect(),
            ),
            ..GpuReport::default()
        }
    }

    #[test]
    fn nvlinks_between_two_gpus_are_counted_from_their_far_ends() {
        // Two GPUs bridged by two links (one address written as sysfs writes it), a third
        // alone; the bridged pair is not on NVSwitches.
        let a = gpu(
            0,
            "00000000:07:00.0",
            &[Some("0000:0f:00.0"), Some("00000000:0F:00.0"), None],
        );
        let b = gpu(
            1,
            "00000000:0F:00.0",
            &[Some("00000000:07:00.0"), Some("00000000:07:00.0")],
        );
        let c = gpu(2, "00000000:19:00.0", &[None, None]);
        let devices = [a.clone(), b.clone(), c.clone()];
        assert_eq!((direct_nvlinks(&a, &b), direct_nvlinks(&b, &a)), (2, 2));
        assert_eq!(direct_nvlinks(&a, &c), 0);
        assert!(!nvswitched(&a, &devices) && !nvswitched(&c, &devices));
        // On an HGX board every active link leads to an NVSwitch, none to another GPU.
        let s = gpu(3, "00000000:2A:00.0", &[Some("00000000:C1:00.0"), None]);
        assert!(nvswitched(&s, &[s.clone(), a]));
    }

    #[test]
    fn nvml_topology_levels_read_as_words() {
        use nvml_wrapper::enum_wrappers::device::TopologyLevel;
        assert_eq!(path_name(TopologyLevel::Single), "one PCIe switch");
        assert_eq!(
            path_name(TopologyLevel::System),
            "across NUMA nodes (CPU sockets)"
        );
    }
}
