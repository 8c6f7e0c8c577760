#!/usr/bin/env python3
"""Wall time of `hwbench info` against `lscpu`, measured in one paired run.

Usage: scripts/info-speed.py [HWBENCH] [ROUNDS]   (default: target/release/hwbench, 300)

Each round runs both commands once, in turn, after 20 warm-up rounds, with stdout on /dev/null;
it prints each command's median and the median of the per-round ratios with its 5-95% range.
Pairing rounds lets a noisy machine slow both commands alike, so the ratio holds where the
times do not.

hwbench runs from a copy, as `cargo install` and `dpkg` put it: a binary straight from the linker
starts about 0.2 ms slower (its pages sit in the page cache in smaller pieces, so starting it
takes more page faults: 215 against 184 here).
"""
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 300
installed = tempfile.mkdtemp(prefix="hwbench-speed-")
hwbench = shutil.copy(sys.argv[1] if len(sys.argv) > 1 else "target/release/hwbench", installed)
commands = [[hwbench, "info"], ["lscpu"]]


def wall(command):
    with open("/dev/null", "w") as null:
        started = time.perf_counter()
        subprocess.run(command, stdout=null, stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - started


for _ in range(20):
    for command in commands:
        wall(command)
times = [[], []]
for _ in range(rounds):
    for i, command in enumerate(commands):
        times[i].append(wall(command))
ratios = sorted(a / b for a, b in zip(*times))
for command, t in zip(commands, times):
    name = " ".join([command[0].rsplit("/", 1)[-1]] + command[1:])
    print(f"{name:14s} median {statistics.median(t) * 1e3:.2f} ms")
low, high = ratios[len(ratios) // 20], ratios[len(ratios) * 19 // 20]
print(f"hwbench info / lscpu: median {statistics.median(ratios):.2f}x (5-95%: {low:.2f}-{high:.2f}x), {rounds} rounds")
shutil.rmtree(installed)
