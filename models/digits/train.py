#!/usr/bin/env python3
"""Train the shipped digits MLPs (64 -> hidden... -> 10, ReLU) on scikit-learn's 8x8 digits.

Run by hand (needs numpy and safetensors: `pip install numpy safetensors`):

    python3 models/digits/train.py            # writes models/digits/mlp.safetensors + golden.json
    python3 models/digits/train.py --family   # writes models/digits/family/mlp-w{W}.safetensors

Data: `digits.csv.gz` beside this script, copied from scikit-learn 1.9.1
(`sklearn/datasets/data/digits.csv.gz`, BSD-3-Clause; the UCI optical recognition of
handwritten digits test set): 1797 rows of 64 pixel values in 0..16 and the label.
Split: rows whose index is a multiple of 5 are held out (360 rows); the rest train.
Inputs are scaled by 1/16. Training is plain NumPy (Adam, minibatch 64, fixed seed), so the
result is reproducible without any framework (the tensors bit for bit; the safetensors header
may list its metadata keys in another order). The golden file holds f64 NumPy logits of
the first 8 held-out rows, which the Rust tests compare against.

`--family` trains the same recipe at hidden widths 4..256 (two hidden layers each), the models
`tally pareto` runs to plot held-out accuracy against FPO per example (the Green AI paper's
Figure 4 in miniature); `family/family.json` records NumPy's accuracy for each.
"""
import argparse
import gzip
import json
import os

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


def load():
    with gzip.open(os.path.join(HERE, "digits.csv.gz"), "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    x, y = rows[:, :64] / 16.0, rows[:, 64].astype(np.int64)
    test = np.arange(len(rows)) % 5 == 0
    return x[~test], y[~test], x[test], y[test]


def forward(params, x):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w.T + b
        if i + 1 < len(params):
            h = np.maximum(h, 0.0)
    return h


def train(widths, epochs, seed):
    xtr, ytr, xte, yte = load()
    rng = np.random.default_rng(seed)
    dims = [64, *widths, 10]
    params = [
        (rng.normal(0, np.sqrt(2.0 / i), (o, i)), np.zeros(o)) for i, o in zip(dims[:-1], dims[1:])
    ]
    flat = [p for wb in params for p in wb]
    m = [np.zeros_like(p) for p in flat]
    v = [np.zeros_like(p) for p in flat]
    lr, b1, b2, step = 1e-3, 0.9, 0.999, 0
    for _ in range(epochs):
        order = rng.permutation(len(xtr))
        for s in range(0, len(order), 64):
            idx = order[s : s + 64]
            xb, yb = xtr[idx], ytr[idx]
            acts = [xb]
            h = xb
            for i, (w, b) in enumerate(params):
                h = h @ w.T + b
                if i + 1 < len(params):
                    h = np.maximum(h, 0.0)
                acts.append(h)
            p = np.exp(h - h.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g = p
            g[np.arange(len(yb)), yb] -= 1.0
            g /= len(yb)
            grads = []
            for i in reversed(range(len(params))):
                w, _ = params[i]
                grads.append((g.T @ acts[i], g.sum(0)))
                if i > 0:
                    g = (g @ w) * (acts[i] > 0)
            grads = [p for wb in reversed(grads) for p in wb]
            step += 1
            for j, (p_, g_) in enumerate(zip(flat, grads)):
                m[j] = b1 * m[j] + (1 - b1) * g_
                v[j] = b2 * v[j] + (1 - b2) * g_ * g_
                mh, vh = m[j] / (1 - b1**step), v[j] / (1 - b2**step)
                p_ -= lr * mh / (np.sqrt(vh) + 1e-8)
    acc = float((forward(params, xte).argmax(1) == yte).mean())
    return params, acc, xte


FAMILY_WIDTHS = [4, 8, 16, 32, 64, 128, 256]


def save(params, acc, widths, path):
    tensors = {}
    for i, (w, b) in enumerate(params):
        tensors[f"layers.{i}.weight"] = w.astype(np.float32)
        tensors[f"layers.{i}.bias"] = b.astype(np.float32)
    meta = {
        "architecture": "digits-mlp",
        "hidden": ",".join(map(str, widths)),
        "activation": "relu",
        "input_scale": "0.0625",
        "test_accuracy": f"{acc:.6f}",
        "trained_by": "models/digits/train.py",
    }
    save_file(tensors, path, metadata=meta)
    return tensors


def family(epochs, seed):
    out = os.path.join(HERE, "family")
    os.makedirs(out, exist_ok=True)
    record = []
    for w in FAMILY_WIDTHS:
        params, acc, _ = train([w, w], epochs, seed)
        name = f"mlp-w{w}.safetensors"
        save(params, acc, [w, w], os.path.join(out, name))
        record.append({"file": name, "hidden": [w, w], "test_accuracy": acc})
        print(f"width {w:>3}: test_accuracy={acc:.4f}")
    with open(os.path.join(out, "family.json"), "w") as f:
        json.dump({"trained_by": "models/digits/train.py --family", "models": record}, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", action="store_true", help="train the width family instead")
    ap.add_argument("--widths", default="128,128", help="hidden widths, comma-separated")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "mlp.safetensors"))
    ap.add_argument("--golden", default=os.path.join(HERE, "golden.json"))
    a = ap.parse_args()
    if a.family:
        family(a.epochs, a.seed)
        return
    widths = [int(w) for w in a.widths.split(",") if w]
    params, acc, xte = train(widths, a.epochs, a.seed)
    tensors = save(params, acc, widths, a.out)
    # Golden logits from the f32 weights as stored, evaluated in f64.
    stored = [(tensors[f"layers.{i}.weight"].astype(np.float64), tensors[f"layers.{i}.bias"].astype(np.float64)) for i in range(len(params))]
    golden = {
        "rows": "first 8 held-out rows (index % 5 == 0)",
        "logits": forward(stored, xte[:8]).tolist(),
        "test_accuracy": acc,
    }
    with open(a.golden, "w") as f:
        json.dump(golden, f, indent=1)
    print(f"widths={widths} test_accuracy={acc:.4f} -> {a.out}")


if __name__ == "__main__":
    main()
