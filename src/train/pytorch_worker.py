"""hwbench's PyTorch worker: the reference iris loop, measured the way hwbench measures candle.

hwbench ships this file inside its executable and runs it for `train-compare --with-pytorch` as
`python3 -I <private copy of this file>`. It speaks hwbench's worker protocol (version 2): one
JSON request line on stdin (the session plus the prepared rows), JSON message lines on stdout
(`hello`, `ready`, `progress` at least every 2 s while training, one `run` per timed run,
`finished` with a sampled loss curve, or `error` with a one-line reason).

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

PROTOCOL = 2
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


class Session:
    def __init__(self, torch, request):
        self.torch = torch
        session = request["session"]
        self.config = session["config"]
        self.policies = session["policies"]
        self.repeats = session["repeats"]
        self.warmup_epochs = session["warmup_epochs"]
        self.calibrate = session.get("calibrate", False)
        spec = session["device"]
        opened = time.perf_counter()
        if spec["kind"] == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("PyTorch sees no CUDA device (torch.cuda.is_available() is False)")
            if spec["ordinal"] >= torch.cuda.device_count():
                raise RuntimeError(f"PyTorch sees {torch.cuda.device_count()} CUDA device(s), not cuda:{spec['ordinal']}")
            self.device = torch.device("cuda", spec["ordinal"])
            torch.cuda.init()
            torch.zeros(1, device=self.device)  # creates the context
            self.name = torch.cuda.get_device_name(self.device)
        elif spec["kind"] == "cpu":
            torch.set_num_threads(spec["threads"])
            self.device = torch.device("cpu")
            self.name = cpu_name()
        else:
            raise RuntimeError(f"this PyTorch worker cannot train on a {spec['kind']} device")
        self.sync()
        self.open_ms = (time.perf_counter() - opened) * 1e3

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
        warmup = max(1, min(self.warmup_epochs, epochs))
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
        if self.calibrate:
            send(event="calibrated", per_epoch_us=costs)
            epochs = max(1, min(epochs, int(json.loads(sys.stdin.readline())["epochs"])))
        # Interleaved like hwbench's own sessions: drifts weigh on every policy alike.
        last = None
        for repeat in range(1, self.repeats + 1):
            for every in self.policies:
                run, curve, model, _ = self.train(every, repeat, epochs)
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
        Session(torch, request).run()
    except Exception as e:
        first_line = (str(e).strip().splitlines() or [""])[0]
        send(event="error", message=f"{type(e).__name__}: {first_line}".rstrip(": "))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
