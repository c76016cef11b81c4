#!/usr/bin/env python3
"""Golden outputs for all-MiniLM-L6-v2, from sentence-transformers on PyTorch (run by hand).

    models/fetch minilm
    pip install torch sentence-transformers      # any recent versions; the run records them
    python3 models/minilm/golden.py              # writes models/minilm/golden.json

The model folder defaults to ${TALLY_CACHE:-~/.cache/tally}/all-minilm-l6-v2 (pass another as
the first argument). The JSON holds, for a fixed set of sentences, the token ids and attention
mask the tokenizer gives the padded batch, the f32 sentence embeddings (mean pooling, L2
normalised), and PyTorch's FlopCounterMode totals (matmul and attention products only) for the
padded batch and for the first sentence alone. CI never runs this; the Rust tests compare.
"""
import json
import os
import sys

import sentence_transformers
import torch
import transformers
from sentence_transformers import SentenceTransformer
from torch.utils.flop_counter import FlopCounterMode

HERE = os.path.dirname(os.path.abspath(__file__))
SENTENCES = [
    "Tally counts every floating-point operation its kernels execute.",
    "A cat sat on the mat.",
    "Green AI asks that results report their computational cost alongside accuracy, "
    "so that efficiency becomes an evaluation criterion.",
]


def flops(model, features):
    with FlopCounterMode(display=False) as fc:
        with torch.no_grad():
            model(features)
    by_op = {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()}
    return int(fc.get_total_flops()), by_op


def main():
    cache = os.environ.get("TALLY_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "tally"))
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(cache, "all-minilm-l6-v2")
    torch.manual_seed(0)
    model = SentenceTransformer(folder, device="cpu")
    model.eval()
    features = model.tokenize(SENTENCES)
    with torch.no_grad():
        out = model(dict(features))
    emb = out["sentence_embedding"].float()
    total, by_op = flops(model, dict(features))
    single = model.tokenize(SENTENCES[:1])
    single_total, _ = flops(model, dict(single))
    golden = {
        "made_by": "models/minilm/golden.py",
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
        "sentences": SENTENCES,
        "input_ids": features["input_ids"].tolist(),
        "attention_mask": features["attention_mask"].tolist(),
        "embeddings": emb.tolist(),
        "flop_counter": {
            "batch": len(SENTENCES),
            "seq": int(features["input_ids"].shape[1]),
            "matmul_fpo": total,
            "by_op": by_op,
            "single_seq": int(single["input_ids"].shape[1]),
            "single_matmul_fpo": single_total,
        },
    }
    with open(os.path.join(HERE, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
    print(f"batch {len(SENTENCES)}x{golden['flop_counter']['seq']}: FlopCounterMode {total} FLOPs; "
          f"single 1x{golden['flop_counter']['single_seq']}: {single_total}")


if __name__ == "__main__":
    main()
