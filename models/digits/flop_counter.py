#!/usr/bin/env python3
"""PyTorch's FlopCounterMode on the shipped digits MLP (run by hand; needs torch).

    python3 models/digits/flop_counter.py     # writes models/digits/flop_counter.json

Loads `mlp.safetensors` into torch Linear layers with ReLU between them, runs the 360
held-out images (index % 5 == 0, scaled by 1/16, as train.py splits them), and records the
FLOPs FlopCounterMode counts (matrix products only) and the accuracy torch gets. The Rust
tests hold Tally's executed matmul FPO to this count.
"""
import gzip
import json
import os

import numpy as np
import torch
from safetensors.numpy import load_file
from torch.utils.flop_counter import FlopCounterMode

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    with gzip.open(os.path.join(HERE, "digits.csv.gz"), "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    held = rows[np.arange(len(rows)) % 5 == 0]
    x = torch.tensor(held[:, :64] / 16.0, dtype=torch.float32)
    y = held[:, 64].astype(np.int64)
    w = load_file(os.path.join(HERE, "mlp.safetensors"))
    layers = []
    i = 0
    while f"layers.{i}.weight" in w:
        lin = torch.nn.Linear(w[f"layers.{i}.weight"].shape[1], w[f"layers.{i}.weight"].shape[0])
        lin.weight.data = torch.tensor(w[f"layers.{i}.weight"])
        lin.bias.data = torch.tensor(w[f"layers.{i}.bias"])
        layers += [lin, torch.nn.ReLU()]
        i += 1
    model = torch.nn.Sequential(*layers[:-1]).eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        logits = model(x)
    acc = float((logits.argmax(1).numpy() == y).mean())
    out = {
        "made_by": "models/digits/flop_counter.py",
        "torch": torch.__version__,
        "batch": int(x.shape[0]),
        "flop_counter_total": int(fc.get_total_flops()),
        "by_op": {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()},
        "accuracy": acc,
    }
    with open(os.path.join(HERE, "flop_counter.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(out)


if __name__ == "__main__":
    main()
