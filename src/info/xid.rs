//! The NVIDIA driver's Xid messages in the kernel log since boot: what DCGM and cluster health
//! checks look at first. An Xid is the driver reporting a GPU error by number ("NVRM: Xid
//! (PCI:0000:3b:00): 79, pid=…, GPU has fallen off the bus."); some numbers mean the GPU must be
//! reset or the node drained.

use std::io::Read;

use serde::{Deserialize, Serialize};

/// Xids after which NVIDIA's catalog says to reset the GPU or drain the node: 48 (double-bit ECC
/// error), 63 and 64 (row remapping), 74 (NVLink error), 79 (fallen off the bus), 92 (high
/// single-bit ECC rate), 94 and 95 (contained and uncontained ECC errors).
pub const DRAIN: &[u32] = &[48, 63, 64, 74, 79, 92, 94, 95];

/// The most of the kernel log read (its ring buffer is usually 128 KiB to a few MiB).
const MAX_LOG: u64 = 16 << 20;

/// How often one Xid number appeared for one GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct XidCount {
    /// The GPU's PCI address as the driver writes it ("0000:3b:00").
    pub pci: String,
    pub xid: u32,
    pub count: u32,
}

/// Every Xid in the kernel log under `root`, counted per GPU and number; why not, where the log
/// cannot be read.
pub fn from_kernel_log(root: &super::Root) -> Result<Vec<XidCount>, String> {
    let path = root.path("/dev/kmsg");
    let text = read_log(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            "the kernel log (/dev/kmsg) is not readable here: run as root or with CAP_SYSLOG"
                .to_string()
        } else {
            format!("the kernel log (/dev/kmsg) cannot be read: {e}")
        }
    })?;
    Ok(count(&text))
}

/// /dev/kmsg gives one record per read and "would block" at the end (a regular file, as in tests,
/// ends with 0 bytes): read until then, at most [`MAX_LOG`].
fn read_log(path: &std::path::Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let mut log = Vec::new();
    let mut record = vec![0u8; 8192];
    let mut file = file.take(MAX_LOG);
    loop {
        match file.read(&mut record) {
            Ok(0) => break,
            Ok(n) => log.extend_from_slice(&record[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // A record overwritten while reading: the next read goes on from the oldest left.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&log).into_owned())
}

/// The Xids in `log`, counted per GPU and number, in order of first appearance.
pub fn count(log: &str) -> Vec<XidCount> {
    let mut counts: Vec<XidCount> = Vec::new();
    for (pci, xid) in log.lines().filter_map(parse) {
        if let Some(c) = counts.iter_mut().find(|c| c.pci == pci && c.xid == xid) {
            c.count = c.count.saturating_add(1);
        } else if counts.len() < 1024 {
            counts.push(XidCount { pci, xid, count: 1 });
        }
    }
    counts
}

/// "… NVRM: Xid (PCI:0000:3b:00): 79, pid=…" → ("0000:3b:00", 79).
fn parse(line: &str) -> Option<(String, u32)> {
    let rest = &line[line.find("NVRM: Xid (PCI:")? + "NVRM: Xid (PCI:".len()..];
    let (pci, rest) = rest.split_once("): ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let pci = pci.trim().to_lowercase();
    let valid = !pci.is_empty()
        && pci.len() <= 16
        && pci
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    if !valid || digits.is_empty() || digits.len() > 6 {
        return None;
    }
    Some((pci, digits.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xids_are_counted_per_gpu_and_number_from_kmsg_and_dmesg_lines() {
        let log = "6,1001,5000,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python3, GPU has fallen off the bus.\n\
                   4,1002,6000,-;NVRM: Xid (PCI:0000:3B:00): 79, pid=1234, GPU has fallen off the bus.\n\
                   [  12.5] NVRM: Xid (PCI:0000:86:00): 13, Graphics Exception\n\
                   6,1003,7000,-;nvidia: loading out-of-tree module\n\
                   NVRM: Xid (PCI:0000:86:00): , nothing\n\
                   NVRM: Xid (PCI:\u{1b}[31m): 5, escape\n";
        assert_eq!(
            count(log),
            [
                XidCount {
                    pci: "0000:3b:00".into(),
                    xid: 79,
                    count: 2
                },
                XidCount {
                    pci: "0000:86:00".into(),
                    xid: 13,
                    count: 1
                },
            ]
        );
        // The driver's address names NVML's bus id whatever the domain's width and the case.
        let same = crate::info::gpu::same_pci_device;
        assert!(same("0000:3b:00", "00000000:3B:00.0"));
        assert!(!same("0000:3b:00", "00000001:3B:00.0"));
        assert!(!same("0000:3b:00", "00000000:3C:00.0"));
        assert!(same("00000000:07:00.0", "0000:07:00.0"));
        assert!(!same("00000000:07:00.0", "0000:07:00.1"));
    }
}
