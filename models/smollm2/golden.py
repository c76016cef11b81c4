#!/usr/bin/env python3
"""Golden outputs for SmolLM2-135M-Instruct, from transformers on PyTorch (run by hand).

    models/fetch smollm2
    pip install torch transformers gguf accelerate   # any recent versions; the run records them
    python3 models/smollm2/golden.py             # writes models/smollm2/golden.json

The model folder defaults to ${TALLY_CACHE:-~/.cache/tally}/smollm2 (pass another as the first
argument); transformers dequantises its `model.gguf` (Q4_1/Q8_0 blocks) to f32. The JSON holds,
for a fixed chat-free prompt: its token ids, the last position's logits (top 20, and every 64th
entry of the full vector), the greedy 20 generated token ids and their text, and PyTorch's
FlopCounterMode total (matmul and attention products) for the prompt's forward pass. CI never
runs this; the Rust tests compare.
"""
import json
import os
import sys

import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPT = "The capital of France is"
NEW_TOKENS = 20
STRIDE = 64


def main():
    cache = os.environ.get("TALLY_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "tally"))
    folder = sys.argv[1] if len(sys.argv) > 1 else os.path.join(cache, "smollm2")
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file="model.gguf")
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file="model.gguf", dtype=torch.float32)
    model.eval()
    ids = tok(PROMPT, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits[0, -1].float()
    with FlopCounterMode(display=False) as fc:
        with torch.no_grad():
            model(ids)
    by_op = {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()}
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=NEW_TOKENS, do_sample=False, num_beams=1,
                             pad_token_id=tok.eos_token_id)
    new = out[0, ids.shape[1]:].tolist()
    top = torch.topk(logits, 20)
    golden = {
        "made_by": "models/smollm2/golden.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "prompt": PROMPT,
        "input_ids": ids[0].tolist(),
        "last_logits_top20": {"indices": top.indices.tolist(), "values": top.values.tolist()},
        # The full vector (49152 values) would make the file ~0.5 MB; every 64th is kept.
        "last_logits_stride": STRIDE,
        "last_logits_strided": [round(float(x), 6) for x in logits[::STRIDE]],
        "generated_ids": new,
        "generated_text": tok.decode(new),
        "flop_counter": {"batch": 1, "seq": int(ids.shape[1]), "matmul_fpo": int(fc.get_total_flops()),
                         "by_op": by_op},
    }
    with open(os.path.join(HERE, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
    print(f"prompt {ids[0].tolist()}; generated {tok.decode(new)!r}; FlopCounterMode {golden['flop_counter']['matmul_fpo']}")


if __name__ == "__main__":
    main()
