"""Everything needed to trust hwbench's CUDA column, on one GPU machine, in one go (see
scripts/gpu-check.sh for how it is called).

Steps, each failing loudly (one line, non-zero) when it breaks:
  1. nvidia-smi's view of GPU 0 next to `hwbench info`'s: a table of agreement.
  2. The wall time of `hwbench info` against `nvidia-smi -q` (medians of several runs).
  3. The libraries the companion loads (ldd, and `hwbench-cuda describe`).
  4. The first epoch on cuda:0 with the driver's compute cache cold, then warm.
  5. The default `hwbench train-compare --with-pytorch` on cpu×1, cpu×N and cuda:0, with --plot,
     timed: the correctness gate for every column, candle cuda:0 / PyTorch cuda:0 per policy,
     and the marginal cost of one sync on cuda:0.
  6. The default `hwbench scale --with-pytorch` on the same devices, with --plot, timed: where
     cuda:0 starts beating the CPU, candle cuda:0 / PyTorch cuda:0 GFLOP/s at the largest point
     both reached, and the best share of the FP32 peak of each column.
It writes OUT/<gpu>.md and the raw JSON beside it, and prints a short summary table last. The
agreement table of step 1 also covers what the findings read (clocks event reasons, ECC, retired
pages, persistence, MIG, compute processes), and the results list every NVML query that gave no
value, with why.

With --rehearse it runs the same steps on a machine without a GPU: a recorded H100 stands in for
NVML, a fake nvidia-smi answers from it, and the CPU worker stands in for the companion. The
figures are then meaningless; what is checked is that every step runs.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Broken(Exception):
    """A step that failed: its one-line reason."""


def run(args, env=None, timeout=600, check=True):
    """Runs a command, returning (exit code, stdout, stderr); a failure raises Broken."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    except FileNotFoundError:
        raise Broken(f"{args[0]} not found")
    except subprocess.TimeoutExpired:
        raise Broken(f"`{' '.join(map(str, args[:3]))} …` did not finish in {timeout} s")
    if check and done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [""])[-1]
        raise Broken(f"`{' '.join(map(str, args[:3]))} …` exited {done.returncode}: {said}")
    return done.returncode, done.stdout, done.stderr


def median_seconds(args, env, repeats):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run(args, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times), max(times)


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# --- the rehearsal's stand-ins ---------------------------------------------------------------

FAKE_NVIDIA_SMI = r'''#!/usr/bin/env python3
"""nvidia-smi as a recorded GPU would answer it (gpu-check --rehearse)."""
import json, os, sys
gpu = json.load(open(os.environ["HWBENCH_GPU_FIXTURE"]))
d = gpu["devices"][0]
onoff = lambda v: "[N/A]" if v is None else ("Enabled" if v else "Disabled")
bits = {"gpu_idle": 1, "applications_clocks_setting": 2, "sw_power_cap": 4, "hw_slowdown": 8,
        "sync_boost": 16, "sw_thermal_slowdown": 32, "hw_thermal_slowdown": 64,
        "hw_power_brake_slowdown": 128, "display_clock_setting": 256}
fields = {"name": d["name"], "memory.total": d["memory_total_mib"],
          "driver_version": gpu["driver_version"], "compute_cap": d["compute_capability"],
          "pcie.link.gen.max": d["pcie_generation_max"], "pcie.link.width.max": d["pcie_width_max"],
          "power.default_limit": d["power_limit_default_w"], "clocks.max.sm": d["sm_clock_max_mhz"],
          "persistence_mode": onoff(d.get("persistence_mode")), "ecc.mode.current": onoff(d.get("ecc_enabled")),
          "mig.mode.current": onoff(d.get("mig_enabled")),
          "ecc.errors.uncorrected.volatile.total": d.get("ecc_uncorrected_volatile", "[N/A]"),
          "retired_pages.pending": {True: "Yes", False: "No"}.get(d.get("retired_pages_pending"), "[N/A]"),
          "clocks_event_reasons.active": hex(sum(bits[r] for r in d.get("clocks_event_reasons") or [])),
          "clocks.default_applications.graphics": d.get("sm_clock_default_app_mhz", "[N/A]")}
query = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--query-gpu=")), None)
if any(a.startswith("--query-compute-apps=") for a in sys.argv):
    for p in d.get("processes") or []:
        print(p.get("pid") or 0)
elif query:
    print(", ".join(str(fields[f]) for f in query.split(",")))
else:
    print("==============NVSMI LOG==============\n" + json.dumps(gpu, indent=1))
'''

FAKE_COMPANION = r'''#!/usr/bin/env python3
"""A companion that trains "cuda:0" on the CPU with hwbench's own worker (gpu-check --rehearse)."""
import json, os, subprocess, sys
if sys.argv[1:] == ["describe"]:
    print(json.dumps({"protocol": 4, "hwbench_version": "rehearsal", "cuda_version": "13.0",
                      "compute_capability": "8.0", "ptx": True, "libraries": []}))
    sys.exit(0)
worker = subprocess.Popen([os.environ["GPU_CHECK_HWBENCH"], "worker"], stdin=subprocess.PIPE, text=True)
request = json.loads(sys.stdin.readline())
if request.get("job") == "scale":
    request["device"] = {"kind": "cpu", "threads": 1}
else:
    request["session"]["device"] = {"kind": "cpu", "threads": 1}
worker.stdin.write(json.dumps(request) + "\n")
worker.stdin.flush()
for line in sys.stdin:
    worker.stdin.write(line)
    worker.stdin.flush()
worker.stdin.close()
sys.exit(worker.wait())
'''


def rehearsal(workdir, hwbench):
    """Stand-ins for a GPU machine, and the environment that points hwbench at them."""
    fixture = ROOT / "tests/fixtures/gpu/healthy_h100.json"
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    for name, text in [("nvidia-smi", FAKE_NVIDIA_SMI), ("hwbench-cuda", FAKE_COMPANION)]:
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    env = dict(os.environ)
    env.update(HWBENCH_GPU_FIXTURE=str(fixture), HWBENCH_CUDA=str(bin_dir / "hwbench-cuda"),
               GPU_CHECK_HWBENCH=str(hwbench), PATH=f"{bin_dir}:{env['PATH']}")
    return env


# --- the steps -------------------------------------------------------------------------------

def on_off(value):
    return {"enabled": True, "disabled": False}.get(str(value).strip().lower(), value)


def yes_no(value):
    return {"yes": True, "no": False}.get(str(value).strip().lower(), value)


# NVML's clocks event reason bits, as hwbench names them.
REASON_BITS = {"gpu_idle": 0x1, "applications_clocks_setting": 0x2, "sw_power_cap": 0x4,
               "hw_slowdown": 0x8, "sync_boost": 0x10, "sw_thermal_slowdown": 0x20,
               "hw_thermal_slowdown": 0x40, "hw_power_brake_slowdown": 0x80,
               "display_clock_setting": 0x100}


def reasons(value):
    """nvidia-smi's active bitmask (hex) or hwbench's list of names, as a sorted list of names."""
    if isinstance(value, list):
        return sorted(value)
    mask = int(str(value), 16)
    return sorted(name for name, bit in REASON_BITS.items() if mask & bit)


QUERY = [
    ("name", "name", str),
    ("memory.total", "memory_total_mib", int),
    ("driver_version", "driver_version", str),
    ("compute_cap", "compute_capability", str),
    ("pcie.link.gen.max", "pcie_generation_max", int),
    ("pcie.link.width.max", "pcie_width_max", int),
    ("power.default_limit", "power_limit_default_w", float),
    ("clocks.max.sm", "sm_clock_max_mhz", int),
    ("persistence_mode", "persistence_mode", on_off),
    ("ecc.mode.current", "ecc_enabled", on_off),
    ("mig.mode.current", "mig_enabled", on_off),
    ("ecc.errors.uncorrected.volatile.total", "ecc_uncorrected_volatile", int),
    ("retired_pages.pending", "retired_pages_pending", yes_no),
    ("clocks_event_reasons.active", "clocks_event_reasons", reasons),
]

# Asked one by one: a field an older nvidia-smi does not know fails only its own row.
OPTIONAL_QUERY = [
    ("clocks.default_applications.graphics", "sm_clock_default_app_mhz", int),
]

NOT_SUPPORTED = {"[n/a]", "n/a", "[not supported]", "not supported"}


def agreement_row(query, field, kind, value, info, gpu):
    """(query, nvidia-smi's value, hwbench's, whether they agree or why not)."""
    ours = info["gpu"]["driver_version"] if field == "driver_version" else gpu.get(field)
    theirs = None if value.lower() in NOT_SUPPORTED else value
    try:
        same = (theirs is None and ours is None) or (
            theirs is not None and ours is not None and kind(theirs) == kind(ours))
    except ValueError:
        same = False
    why = "" if same else (gpu.get("unavailable", {}).get(field) or "differs")
    if not same and field == "memory_total_mib" and ours is not None:
        why = f"differs by {abs(int(value) - int(ours))} MiB (NVML v2 counts reserved memory)"
    if same and theirs is None:
        why = "both: not supported"
    return (query, value, "null" if ours is None else str(ours), "yes" if same else why)


def agreement(hwbench, env):
    _, csv, _ = run(["nvidia-smi", "--query-gpu=" + ",".join(q for q, _, _ in QUERY),
                     "--format=csv,noheader,nounits"], env=env)
    smi = [v.strip() for v in csv.splitlines()[0].split(",")]
    _, text, _ = run([hwbench, "info", "--format", "json", "--no-redact"], env=env)
    info = json.loads(text)
    gpu = info["gpu"]["devices"][0]
    rows = [agreement_row(q, field, kind, value, info, gpu)
            for (q, field, kind), value in zip(QUERY, smi)]
    for query, field, kind in OPTIONAL_QUERY:
        code, out, err = run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                             env=env, check=False)
        if code != 0 or not out.strip():
            said = (err.strip().splitlines() or out.strip().splitlines() or [""])[-1]
            rows.append((query, "not asked", str(gpu.get(field)), f"nvidia-smi: {said}"))
            continue
        rows.append(agreement_row(query, field, kind, out.splitlines()[0].strip(), info, gpu))
    # The processes on the GPU: the findings count them.
    _, apps, _ = run(["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader"], env=env)
    theirs = len([l for l in apps.splitlines() if l.strip()])
    ours = gpu.get("processes")
    same = ours is not None and len(ours) >= theirs
    rows.append(("compute processes", str(theirs), "null" if ours is None else str(len(ours)),
                 "yes" if same else (gpu.get("unavailable", {}).get("processes") or "differs")))
    return info, rows


def timings(hwbench, env, repeats):
    info = median_seconds([hwbench, "info", "--format", "json"], env, repeats)
    smi = median_seconds(["nvidia-smi", "-q"], env, repeats)
    return info, smi


def libraries(companion, env):
    _, described, _ = run([companion, "describe"], env=env)
    loaded = json.loads(described).get("libraries", [])
    code, ldd, _ = run(["ldd", companion], env=env, check=False)
    lines = [l.strip() for l in ldd.splitlines() if re.search(r"cuda|cublas|curand|nvrtc", l)]
    return loaded, lines if code == 0 else [f"ldd exited {code}"]


def first_epochs(hwbench, env, workdir):
    """cuda:0's first epoch with an empty compute cache, then with the one that run filled."""
    cache = workdir / "compute-cache"
    env = dict(env, CUDA_CACHE_PATH=str(cache))
    found = []
    for _ in ("cold", "warm"):
        _, text, _ = run([hwbench, "train-compare", "--devices", "cuda:0", "--epochs", "200",
                          "--repeats", "1", "--warmup-epochs", "10", "--sync-every", "0",
                          "--format", "json"], env=env)
        facts = json.loads(text)["devices"][0].get("facts") or {}
        found.append((facts.get("first_epoch_ms"), facts.get("kernel_cache") or "n/a"))
    return found


def measured_run(hwbench, command, plot_suffix, env, python, out, name, quick):
    """Runs `hwbench COMMAND --with-pytorch` on cpu and cuda:0 with its plot; returns the JSON
    report, the wall time and the exit code (a report is written even when a column fails)."""
    report_path = out / f"{name}-{command}.json"
    plot_path = out / f"{name}-{plot_suffix}.svg"
    args = [hwbench, command, "--with-pytorch", "--python", python, "--devices", "cpu,cuda:0",
            "--plot", plot_path, "--format", "json", "-o", report_path]
    if quick:
        args.append("--quick")
    started = time.perf_counter()
    code, _, stderr = run(args, env=env, check=False)
    took = time.perf_counter() - started
    if not report_path.exists():
        raise Broken(f"{command} exited {code} without a report: {stderr.strip()[-300:]}")
    return json.loads(report_path.read_text()), took, code


def size_name(size):
    return f"{size['inputs']}:{size['hidden']}:{size['classes']}:{size['rows']}"


def scale_figures(report):
    """(crossover lines, candle/PyTorch cuda:0 at the largest common point, best shares)."""
    crossings = [f"{c['faster']} beats {c['slower']} from {size_name(c['from'])}"
                 if c.get("from") else f"{c['faster']} ahead of {c['slower']} only within noise"
                 for c in report.get("crossovers", [])]
    columns = {c["label"]: c for c in report["devices"]}
    ratio = "n/a"
    candle, torch = columns.get("cuda:0"), columns.get("pytorch cuda:0")
    if candle and torch:
        both = [(p, q) for p, q in zip(candle["points"], torch["points"])
                if p.get("gflops") and q.get("gflops")]
        if both:
            p, q = both[-1]
            ratio = f"{p['gflops'] / q['gflops']:.2f}× at {size_name(p['size'])}"
    shares = []
    for column in report["devices"]:
        best = max((p for p in column["points"] if p.get("peak_share")),
                   key=lambda p: p["peak_share"], default=None)
        if best:
            shares.append(f"{column['label']} {best['peak_share'] * 100:.0f}% "
                          f"({best['gflops']:.0f} GFLOP/s at {size_name(best['size'])})")
    return crossings, ratio, shares


def per_policy(report):
    """{label: {sync_every: median µs per epoch}}"""
    table = {}
    for device in report["devices"]:
        table[device["label"]] = {p["policy"]: (p.get("per_epoch_us") or {}).get("median")
                                  for p in device["policies"]}
    return table


# --- the results file ------------------------------------------------------------------------

def markdown(name, info, rows, times, libs, firsts, report, took, code, scaled):
    (info_t, smi_t), (loaded, ldd) = times, libs
    gpu = info["gpu"]["devices"][0]
    lines = [f"# hwbench on {gpu.get('name')}", "",
             "Recorded by `scripts/gpu-check.sh`.", "", "## Machine", "",
             "| | |", "|---|---|",
             f"| GPU | {gpu.get('name')}, {gpu.get('memory_total_mib')} MiB, CC {gpu.get('compute_capability')} |",
             f"| driver / CUDA (driver supports) | {info['gpu'].get('driver_version')} / {info['gpu'].get('cuda_driver_version')} |",
             f"| CPU | {info['cpu'].get('model_name')} ({info['cpu'].get('microarchitecture')}), {info['cpu'].get('usable_cpus')} usable CPUs |",
             f"| OS | {info['os'].get('long_name')}, kernel {info['os'].get('kernel')} |",
             f"| hwbench | {info['build']['hwbench_version']}; companion: {info['build']['cuda_companion']['detail']} |",
             "", "## nvidia-smi and hwbench info agree", "",
             "| nvidia-smi field | nvidia-smi | hwbench info | equal |", "|---|---|---|---|"]
    lines += [f"| {q} | {a} | {b} | {same} |" for q, a, b, same in rows]
    lines += ["", "## Wall time (median of runs, min–max)", "",
              "| command | median | range |", "|---|---|---|",
              f"| `hwbench info --format json` | {info_t[0] * 1e3:.1f} ms | {info_t[1] * 1e3:.1f}–{info_t[2] * 1e3:.1f} ms |",
              f"| `nvidia-smi -q` | {smi_t[0] * 1e3:.1f} ms | {smi_t[1] * 1e3:.1f}–{smi_t[2] * 1e3:.1f} ms |",
              "", "## The companion's libraries", ""]
    lines += [f"- {l['file']} {l.get('version')} ({'bundled' if l.get('bundled') else 'the machine’s'})" for l in loaded]
    lines += ["", "```text", *ldd, "```", "", "## First epoch on cuda:0", "",
              "| compute cache | first epoch | state |", "|---|---|---|"]
    for label, (ms, cache) in zip(("cold", "warm"), firsts):
        lines.append(f"| {label} | {ms:.2f} ms | {cache} |" if ms is not None else f"| {label} | n/a | {cache} |")
    table = per_policy(report)
    policies = report["config"]["policies"]
    lines += ["", f"## train-compare --with-pytorch ({took:.0f} s in all, exit {code})", "",
              "Median per-epoch cost, µs:", "",
              "| device | " + " | ".join(f"sync every {p}" if p else "sync never" for p in policies)
              + " | status | final loss |",
              "|---" * (len(policies) + 3) + "|"]
    for device in report["devices"]:
        cells = [f"{table[device['label']].get(p):.1f}" if table[device["label"]].get(p) else "n/a"
                 for p in policies]
        lines.append(f"| {device['label']} | " + " | ".join(cells)
                     + f" | {device['status']} | {device.get('final_loss')} |")
    lines += ["", "Verdict:", ""] + [f"- {v}" for v in report["verdict"] + report.get("notes", [])]
    scale_report, scale_took, scale_code = scaled
    crossings, ratio, shares = scale_figures(scale_report)
    lines += ["", f"## scale --with-pytorch ({scale_took:.0f} s in all, exit {scale_code})", "",
              "Median seconds per epoch:", "",
              "| size | " + " | ".join(c["label"] for c in scale_report["devices"]) + " |",
              "|---" * (len(scale_report["devices"]) + 1) + "|"]
    for i, point in enumerate(scale_report["ladder"]):
        cells = []
        for column in scale_report["devices"]:
            p = column["points"][i]
            cells.append(f"{p['epoch_s']['median']:.3g}" if p.get("epoch_s") else p["status"])
        lines.append(f"| {size_name(point['size'])} | " + " | ".join(cells) + " |")
    lines += ["", f"- crossovers: {'; '.join(crossings) or 'none'}",
              f"- candle cuda:0 / PyTorch cuda:0 GFLOP/s at the largest point both reached: {ratio}",
              f"- best share of the FP32 peak: {'; '.join(shares) or 'n/a'}", "", "Verdict:", ""]
    lines += [f"- {v}" for v in scale_report["verdict"] + scale_report.get("notes", [])]
    missing = gpu.get("unavailable", {})
    lines += ["", "## NVML queries that gave no value", ""]
    lines += [f"- `{field}`: {why}" for field, why in sorted(missing.items())] or ["- none"]
    return "\n".join(lines) + "\n"


def summary(rows, times, report, took, firsts, scaled):
    table = per_policy(report)
    candle, torch = table.get("cuda:0", {}), table.get("pytorch cuda:0", {})
    ratios = [f"{p}: {candle[p] / torch[p]:.2f}×" for p in candle
              if candle.get(p) and torch.get(p)]
    cuda = next((d for d in report["devices"] if d["label"] == "cuda:0"), {})
    every = next((p for p in cuda.get("policies", []) if p["policy"] == 1), {})
    sync = every.get("sync_cost_us")
    sync = f"{sync:.1f} µs" if sync is not None else f"< {every.get('sync_cost_below_us') or 0:.1f} µs (noise)"
    gate = ", ".join(f"{d['label']} {d['status']}" for d in report["devices"])
    (info_t, smi_t) = times
    return [
        ("fields agreeing with nvidia-smi", f"{sum(r[3] == 'yes' for r in rows)} of {len(rows)}"),
        ("hwbench info vs nvidia-smi -q", f"{info_t[0] * 1e3:.1f} ms vs {smi_t[0] * 1e3:.1f} ms"),
        ("correctness gate", gate),
        ("candle cuda:0 / PyTorch cuda:0 per epoch", ", ".join(ratios) or "n/a"),
        ("one sync on cuda:0", sync),
        ("first epoch cold / warm", " / ".join(f"{ms:.1f} ms" if ms else "n/a" for ms, _ in firsts)),
        ("default train-compare --with-pytorch", f"{took:.0f} s"),
        ("scale: cuda:0 crossovers", "; ".join(c for c in scale_figures(scaled[0])[0]
                                                if c.startswith("cuda:0")) or "none"),
        ("scale: candle / PyTorch on cuda:0", scale_figures(scaled[0])[1]),
        ("scale: best share of peak", "; ".join(scale_figures(scaled[0])[2]) or "n/a"),
        ("default scale --with-pytorch", f"{scaled[1]:.0f} s"),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("install", type=Path, help="the folder holding hwbench and hwbench-cuda")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the results go [default: docs/results; a temporary folder when rehearsing]")
    parser.add_argument("--python", default=os.environ.get("PYTHON", "python3"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rehearse", action="store_true",
                        help="no GPU here: a recorded H100 and the CPU worker stand in")
    parser.add_argument("--quick", action="store_true", help="train-compare --quick and scale --quick")
    parser.add_argument("--no-gpu-ok", action="store_true",
                        help="without a GPU, say so and exit 0 (CI)")
    args = parser.parse_args()

    hwbench = (args.install / "hwbench").resolve()
    workdir = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        if not hwbench.is_file():
            raise Broken(f"no hwbench in {args.install}: build it with scripts/build-cuda.sh --install DIR")
        if args.rehearse:
            env = rehearsal(workdir, hwbench)
            companion = Path(env["HWBENCH_CUDA"])
        else:
            env = dict(os.environ)
            companion = (args.install / "hwbench-cuda").resolve()
            if shutil.which("nvidia-smi") is None:
                print("gpu-check: no NVIDIA GPU here (nvidia-smi not found); nothing to check", file=sys.stderr)
                return 0 if args.no_gpu_ok else 1
            if not companion.is_file():
                raise Broken(f"no hwbench-cuda in {args.install}: build it with scripts/build-cuda.sh --install DIR")
        out = args.out or (workdir / "results" if args.rehearse else ROOT / "docs/results")
        out.mkdir(parents=True, exist_ok=True)

        step = "agreement with nvidia-smi"
        info, rows = agreement(hwbench, env)
        name = slug(info["gpu"]["devices"][0].get("name") or "gpu")
        (out / f"{name}-info.json").write_text(json.dumps(info, indent=1) + "\n")
        step = "wall times"
        times = timings(hwbench, env, args.repeats)
        step = "the companion's libraries"
        libs = libraries(companion, env)
        step = "first epochs"
        firsts = first_epochs(hwbench, env, workdir)
        step = "train-compare"
        quick = args.quick or args.rehearse
        report, took, code = measured_run(hwbench, "train-compare", "loss", env, args.python,
                                          out, name, quick)
        step = "scale"
        scaled = measured_run(hwbench, "scale", "scale", env, args.python, out, name, quick)
        (out / f"{name}.md").write_text(
            markdown(name, info, rows, times, libs, firsts, report, took, code, scaled))
        print(f"gpu-check: wrote {out / (name + '.md')} and its JSON")
        table = summary(rows, times, report, took, firsts, scaled)
        width = max(len(k) for k, _ in table)
        for key, value in table:
            print(f"{key:<{width}}  {value}")
        return 0
    except Broken as e:
        print(f"gpu-check: {locals().get('step', 'setup')} failed: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
