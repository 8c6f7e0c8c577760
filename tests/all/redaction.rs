//! Redaction that no hostname can fool. Under hostnames that are also words of the report (`gpu`,
//! `cpu`, `id`, `Linux`), that are not one word (`a+b`, `node 1`), that are pattern characters
//! (`.*`) or not ASCII, every format of `info`, `diff` and `fleet` is compared with the same run
//! under a neutral name: whatever differs holds no trace of the name, and the machine's facts and
//! the field names do not differ at all. `train-compare`, `scale` and `report` run in a
//! UTS namespace with that hostname (where the machine allows one), with a worker that says the
//! hostname in its error.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{self, Dir, hwbench};

const HOSTNAMES: &[&str] = &[
    "gpu",
    "cpu",
    "id",
    "Linux",
    "a+b",
    "node 1",
    ".*",
    "nöde-😀",
];
const NEUTRAL: &str = "neutral-host-0";
const FORMATS: &[&str] = &["table", "markdown", "json", "prometheus"];

/// A recorded machine (the healthy fixture root) whose kernel says its hostname is `hostname`.
fn root_named(dir: &Dir, hostname: &str) -> PathBuf {
    let root = dir.join(&format!(
        "root-{}",
        hostname.len() * 31 + hostname.chars().count()
    ));
    let root = root.with_extension(format!("{:x}", fnv(hostname)));
    if root.exists() {
        return root;
    }
    let copied = Command::new("cp")
        .arg("-r")
        .arg(util::fixture("roots/healthy"))
        .arg(&root)
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
    std::fs::write(
        root.join("proc/sys/kernel/hostname"),
        format!("{hostname}\n"),
    )
    .unwrap();
    root
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// `hwbench ARGS` on the recorded machine at `root`, with the recorded A100s; stdout.
fn on(root: &Path, args: &[&str]) -> String {
    on_in(root, Path::new("."), args)
}

/// [`on`], run in the folder `cwd`.
fn on_in(root: &Path, cwd: &Path, args: &[&str]) -> String {
    let output = hwbench()
        .current_dir(cwd)
        .args(args)
        .env("HWBENCH_ROOT", root)
        .env(
            "HWBENCH_GPU_FIXTURE",
            util::fixture("gpu/two_a100_one_mig.json"),
        )
        .env_remove("CUDA_VISIBLE_DEVICES")
        .output()
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `text` is what a command printed under the hostname `host`, `neutral` what the same command
/// printed under [`NEUTRAL`]: every line that is not also a line of `neutral` must hold no trace
/// of `host`, in any case. (A line the two share holds the name only as a word of the report
/// itself, "cpu" in `cpu×1`; free text that contained the name is scrubbed, inside longer words
/// too, so its line differs — and must not hold it.)
fn assert_no_trace(host: &str, text: &str, neutral: &str, what: &str) {
    let shared: std::collections::BTreeSet<&str> = neutral.lines().collect();
    let host = host.to_lowercase();
    for line in text.lines().filter(|l| !shared.contains(l)) {
        assert!(
            !line.to_lowercase().contains(&host),
            "{what}: {host:?} in {line:?}"
        );
    }
}

#[test]
fn no_hostname_leaks_into_a_redacted_info_report_or_changes_its_facts() {
    let dir = Dir::new();
    let neutral = root_named(&dir, NEUTRAL);
    for format in FORMATS {
        let expected = on(&neutral, &["info", "--format", format]);
        for host in HOSTNAMES {
            let root = root_named(&dir, host);
            let text = on(&root, &["info", "--format", format]);
            assert_no_trace(host, &text, &expected, &format!("info --format {format}"));
            if *format == "json" {
                // The machine's facts are not free text: a host named Linux runs Debian GNU/Linux.
                let (a, b): (Value, Value) = (
                    serde_json::from_str(&text).unwrap(),
                    serde_json::from_str(&expected).unwrap(),
                );
                for fact in [
                    "/os/name",
                    "/os/long_name",
                    "/os/kernel",
                    "/os/hostname",
                    "/cpu/model_name",
                    "/gpu/devices/0/name",
                    "/gpu/devices/0/uuid",
                    "/gpu/driver_version",
                ] {
                    assert_eq!(a.pointer(fact), b.pointer(fact), "{fact} under {host:?}");
                }
                assert_eq!(a["redacted"], true);
            }
        }
    }
    // The recorded hostname is really read: unredacted, it is there.
    let root = root_named(&dir, "node 1");
    let json: Value =
        serde_json::from_str(&on(&root, &["info", "--format", "json", "--no-redact"])).unwrap();
    assert_eq!(json["os"]["hostname"], "node 1");
}

#[test]
fn no_hostname_leaks_into_a_redacted_diff_or_fleet() {
    let dir = Dir::new();
    // Two unredacted reports of a machine (the second with another driver), as the names of the
    // files the README's Slurm recipe writes: the fully qualified hostname.
    let saved = |host: &str| -> (PathBuf, [String; 2]) {
        let root = root_named(&dir, host);
        let text = on(&root, &["info", "--format", "json", "--no-redact"]);
        let mut other: Value = serde_json::from_str(&text).unwrap();
        other["gpu"]["driver_version"] = "999.1".into();
        let folder = dir.join(&format!("saved-{:x}", fnv(host)));
        std::fs::create_dir_all(&folder).unwrap();
        let first = format!("{host}.cluster.local.json");
        std::fs::write(folder.join(&first), &text).unwrap();
        let second = format!("{}.json", host.to_uppercase());
        std::fs::write(folder.join(&second), serde_json::to_string(&other).unwrap()).unwrap();
        (folder, [first, second])
    };
    let root = root_named(&dir, NEUTRAL);
    let run = |host: &str, format: &str| -> (String, String) {
        let (folder, [first, second]) = saved(host);
        let diff = on_in(
            &root,
            &folder,
            &["diff", "--format", format, &first, &second],
        );
        let fleet = on_in(
            &root,
            &folder,
            &["fleet", "--format", format, &first, &second],
        );
        (diff, fleet)
    };
    for format in FORMATS {
        let expected = run(NEUTRAL, format);
        let names_fields = *format != "prometheus";
        for host in HOSTNAMES {
            let (diff, fleet) = run(host, format);
            assert_no_trace(host, &diff, &expected.0, &format!("diff --format {format}"));
            assert_no_trace(
                host,
                &fleet,
                &expected.1,
                &format!("fleet --format {format}"),
            );
            // Field names are never redacted: a host named "gpu" leaves gpu.driver_version be.
            assert!(!names_fields || diff.contains("driver_version"), "{diff}");
        }
    }
}

/// `hwbench ARGS` on a machine named `hostname`: in a new UTS namespace where the machine allows
/// one (root, `unshare`), else on a recorded root of that name (the fake companion below reads
/// the name from either).
fn named(dir: &Dir, hostname: &str, args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let uts = Command::new("unshare")
        .args(["--uts", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let mut command = if uts {
        let set_and_run = "import ctypes, os, sys\n\
            name = sys.argv[1].encode()\n\
            assert ctypes.CDLL(None).sethostname(name, len(name)) == 0\n\
            os.execv(sys.argv[2], sys.argv[2:])";
        let mut command = Command::new("unshare");
        command
            .args(["--uts", "python3", "-c", set_and_run, hostname])
            .arg(util::bin());
        command
    } else {
        let mut command = Command::new(util::bin());
        command.env("HWBENCH_ROOT", root_named(dir, hostname));
        command
    };
    command
        .args(args)
        .env_remove("HWBENCH_GPU_FIXTURE")
        .env_remove("HWBENCH_CUDA")
        .env_remove("HWBENCH_PYTHON")
        .envs(env.iter().copied());
    command.output().unwrap()
}

#[test]
fn runs_under_any_hostname_keep_it_out_of_their_reports() {
    let dir = Dir::new();
    // A companion that fails, naming the host it runs on.
    let companion = dir.executable(
        "hwbench-cuda",
        r#"host=$(cat "$HWBENCH_ROOT/proc/sys/kernel/hostname" 2>/dev/null || hostname)
case "$1" in
describe) echo "cannot start on $host" >&2; exit 1 ;;
worker) echo '{"event":"hello","protocol":4,"hwbench_version":"0.1.0","backend":"cuda"}'; printf '{"event":"error","message":"no GPU on %s"}\n' "$host"; exit 1 ;;
esac"#,
    );
    let fixture = PathBuf::from(util::fixture("gpu/hopper_h100.json"));
    let env = [
        ("HWBENCH_CUDA", companion.as_path()),
        ("HWBENCH_GPU_FIXTURE", fixture.as_path()),
    ];
    let commands: [&[&str]; 3] = [
        &[
            "train-compare",
            "--epochs",
            "50",
            "--warmup-epochs",
            "5",
            "--repeats",
            "1",
        ],
        &["scale", "--quick", "--sizes", "4:10:3:120"],
        &["report"],
    ];
    for host in HOSTNAMES {
        for command in commands {
            for format in FORMATS {
                let mut args = command.to_vec();
                args.extend([
                    "--devices",
                    "cpu,cuda:0",
                    "--cpu-threads",
                    "1",
                    "--format",
                    format,
                ]);
                let output = named(&dir, host, &args, &env);
                let text = String::from_utf8_lossy(&output.stdout);
                assert!(
                    !text.is_empty(),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                // The worker said "no GPU on <host>"; for a host named gpu, both words go.
                let said = format!("gpu on {}", host.to_lowercase());
                assert!(
                    !text.to_lowercase().contains(&said),
                    "{args:?} under {host:?}: {text}"
                );
                if *format == "prometheus" {
                    continue;
                }
                assert!(
                    text.contains(" on host-redacted"),
                    "{args:?} under {host:?}: {text}"
                );
                if *format != "json" {
                    continue;
                }
                let json: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(json["redacted"], true);
                let training = json.get("train_compare").unwrap_or(&json);
                assert_eq!(
                    training["devices"][0]["label"], "cpu×1",
                    "labels are not redacted"
                );
                if let Some(info) = json.get("info") {
                    assert_eq!(info["os"]["hostname"], "host-redacted");
                    let detail = info["build"]["cuda_companion"]["detail"].as_str().unwrap();
                    assert!(
                        !detail.to_lowercase().contains(&host.to_lowercase()),
                        "{host:?}: {detail}"
                    );
                }
            }
        }
    }
}

/// xorshift64*: the same cases on every run.
struct Cases(u64);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A short string of characters chosen to be awkward: pattern characters, dots, spaces,
    /// letters whose case changes length (İ, ß), combining marks, emoji, controls.
    fn string(&mut self, most: usize) -> String {
        const ALPHABET: &[char] = &[
            'a', 'b', 'c', 'd', 'g', 'h', 'i', 'p', 'u', 'x', 'A', 'G', 'P', 'U', 'İ', 'ß', 'ẞ',
            '\u{307}', 'é', 'ö', '😀', '.', '*', '+', '?', '[', ']', '(', ')', '-', '_', ' ', '/',
            '\\', '$', '^', '|', '\u{1b}', '\u{202e}', '0', '1', '9', 'f',
        ];
        let len = self.below(most + 1);
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len())])
            .collect()
    }

    /// `secret` in a random case.
    fn recased(&mut self, secret: &str) -> String {
        secret
            .chars()
            .flat_map(|c| match self.below(3) {
                0 => c.to_uppercase().collect::<Vec<_>>(),
                1 => c.to_lowercase().collect(),
                _ => vec![c],
            })
            .collect()
    }
}

/// Any secret, any text: what comes out never holds the secret (in any case), and text that
/// holds no secret, UUID prefix or home folder comes out unchanged. `HWBENCH_FUZZ_SECONDS=600`
/// runs it for that long instead of a fixed number of cases, and prints how many it tried.
#[test]
fn the_redactor_never_lets_a_secret_through() {
    use hwbench::redact::{Redactor, contains_folded};
    let seconds: Option<u64> = std::env::var("HWBENCH_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let started = std::time::Instant::now();
    let mut cases = Cases(0x9E3779B97F4A7C15);
    let (mut tried, mut unchanged) = (0u64, 0u64);
    loop {
        match seconds {
            Some(s) if started.elapsed().as_secs() >= s => break,
            None if tried >= 20_000 => break,
            _ => {}
        }
        tried += 1;
        let secret = cases.string(6);
        let other = cases.string(4);
        let redactor = Redactor::for_hostname(Some(&secret))
            .with([(other.clone(), "GPU-redacted-0".to_string())]);
        let secrets: Vec<String> = redactor.secrets().map(str::to_string).collect();
        let mut text = String::new();
        for _ in 0..cases.below(5) {
            text.push_str(&cases.string(5));
            if cases.below(2) == 0 {
                let recased = cases.recased(&secret);
                text.push_str(&recased);
            }
        }
        let out = redactor.text(&text);
        for secret in &secrets {
            assert!(
                !contains_folded(&out, secret),
                "case {tried}: {secret:?} survives in {out:?} (from {text:?})"
            );
        }
        let plain = secrets.iter().all(|s| !contains_folded(&text, s))
            && !contains_folded(&text, "gpu-")
            && !contains_folded(&text, "mig-")
            && !text.contains("/home/")
            && !text.contains("/Users/");
        if plain {
            unchanged += 1;
            assert_eq!(
                out, text,
                "case {tried}: a text without secrets was changed"
            );
        }
    }
    if seconds.is_some() {
        eprintln!(
            "redactor fuzz: {tried} cases in {:.0} s, {unchanged} without a secret (left unchanged)",
            started.elapsed().as_secs_f64()
        );
    }
}

#[test]
fn a_uuid_in_any_form_leaves_no_trace_in_any_format() {
    // The older MIG form, and a UUID at the end of a sentence.
    let uuid = "1a2b3c4d-aaaa-4bbb-8ccc-0123456789ab";
    for visible in [format!("MIG-GPU-{uuid}/1/0"), format!("GPU-{uuid}.")] {
        for format in FORMATS {
            let output = hwbench()
                .args(["info", "--format", format])
                .env("CUDA_VISIBLE_DEVICES", &visible)
                .env(
                    "HWBENCH_GPU_FIXTURE",
                    util::fixture("gpu/two_a100_one_mig.json"),
                )
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(!text.is_empty());
            assert!(!text.contains(uuid), "{visible} in {format}: {text}");
            assert!(!text.contains("1a2b3c4d"), "{visible} in {format}");
        }
    }
}
