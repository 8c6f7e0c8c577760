//! Maps CPU identification (x86 vendor/family/model/stepping as printed by
//! /proc/cpuinfo, or ARM implementer/part codes) to a human-readable
//! microarchitecture or generation name for `hwbench info`. Tables are kept
//! deliberately conservative: an unknown or ambiguous ID yields `None` (or a
//! combined name such as "Kaby Lake / Coffee Lake") rather than a guess.

/// x86: vendor is the /proc/cpuinfo `vendor_id` ("GenuineIntel", "AuthenticAMD", "HygonGenuine", ...),
/// family and model are the *display* family/model as /proc/cpuinfo prints them in decimal
/// (`cpu family`, `model`), i.e. already combined with the extended family/model bits.
pub fn x86(vendor: &str, family: u32, model: u32) -> Option<&'static str> {
    match (vendor, family) {
        ("GenuineIntel", 6) => intel_family6(model),
        ("AuthenticAMD", _) => amd(family, model),
        // Hygon Dhyana is a licensed first-generation Zen derivative.
        ("HygonGenuine", 0x18) => Some("Dhyana (Zen)"),
        _ => None,
    }
}

/// Like [`x86`], but uses the stepping to split Intel model IDs that were reused
/// across generations. Anything not resolved here defers to [`x86`].
pub fn x86_with_stepping(
    vendor: &str,
    family: u32,
    model: u32,
    stepping: u32,
) -> Option<&'static str> {
    if vendor == "GenuineIntel" && family == 6 {
        match (model, stepping) {
            (0x55, 0..=4) => return Some("Skylake-SP"),
            (0x55, 5..=7) => return Some("Cascade Lake"),
            (0x55, 10..=11) => return Some("Cooper Lake"),
            // Desktop/H-series 0x9E: stepping 9 is Kaby Lake, 10-13 Coffee Lake (incl. refresh).
            (0x9E, 9) => return Some("Kaby Lake"),
            (0x9E, 10..=13) => return Some("Coffee Lake"),
            _ => {}
        }
    }
    x86(vendor, family, model)
}

fn intel_family6(model: u32) -> Option<&'static str> {
    Some(match model {
        // Big cores, client and server.
        0x2A => "Sandy Bridge",
        0x2D => "Sandy Bridge-E",
        0x3A => "Ivy Bridge",
        0x3E => "Ivy Bridge-E",
        0x3C | 0x45 | 0x46 => "Haswell",
        0x3F => "Haswell-E",
        0x3D | 0x47 => "Broadwell",
        0x4F => "Broadwell-E",
        0x56 => "Broadwell-DE",
        0x4E | 0x5E => "Skylake",
        // Same model ID for three server generations; see x86_with_stepping.
        0x55 => "Skylake-SP / Cascade Lake / Cooper Lake",
        // 0x8E/0x9E were reused by several 14nm client refreshes, split by stepping.
        0x8E => "Kaby Lake / Amber Lake / Whiskey Lake / Comet Lake",
        0x9E => "Kaby Lake / Coffee Lake",
        0xA5 | 0xA6 => "Comet Lake",
        0x66 => "Cannon Lake",
        0x7D | 0x7E => "Ice Lake",
        0x6A | 0x6C => "Ice Lake-SP",
        0x8C | 0x8D => "Tiger Lake",
        0xA7 => "Rocket Lake",
        0x97 | 0x9A => "Alder Lake",
        0xBE => "Alder Lake-N",
        0xB7 | 0xBA | 0xBF => "Raptor Lake",
        0xAA | 0xAC => "Meteor Lake",
        0xB5 | 0xC5 | 0xC6 => "Arrow Lake",
        0xBD => "Lunar Lake",
        0xCC => "Panther Lake",
        0x8F => "Sapphire Rapids",
        0xCF => "Emerald Rapids",
        0xAD | 0xAE => "Granite Rapids",
        // E-core-only Xeons.
        0xAF => "Sierra Forest",
        0xB6 => "Grand Ridge",
        0xDD => "Clearwater Forest",
        // Xeon Phi.
        0x57 => "Knights Landing",
        0x85 => "Knights Mill",
        // Atom-class.
        0x37 | 0x4A | 0x4D | 0x5A | 0x5D => "Silvermont",
        0x4C => "Airmont",
        0x5C | 0x5F => "Goldmont",
        0x7A => "Goldmont Plus",
        0x86 | 0x96 | 0x9C => "Tremont",
        _ => return None,
    })
}

fn amd(family: u32, model: u32) -> Option<&'static str> {
    Some(match (family, model) {
        // Family 15h/16h: pre-Zen, ranges as in the AMD BKDGs.
        (0x15, 0x01) => "Bulldozer",
        (0x15, 0x02 | 0x10..=0x1F) => "Piledriver",
        (0x15, 0x30..=0x3F) => "Steamroller",
        (0x15, 0x60..=0x7F) => "Excavator",
        (0x16, 0x00..=0x0F) => "Jaguar",
        (0x16, 0x30..=0x3F) => "Puma",

        // Family 17h: Zen / Zen+ / Zen 2. Named models first, then the generic
        // ranges Linux uses for X86_FEATURE_ZEN1 / ZEN2.
        (0x17, 0x01) => "Zen (Naples / Summit Ridge)",
        (0x17, 0x08) => "Zen+ (Pinnacle Ridge)",
        (0x17, 0x11) => "Zen (Raven Ridge)",
        (0x17, 0x18) => "Zen+ (Picasso)",
        (0x17, 0x20) => "Zen (Dali)",
        (0x17, 0x31) => "Zen 2 (Rome)",
        (0x17, 0x60) => "Zen 2 (Renoir)",
        (0x17, 0x68) => "Zen 2 (Lucienne)",
        (0x17, 0x71) => "Zen 2 (Matisse)",
        (0x17, 0x90) => "Zen 2 (Van Gogh)",
        (0x17, 0xA0) => "Zen 2 (Mendocino)",
        (0x17, 0x00..=0x2F | 0x50..=0x5F) => "Zen / Zen+",
        (0x17, 0x30..=0x4F | 0x60..=0x7F | 0x90..=0x91 | 0xA0..=0xAF) => "Zen 2",

        // Family 19h: Zen 3 / Zen 3+ / Zen 4.
        (0x19, 0x01) => "Zen 3 (Milan)",
        (0x19, 0x08) => "Zen 3 (Chagall)",
        (0x19, 0x11) => "Zen 4 (Genoa)",
        (0x19, 0x18) => "Zen 4 (Storm Peak)",
        (0x19, 0x21) => "Zen 3 (Vermeer)",
        (0x19, 0x44) => "Zen 3+ (Rembrandt)",
        (0x19, 0x50) => "Zen 3 (Cezanne)",
        (0x19, 0x61) => "Zen 4 (Raphael)",
        (0x19, 0x74 | 0x78) => "Zen 4 (Phoenix)",
        (0x19, 0xA0) => "Zen 4c (Bergamo / Siena)",
        (0x19, 0x00..=0x0F | 0x20..=0x5F) => "Zen 3",
        (0x19, 0x10..=0x1F | 0x60..=0xAF) => "Zen 4",

        // Family 1Ah: Zen 5. Other 1Ah ranges are Zen 6 and left unnamed for now.
        (0x1A, 0x02) => "Zen 5 (Turin)",
        (0x1A, 0x11) => "Zen 5c (Turin Dense)",
        (0x1A, 0x24) => "Zen 5 (Strix Point)",
        (0x1A, 0x44) => "Zen 5 (Granite Ridge)",
        (0x1A, 0x00..=0x2F | 0x40..=0x4F | 0x60..=0x7F) => "Zen 5",

        _ => return None,
    })
}

/// ARM: implementer and part as in /proc/cpuinfo `CPU implementer` (e.g. 0x41) and `CPU part` (e.g. 0xd0c).
pub fn arm(implementer: u32, part: u32) -> Option<&'static str> {
    Some(match (implementer, part) {
        // Arm Ltd. Ampere Altra, Graviton2/3/4 and NVIDIA Grace report these Arm cores.
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd04) => "Cortex-A35",
        (0x41, 0xd05) => "Cortex-A55",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd09) => "Cortex-A73",
        (0x41, 0xd0a) => "Cortex-A75",
        (0x41, 0xd0b) => "Cortex-A76",
        (0x41, 0xd0c) => "Neoverse N1",
        (0x41, 0xd0d) => "Cortex-A77",
        (0x41, 0xd0e) => "Cortex-A76AE",
        (0x41, 0xd40) => "Neoverse V1",
        (0x41, 0xd41) => "Cortex-A78",
        (0x41, 0xd42) => "Cortex-A78AE",
        (0x41, 0xd44) => "Cortex-X1",
        (0x41, 0xd46) => "Cortex-A510",
        (0x41, 0xd47) => "Cortex-A710",
        (0x41, 0xd48) => "Cortex-X2",
        (0x41, 0xd49) => "Neoverse N2",
        (0x41, 0xd4a) => "Neoverse E1",
        (0x41, 0xd4b) => "Cortex-A78C",
        (0x41, 0xd4d) => "Cortex-A715",
        (0x41, 0xd4e) => "Cortex-X3",
        (0x41, 0xd4f) => "Neoverse V2",
        (0x41, 0xd80) => "Cortex-A520",
        (0x41, 0xd81) => "Cortex-A720",
        (0x41, 0xd82) => "Cortex-X4",
        (0x41, 0xd84) => "Neoverse V3",
        (0x41, 0xd85) => "Cortex-X925",
        (0x41, 0xd87) => "Cortex-A725",
        (0x41, 0xd8e) => "Neoverse N3",
        // Cavium / Marvell.
        (0x43, 0x0a1) => "ThunderX",
        (0x43, 0x0af) => "ThunderX2",
        // Fujitsu.
        (0x46, 0x001) => "A64FX",
        // HiSilicon (Kunpeng 920).
        (0x48, 0xd01) => "TaiShan v110",
        // NVIDIA custom cores (Tegra / Jetson); Grace uses Arm's Neoverse V2 above.
        (0x4e, 0x000) => "Denver",
        (0x4e, 0x003) => "Denver 2",
        (0x4e, 0x004) => "Carmel",
        // Apple: efficiency / performance core pairs per SoC (IDs as in Linux cputype.h).
        (0x61, 0x022) => "Apple M1 (Icestorm)",
        (0x61, 0x023) => "Apple M1 (Firestorm)",
        (0x61, 0x024) => "Apple M1 Pro (Icestorm)",
        (0x61, 0x025) => "Apple M1 Pro (Firestorm)",
        (0x61, 0x028) => "Apple M1 Max (Icestorm)",
        (0x61, 0x029) => "Apple M1 Max (Firestorm)",
        (0x61, 0x032) => "Apple M2 (Blizzard)",
        (0x61, 0x033) => "Apple M2 (Avalanche)",
        (0x61, 0x034) => "Apple M2 Pro (Blizzard)",
        (0x61, 0x035) => "Apple M2 Pro (Avalanche)",
        (0x61, 0x038) => "Apple M2 Max (Blizzard)",
        (0x61, 0x039) => "Apple M2 Max (Avalanche)",
        // Ampere custom cores (Altra/Altra Max are Neoverse N1 under 0x41).
        (0xc0, 0xac3) => "AmpereOne",
        (0xc0, 0xac4) => "AmpereOne (AC04)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intel() {
        assert_eq!(x86("GenuineIntel", 6, 143), Some("Sapphire Rapids"));
        assert_eq!(x86("GenuineIntel", 6, 207), Some("Emerald Rapids"));
        assert_eq!(
            x86("GenuineIntel", 6, 85),
            Some("Skylake-SP / Cascade Lake / Cooper Lake")
        );
        assert_eq!(
            x86_with_stepping("GenuineIntel", 6, 85, 4),
            Some("Skylake-SP")
        );
        assert_eq!(
            x86_with_stepping("GenuineIntel", 6, 85, 7),
            Some("Cascade Lake")
        );
        assert_eq!(
            x86_with_stepping("GenuineIntel", 6, 85, 11),
            Some("Cooper Lake")
        );
        assert_eq!(
            x86_with_stepping("GenuineIntel", 6, 143, 8),
            Some("Sapphire Rapids")
        );
        assert_eq!(x86("GenuineIntel", 6, 0x6A), Some("Ice Lake-SP"));
    }

    #[test]
    fn amd_and_hygon() {
        assert!(x86("AuthenticAMD", 25, 1).unwrap().contains("Zen 3"));
        assert_eq!(x86("AuthenticAMD", 25, 0x11), Some("Zen 4 (Genoa)"));
        assert_eq!(x86("AuthenticAMD", 23, 0x31), Some("Zen 2 (Rome)"));
        assert_eq!(x86("AuthenticAMD", 26, 0x02), Some("Zen 5 (Turin)"));
        assert_eq!(x86("HygonGenuine", 24, 1), Some("Dhyana (Zen)"));
    }

    #[test]
    fn arm_parts() {
        assert_eq!(arm(0x41, 0xd4f), Some("Neoverse V2"));
        assert_eq!(arm(0x41, 0xd0c), Some("Neoverse N1"));
        assert_eq!(arm(0xc0, 0xac3), Some("AmpereOne"));
    }

    #[test]
    fn unknown_is_none() {
        assert_eq!(x86("GenuineIntel", 6, 0xFF), None);
        assert_eq!(x86("AuthenticAMD", 0x1A, 0xF0), None);
        assert_eq!(x86("SomeVendor", 6, 143), None);
        assert_eq!(arm(0x41, 0xfff), None);
        assert_eq!(arm(0x99, 0xd4f), None);
    }
}
