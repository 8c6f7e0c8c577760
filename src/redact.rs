//! Replaces identifying values with stable placeholders, so reports can be pasted publicly.
//!
//! Placeholders depend only on position (GPU index), so two redacted reports from the same kind of
//! machine still compare field by field.

use crate::info::InfoReport;

pub const HOSTNAME: &str = "host-redacted";

pub fn info(report: &mut InfoReport) {
    report.redacted = true;
    if report.os.hostname.is_some() {
        report.os.hostname = Some(HOSTNAME.to_string());
    }
    let known: Vec<(String, String)> = report
        .gpu
        .devices
        .iter()
        .flat_map(|gpu| {
            let mut pairs: Vec<(String, String)> = gpu
                .uuid
                .iter()
                .map(|u| (u.clone(), gpu_uuid(gpu.index)))
                .collect();
            pairs.extend(
                gpu.mig_devices
                    .iter()
                    .filter_map(|mig| Some((mig.uuid.clone()?, mig_uuid(gpu.index, mig.index)))),
            );
            pairs
        })
        .collect();
    for gpu in &mut report.gpu.devices {
        let index = gpu.index;
        if gpu.uuid.is_some() {
            gpu.uuid = Some(gpu_uuid(index));
        }
        if gpu.serial.is_some() {
            gpu.serial = Some(format!("serial-redacted-{index}"));
        }
        for mig in &mut gpu.mig_devices {
            if mig.uuid.is_some() {
                mig.uuid = Some(mig_uuid(index, mig.index));
            }
        }
    }
    if let Some(visible) = &report.cuda_environment.cuda_visible_devices {
        report.cuda_environment.cuda_visible_devices = Some(visible_devices(visible, &known));
    }
}

fn gpu_uuid(index: u32) -> String {
    format!("GPU-redacted-{index}")
}

fn mig_uuid(gpu: u32, mig: u32) -> String {
    format!("MIG-redacted-{gpu}-{mig}")
}

/// `CUDA_VISIBLE_DEVICES` may list GPUs by UUID: replace those (indices stay as they are).
fn visible_devices(value: &str, known: &[(String, String)]) -> String {
    value
        .split(',')
        .map(|item| {
            let item = item.trim();
            if let Some((_, placeholder)) = known.iter().find(|(uuid, _)| uuid == item) {
                placeholder.clone()
            } else if item.starts_with("GPU-") || item.starts_with("MIG-") {
                format!("{}redacted", &item[..4])
            } else {
                item.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_in_cuda_visible_devices_are_replaced_and_indices_kept() {
        let known = vec![("GPU-1234".to_string(), "GPU-redacted-0".to_string())];
        assert_eq!(
            visible_devices("GPU-1234,1,MIG-abcd", &known),
            "GPU-redacted-0,1,MIG-redacted"
        );
    }
}
