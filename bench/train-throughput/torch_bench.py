"""PyTorch CPU baseline for bench/train-throughput: same architectures, batch and optimizer
(SGD) as run.ts, --threads N threads (default 1: torch.set_num_threads). Prints one JSON object per model on stdout:
{"model": ..., "engine": "torch", "batch": 64, "samples_per_s": ..., "samples_per_cpu_s": ...}
(wall-clock and CPU-time throughput).
Usage: OMP_NUM_THREADS=1 python3 torch_bench.py --batch 64 --warmup 2 --steps 10 lenet simple_cnn fmnist_cnn cifar10_cnn
Run it with the OPENBLAS_CORETYPE our OpenBLAS kernels use (run.ts passes it): Debian's torch does its
generic BLAS through the system OpenBLAS once libopenblas0-pthread is installed (its convolutions use MKL-DNN).
"""
import argparse
import json
import os
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:
    print(json.dumps({"error": "torch is not installed (apt-get install -y python3-torch)"}))
    sys.exit(3)

# bench:federation's CNN, defined (and initialized as the fmnist_cnn builtin is) in one place.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "federation"))
from federation_torch import build as build_fmnist_cnn  # noqa: E402


def build(name):
    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 4 * 4, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)), (1, 28, 28)
    if name == "simple_cnn":
        return nn.Sequential(
            nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Linear(128, 10)), (3, 32, 32)
    if name == "fmnist_cnn":
        return build_fmnist_cnn(), (1, 28, 28)
    if name == "cifar10_cnn":
        layers, c_in = [], 3
        for i, c in enumerate([64, 128, 256, 512]):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(512, 10)]
        return nn.Sequential(*layers), (3, 32, 32)
    raise SystemExit(f"unknown model {name!r}; expected lenet, simple_cnn, fmnist_cnn or cifar10_cnn")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("models", nargs="+")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for name in a.models:
        model, shape = build(name)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        loss_fn = nn.CrossEntropyLoss()
        x = torch.randn(a.batch, *shape)
        y = torch.randint(0, 10, (a.batch,))

        def step():
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        for _ in range(a.warmup):
            step()
        t0 = time.perf_counter()
        c0 = time.process_time()
        for _ in range(a.steps):
            step()
        cpu = time.process_time() - c0
        dt = time.perf_counter() - t0
        print(json.dumps({"model": name, "engine": "torch", "batch": a.batch,
                          "samples_per_s": a.batch * a.steps / dt,
                          "samples_per_cpu_s": a.batch * a.steps / cpu,
                          "threads": torch.get_num_threads(),
                          "torch_version": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
