#!/usr/bin/env python3
"""The reference PyTorch loop of the iris exercise, timed like `hwbench train-compare`.

4 -> 10 -> 3 MLP (ReLU), CrossEntropyLoss, SGD lr=0.01, full batch, 20000 epochs, on
scikit-learn's iris with train_test_split(test_size=0.2, random_state=42) and MinMax scaling
fitted on the training rows; initial weights from torch.manual_seed(0).

For every sync policy (read the loss back every k epochs with loss.item(); 0 = keep the losses on
the device and read them once at the end) it runs one untimed warm-up and --repeats timed runs,
synchronising the device before reading the clock, and prints min / median / max per epoch.

    python3 scripts/pytorch_baseline.py                 # CPU, torch's default threads
    python3 scripts/pytorch_baseline.py --threads 1     # CPU, one thread
    python3 scripts/pytorch_baseline.py --device cuda   # GPU
    python3 scripts/pytorch_baseline.py --json          # machine-readable

Needs torch and scikit-learn.
"""

import argparse
import json
import statistics
import sys
import time

import torch
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler


def build_data(device):
    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
    scaler = MinMaxScaler().fit(x_train)
    as_x = lambda a: torch.tensor(scaler.transform(a), dtype=torch.float32, device=device)
    as_y = lambda a: torch.tensor(a, dtype=torch.long, device=device)
    return as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test)


class Net(torch.nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, hidden)
        self.fc2 = torch.nn.Linear(hidden, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(data, device, epochs, every, hidden, lr):
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(0)
    model = Net(hidden).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    criterion = torch.nn.CrossEntropyLoss()
    losses, kept = [], []
    sync(device)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        loss = criterion(model(x_train), y_train)
        if every and epoch % every == 0:
            losses.append(loss.item())  # the reference loop's readback
        else:
            kept.append(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if kept:
        torch.stack(kept).cpu()  # read what stayed on the device once, at the end
    sync(device)
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    final = losses[-1] if losses and epochs % every == 0 else kept[-1].item()
    return elapsed, final, accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    parser.add_argument("--epochs", type=int, default=20000)
    parser.add_argument("--sync-every", default="1,100,2000,0")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup-epochs", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = build_data(device)
    policies = [int(k) for k in args.sync_every.split(",")]
    rows = []
    for every in policies:
        train(data, device, min(args.warmup_epochs, args.epochs), every, args.hidden, args.lr)
        runs = [train(data, device, args.epochs, every, args.hidden, args.lr) for _ in range(args.repeats)]
        per_epoch = [elapsed * 1e6 / args.epochs for elapsed, _, _ in runs]
        rows.append({
            "sync_every": every,
            "per_epoch_us": {"min": min(per_epoch), "median": statistics.median(per_epoch), "max": max(per_epoch)},
            "final_loss": runs[-1][1],
            "test_accuracy": runs[-1][2],
        })
    report = {
        "torch_version": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "policies": rows,
    }
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
        return
    print(f"PyTorch {torch.__version__} on {device} ({torch.get_num_threads()} threads), {args.epochs} epochs, "
          f"{args.repeats} timed runs after a warm-up")
    print(f"{'policy':<18} {'per epoch (median)':>18} {'min':>9} {'max':>9} {'final loss':>11} {'test acc':>9}")
    for row in rows:
        label = "sync never" if row["sync_every"] == 0 else f"sync every {row['sync_every']}"
        s = row["per_epoch_us"]
        print(f"{label:<18} {s['median']:>15.1f} µs {s['min']:>6.1f} µs {s['max']:>6.1f} µs "
              f"{row['final_loss']:>11.4f} {row['test_accuracy']:>9.4f}")


if __name__ == "__main__":
    main()
