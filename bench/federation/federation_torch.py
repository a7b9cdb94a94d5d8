"""PyTorch baseline of bench:federation: the same serial FedAvg loop in plain PyTorch.

Fashion-MNIST from the IDX files (normalized with mean 0.286, std 0.353 as @oiafed/datasets
does), the same CNN (conv 1->32 3x3 same, pool, conv 32->64 3x3 same, pool, fc 3136->128,
dropout 0.5, fc 10), the first `fraction` of the training images split IID into `learners`
equal random shards, per round every learner trains 1 epoch (batch 64, SGD lr 0.01, shuffled)
from the global weights (initialized as fmnist_cnn is), FedAvg weighted by shard size, then test accuracy of the global model
on the whole test set. torch.set_num_threads(--threads).

Prints one JSON line: {"engine": "torch", "threads", "s_per_round", "cpu_s_per_round",
"s_by_round", "cpu_s_by_round", "accuracy_by_round", "final_accuracy", "peak_rss_mb", ...}.
"""
import argparse
import gzip
import json
import os
import resource
import sys
import time

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as e:
    print(json.dumps({"error": f"{e.name} is not installed (apt-get install -y python3-torch)"}))
    sys.exit(3)

MEAN, STD = 0.286, 0.353


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(data_dir, name):
    for candidate in (os.path.join(data_dir, name), os.path.join(data_dir, name + ".gz")):
        if os.path.exists(candidate):
            return candidate
    raise SystemExit(f"{name}[.gz] not found in {data_dir}")


def load(data_dir, prefix):
    x = read_idx(find(data_dir, f"{prefix}-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = read_idx(find(data_dir, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    x = (x - MEAN) / STD
    return torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)


def build():
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    # Initialized as fmnist_cnn is (He-normal convolutions, Glorot-uniform dense layers, zero
    # biases): with plain SGD the starting scale decides the early rounds, and PyTorch's default
    # (kaiming_uniform with a=sqrt(5), about 2.4x smaller) would compare initializations, not engines.
    for m in model:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def local_train(model, x, y, generator):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    order = torch.randperm(len(x), generator=generator)
    for start in range(0, len(x), 64):
        idx = order[start:start + 64]
        opt.zero_grad()
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()


def evaluate(model, x, y):
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), 256):
            correct += (model(x[start:start + 256]).argmax(1) == y[start:start + 256]).sum().item()
    return correct / len(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--learners", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fraction", type=float, default=1.0)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    generator = torch.Generator().manual_seed(1)
    x_train, y_train = load(a.data_dir, "train")
    x_test, y_test = load(a.data_dir, "t10k")
    n = max(1, round(len(x_train) * min(1.0, a.fraction)))
    x_train, y_train = x_train[:n], y_train[:n]
    shards = torch.randperm(n, generator=generator).chunk(a.learners)
    parts = [(x_train[s], y_train[s]) for s in shards]
    global_model = build()
    local = build()
    s_by_round, cpu_by_round, acc_by_round = [], [], []
    for _ in range(a.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        total = None
        for x, y in parts:
            local.load_state_dict(global_model.state_dict())
            local_train(local, x, y, generator)
            weighted = {k: v.detach() * (len(x) / n) for k, v in local.state_dict().items()}
            total = weighted if total is None else {k: total[k] + weighted[k] for k in total}
        global_model.load_state_dict(total)
        acc_by_round.append(evaluate(global_model, x_test, y_test))
        s_by_round.append(time.perf_counter() - t0)
        cpu_by_round.append(time.process_time() - c0)
    print(json.dumps({
        "engine": "torch", "threads": torch.get_num_threads(), "rounds": a.rounds, "learners": a.learners,
        "train_samples": n,
        "s_per_round": sum(s_by_round) / len(s_by_round), "cpu_s_per_round": sum(cpu_by_round) / len(cpu_by_round),
        "s_by_round": s_by_round, "cpu_s_by_round": cpu_by_round,
        "accuracy_by_round": acc_by_round, "final_accuracy": acc_by_round[-1],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "torch_version": torch.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
