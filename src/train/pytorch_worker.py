"""hwbench's PyTorch worker: the reference iris loop, measured the way hwbench measures candle.

hwbench ships this file inside its executable and runs it for `train-compare --with-pytorch` as
`python3 -I <private copy of this file>`. It speaks hwbench's worker protocol (version 1): one
JSON request line on stdin (the session plus the prepared rows), JSON message lines on stdout
(`hello`, `ready`, one `run` per timed run, `finished`, or `error` with a one-line reason).

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

PROTOCOL = 1


def send(**message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def finite(value):
    return value if value is not None and math.isfinite(value) else None


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

    def train(self, every, epochs, time_first_epoch=False):
        torch = self.torch
        model = self.model()
        optimizer = torch.optim.SGD(model.parameters(), lr=self.config["lr"])
        criterion = torch.nn.CrossEntropyLoss()
        losses = torch.zeros(epochs, device=self.device)
        readback, syncs, diverged_at, trained, first_epoch = 0.0, 0, None, epochs, None

        self.sync()
        start = time.perf_counter()
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
        for i, every in enumerate(self.policies):
            _, _, _, first_epoch = self.train(every, warmup, time_first_epoch=i == 0)
            if i == 0:
                send(
                    event="ready",
                    name=self.name,
                    framework=f"PyTorch {self.torch.__version__}",
                    open_ms=self.open_ms,
                    setup_ms=self.setup_ms,
                    first_epoch_ms=(first_epoch or 0.0) * 1e3,
                )
        # Interleaved like hwbench's own sessions: drifts weigh on every policy alike.
        last = None
        for repeat in range(1, self.repeats + 1):
            for every in self.policies:
                run, curve, model, _ = self.train(every, epochs)
                run["repeat"] = repeat
                send(event="run", **run)
                last = (run, curve, model)
        peak, kind = self.peak_memory()
        run, curve, model = last if last else (None, [], None)
        send(
            event="finished",
            final_loss=run["final_loss"] if run else None,
            test_accuracy=self.accuracy(model) if model is not None else None,
            loss_curve=[finite(v) for v in curve],
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
