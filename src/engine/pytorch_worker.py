"""hwbench's PyTorch worker: the reference iris loop, measured the way hwbench measures candle.

hwbench ships this file inside its executable and runs it for `train-compare --with-pytorch` as
`python3 -I -c <this file>`. It speaks hwbench's worker protocol (version 4): one
JSON request line on stdin, JSON message lines on stdout, `error` with a one-line reason when
something fails. Two jobs:

- `compare` (train-compare): the session plus the prepared rows in the request; answers `hello`,
  `ready`, `progress` at least every 2 s while training, `calibrated` after the warm-ups; then
  reads one step at a time: `{"step": "round", "epochs": N}` is one timed `run` of every policy,
  `{"step": "finish"}` ends the job with `finished` and a sampled loss curve.
- `scale` (hwbench scale): the device, seed and timing in the request; answers `ready` with the
  free memory, then reads one step at a time: `{"step": "point", "size": {...}, "max_epoch_s": S}`
  makes that size's data and weights from the seed exactly as hwbench does (`synthetic_uniform`),
  times a cold epoch and a warm-up and answers `prepared` (the data stays ready); each
  `{"step": "run", "size": {...}}` is one timed run of a prepared size, answered `timed`;
  `{"step": "finish"}` ends the job with `finished`.

The work per epoch mirrors hwbench's candle session: the loss of every epoch is written into a
preallocated buffer on the device; a policy only decides how often it is also read back with
`loss.item()`; every run ends by reading the whole buffer back, and the clock is read only after
the device is synchronised.
"""

import json
import math
import os
import resource
import sys
import time

PROTOCOL = 4
HEARTBEAT_S = 2.0
WARMUP_LIMIT_S = 1.0
CURVE_POINTS = 2048


def send(**message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def finite(value):
    return value if value is not None and math.isfinite(value) else None


def sample_curve(curve, points):
    """Up to `points` (epoch, loss) pairs, evenly spaced, finite losses only, the last finite one kept."""
    step = max(1, -(-len(curve) // points))
    sampled = [[i + 1, curve[i]] for i in range(0, len(curve), step) if math.isfinite(curve[i])]
    last = next((i for i in range(len(curve) - 1, -1, -1) if math.isfinite(curve[i])), None)
    if last is not None and (not sampled or sampled[-1][0] != last + 1):
        sampled.append([last + 1, curve[last]])
    return sampled


def curve_peak(curve):
    finite = [(v, i) for i, v in enumerate(curve) if math.isfinite(v)]
    if not finite:
        return None
    value, index = max(finite)
    return [index + 1, value]


def cpu_name():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def open_device(torch, spec):
    """The device a request names, opened: (device, its name, milliseconds it took)."""
    opened = time.perf_counter()
    if spec["kind"] == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("PyTorch sees no CUDA device (torch.cuda.is_available() is False)")
        if spec["ordinal"] >= torch.cuda.device_count():
            raise RuntimeError(f"PyTorch sees {torch.cuda.device_count()} CUDA device(s), not cuda:{spec['ordinal']}")
        device = torch.device("cuda", spec["ordinal"])
        torch.cuda.init()
        torch.zeros(1, device=device)  # creates the context
        torch.cuda.synchronize(device)
        name = torch.cuda.get_device_name(device)
    elif spec["kind"] == "cpu":
        torch.set_num_threads(spec["threads"])
        device = torch.device("cpu")
        name = cpu_name()
    else:
        raise RuntimeError(f"this PyTorch worker cannot train on a {spec['kind']} device")
    return device, name, (time.perf_counter() - opened) * 1e3


class Session:
    def __init__(self, torch, request):
        self.torch = torch
        session = request["session"]
        self.config = session["config"]
        self.policies = session["policies"]
        self.warmup_epochs = session["warmup_epochs"]
        self.device, self.name, self.open_ms = open_device(torch, session["device"])

        started = time.perf_counter()
        data = request["data"]
        as_x = lambda rows: torch.tensor(rows, dtype=torch.float32, device=self.device).reshape(-1, 4)
        as_y = lambda labels: torch.tensor(labels, dtype=torch.long, device=self.device)
        self.train_x, self.train_y = as_x(data["train_x"]), as_y(data["train_y"])
        self.test_x, self.test_y = as_x(data["test_x"]), as_y(data["test_y"])
        self.model()
        self.sync()
        self.setup_ms = (time.perf_counter() - started) * 1e3

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def model(self):
        torch, init = self.torch, self.config["init"]
        hidden = init["hidden"]
        model = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3)
        ).to(self.device)
        with torch.no_grad():
            model[0].weight.copy_(torch.tensor(init["fc1_weight"]).reshape(hidden, 4))
            model[0].bias.copy_(torch.tensor(init["fc1_bias"]))
            model[2].weight.copy_(torch.tensor(init["fc2_weight"]).reshape(3, hidden))
            model[2].bias.copy_(torch.tensor(init["fc2_bias"]))
        return model

    def train(self, every, repeat, epochs, time_first_epoch=False, limit_s=None):
        torch = self.torch
        model = self.model()
        optimizer = torch.optim.SGD(model.parameters(), lr=self.config["lr"])
        criterion = torch.nn.CrossEntropyLoss()
        losses = torch.zeros(epochs, device=self.device)
        readback, syncs, diverged_at, trained, first_epoch = 0.0, 0, None, epochs, None

        self.sync()
        start = time.perf_counter()
        last_beat = start
        for epoch in range(1, epochs + 1):
            loss = criterion(model(self.train_x), self.train_y)
            losses[epoch - 1] = loss.detach()
            if every and epoch % every == 0:
                asked = time.perf_counter()
                value = loss.item()
                readback += time.perf_counter() - asked
                syncs += 1
                if not math.isfinite(value):
                    diverged_at, trained = epoch, epoch
                    break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if time_first_epoch and epoch == 1:
                self.sync()
                first_epoch = time.perf_counter() - start
            if epoch % 16 == 0:
                now = time.perf_counter()
                if now - last_beat >= HEARTBEAT_S:
                    send(event="progress", policy=every, repeat=repeat, epoch=epoch)
                    last_beat = now
                if limit_s is not None and epoch >= 10 and now - start >= limit_s:
                    trained = epoch
                    break
        asked = time.perf_counter()
        curve = losses[:trained].tolist()
        readback += time.perf_counter() - asked
        syncs += 1
        self.sync()
        total = time.perf_counter() - start

        if diverged_at is None:
            diverged_at = next((i + 1 for i, v in enumerate(curve) if not math.isfinite(v)), None)
        run = {
            "policy": every,
            "repeat": 0,
            "epochs": trained,
            "total_s": total,
            "syncs": syncs,
            "readback_s": readback,
            "diverged_at": diverged_at,
            "final_loss": finite(curve[-1]) if curve else None,
        }
        return run, curve, model, first_epoch

    def accuracy(self, model):
        with self.torch.no_grad():
            correct = (model(self.test_x).argmax(1) == self.test_y).sum().item()
        return correct / len(self.test_y)

    def peak_memory(self):
        if self.device.type == "cuda":
            mib = self.torch.cuda.max_memory_reserved(self.device) / 2**20
            return mib, "peak GPU memory reserved by PyTorch's allocator (this process)"
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kib / 1024, "peak RSS of the worker process (Python and PyTorch included)"

    def run(self):
        epochs = self.config["epochs"]
        warmup = self.warmup_epochs  # at most `epochs`: hwbench checked the request
        costs = []
        for i, every in enumerate(self.policies):
            run, _, _, first_epoch = self.train(every, 0, warmup, time_first_epoch=i == 0, limit_s=WARMUP_LIMIT_S)
            # The first warm-up's first epoch is the cold one: it is not what an epoch costs.
            first = first_epoch or 0.0
            warm_epochs = max(1, run["epochs"] - (1 if i == 0 else 0))
            costs.append(max(0.0, run["total_s"] - first) * 1e6 / warm_epochs)
            if i == 0:
                send(
                    event="ready",
                    name=self.name,
                    framework=f"PyTorch {self.torch.__version__}",
                    open_ms=self.open_ms,
                    setup_ms=self.setup_ms,
                    first_epoch_ms=(first_epoch or 0.0) * 1e3,
                )
        send(event="calibrated", per_epoch_us=costs)
        # Rounds as the parent asks for them, the policies interleaved like hwbench's own sessions:
        # drifts weigh on every policy alike.
        last = None
        repeat = 0
        while True:
            step = json.loads(sys.stdin.readline())
            if step.get("step") != "round":
                break
            repeat += 1
            rounds_epochs = max(1, min(epochs, int(step["epochs"])))
            # Each round starts one policy later, as hwbench's own sessions do.
            start = (repeat - 1) % len(self.policies)
            for every in self.policies[start:] + self.policies[:start]:
                run, curve, model, _ = self.train(every, repeat, rounds_epochs)
                run["repeat"] = repeat
                send(event="run", **run)
                last = (run, curve, model)
        peak, kind = self.peak_memory()
        run, curve, model = last if last else (None, [], None)
        send(
            event="finished",
            final_loss=run["final_loss"] if run else None,
            test_accuracy=self.accuracy(model) if model is not None else None,
            loss_curve=sample_curve(curve, CURVE_POINTS),
            loss_peak=curve_peak(curve),
            peak_memory_mib=peak,
            memory_kind=kind,
        )


# --- hwbench scale -------------------------------------------------------------------------------

MASK = 0xFFFFFFFF
MULTIPLIER = 0x045D9F3B
MOST_EPOCHS = 10_000_000
STREAMS = {"features": 1, "classes": 2, "fc1_weight": 3, "fc1_bias": 4, "fc2_weight": 5, "fc2_bias": 6}


def mix(x):
    """hwbench's 32-bit hash (synthetic.rs): on Python ints or int64 tensors, every product < 2**59."""
    x = (((x >> 16) ^ x) * MULTIPLIER) & MASK
    x = (((x >> 16) ^ x) * MULTIPLIER) & MASK
    return (x >> 16) ^ x


def synthetic_hashes(torch, seed, stream, count):
    base = mix((seed * 0x9E37 + STREAMS[stream]) & MASK)
    return mix(torch.arange(count, dtype=torch.int64) ^ base)


def synthetic_uniform(torch, seed, stream, count):
    """`count` float32 values uniform in [-1, 1), bit for bit those of hwbench's generator."""
    return (synthetic_hashes(torch, seed, stream, count) >> 8).to(torch.float32) * (2.0 / 16777216.0) - 1.0


def synthetic_weights(torch, seed, stream, count, fan_in):
    bound = torch.tensor(1.0 / math.sqrt(fan_in), dtype=torch.float32)
    return synthetic_uniform(torch, seed, stream, count) * bound


def available_memory_mib():
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def size_key(size):
    return (size["inputs"], size["hidden"], size["classes"], size["rows"])


class Ladder:
    def __init__(self, torch, request):
        self.torch = torch
        self.seed = request["seed"]
        self.lr = request["lr"]
        self.timing = request["timing"]
        self.x = self.y = self.init = None
        self.points = {}
        self.device, self.name, self.open_ms = open_device(torch, request["device"])
        if self.device.type == "cuda":
            # FP32 matrix products, as hwbench's CUDA column (and PyTorch's default).
            torch.backends.cuda.matmul.allow_tf32 = False
            self.free_mib = torch.cuda.mem_get_info(self.device)[0] / 2**20
        else:
            self.free_mib = available_memory_mib()

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def prepare(self, size):
        torch, seed = self.torch, self.seed
        rows, inputs, hidden, classes = size["rows"], size["inputs"], size["hidden"], size["classes"]
        self.x = synthetic_uniform(torch, seed, "features", rows * inputs).reshape(rows, inputs).to(self.device)
        self.y = (synthetic_hashes(torch, seed, "classes", rows) % classes).to(self.device)
        self.init = [
            synthetic_weights(torch, seed, "fc1_weight", hidden * inputs, inputs).reshape(hidden, inputs),
            synthetic_weights(torch, seed, "fc1_bias", hidden, inputs),
            synthetic_weights(torch, seed, "fc2_weight", classes * hidden, hidden).reshape(classes, hidden),
            synthetic_weights(torch, seed, "fc2_bias", classes, hidden),
        ]
        self.size = size

    def train(self, epochs, limit_s=None):
        """One run from the initial weights: (epochs trained, seconds, losses)."""
        torch, size = self.torch, self.size
        model = torch.nn.Sequential(
            torch.nn.Linear(size["inputs"], size["hidden"]), torch.nn.ReLU(), torch.nn.Linear(size["hidden"], size["classes"])
        ).to(self.device)
        with torch.no_grad():
            for parameter, value in zip([model[0].weight, model[0].bias, model[2].weight, model[2].bias], self.init):
                parameter.copy_(value)
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr)
        criterion = torch.nn.CrossEntropyLoss()
        losses = torch.zeros(epochs, device=self.device)
        trained = epochs
        self.sync()
        start = time.perf_counter()
        last_beat = start
        for epoch in range(1, epochs + 1):
            loss = criterion(model(self.x), self.y)
            losses[epoch - 1] = loss.detach()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            now = time.perf_counter()
            if now - last_beat >= HEARTBEAT_S:
                send(event="progress", epoch=epoch)
                last_beat = now
            if limit_s is not None and now - start >= limit_s:
                trained = epoch
                break
        curve = losses[:trained].tolist()
        self.sync()
        return trained, time.perf_counter() - start, curve

    def memory_mib(self):
        if self.device.type == "cuda":
            return self.torch.cuda.max_memory_reserved(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def prepare_point(self, size, max_epoch_s):
        """Makes the point's data, times its cold epoch and a warm-up: the `prepared` answer. The
        data stays ready (in `self.points`) for the runs hwbench asks for, in any order."""
        self.prepare(size)
        timing = self.timing
        _, cold, curve = self.train(1)
        point = {
            "size": size, "kernels": "PyTorch", "cold_epoch_s": cold, "warm_epoch_s": cold,
            "over_budget": False, "epochs": 0, "first_loss": finite(curve[0]) if curve else None,
            "memory_mib": None,
        }
        if cold <= 3 * max_epoch_s:
            epochs, seconds, _ = self.train(MOST_EPOCHS, limit_s=timing["warmup_s"])
            point["warm_epoch_s"] = seconds / epochs
        point["memory_mib"] = self.memory_mib()
        warm = point["warm_epoch_s"]
        if cold > 3 * max_epoch_s or warm > max_epoch_s:
            point["over_budget"] = True
        else:
            run_s = timing["work_s"] / max(1, timing["runs"]["max"])
            point["epochs"] = min(MOST_EPOCHS, max(1, math.ceil(run_s / warm))) if warm > 0 else MOST_EPOCHS
            self.points[size_key(size)] = (self.x, self.y, self.init, size, point["epochs"])
        self.x = self.y = self.init = None
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()
        return point

    def run(self):
        send(
            event="ready", name=self.name, framework=f"PyTorch {self.torch.__version__}",
            open_ms=self.open_ms, setup_ms=None, first_epoch_ms=None, memory_free_mib=self.free_mib,
        )
        while True:
            step = json.loads(sys.stdin.readline())
            kind = step.get("step")
            if kind == "point":
                send(event="prepared", **self.prepare_point(step["size"], step["max_epoch_s"]))
            elif kind == "run":
                ready = self.points.get(size_key(step["size"]))
                if ready is None:
                    raise ValueError("asked to time a run of a size that is not prepared")
                self.x, self.y, self.init, self.size, epochs = ready
                _, seconds, curve = self.train(epochs)
                self.x = self.y = self.init = None
                send(event="timed", size=step["size"], seconds=seconds,
                     final_loss=finite(curve[-1]) if curve else None, memory_mib=self.memory_mib())
            else:
                send(event="finished")
                return


def main():
    send(event="hello", protocol=PROTOCOL, hwbench_version=os.environ.get("HWBENCH_VERSION", "unknown"), backend="pytorch")
    try:
        request = json.loads(sys.stdin.readline())
    except ValueError as e:
        send(event="error", message=f"unreadable request from hwbench: {e}")
        return 1
    if request.get("protocol") != PROTOCOL:
        send(event="error", message=f"hwbench speaks worker protocol {request.get('protocol')}, this worker speaks {PROTOCOL}")
        return 1
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install failing on import
        send(event="error", message=f"cannot import torch: {type(e).__name__}: {e}")
        return 1
    try:
        (Ladder if request.get("job") == "scale" else Session)(torch, request).run()
    except Exception as e:
        first_line = (str(e).strip().splitlines() or [""])[0]
        send(event="error", message=f"{type(e).__name__}: {first_line}".rstrip(": "))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
