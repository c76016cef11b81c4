#!/usr/bin/env python3
"""Golden outputs for MobileNetV2 (torchvision, ImageNet weights), run by hand.

    models/fetch mobilenet
    pip install torch torchvision pillow safetensors scikit-learn   # the run records versions
    python3 models/mobilenet/golden.py     # writes golden.json and china_224.safetensors here

The checkpoint defaults to ${TALLY_CACHE:-~/.cache/tally}/mobilenet-v2/model.safetensors (what
models/fetch converts); pass the wheel's original mobilenet_v2-b0353104.pth as the first argument
to check against torch's own reader instead (the committed golden.json was made that way; both give
identical tensors). Two inputs:

1. `synthetic`: a (2, 3, 224, 224) tensor whose element at flat (row-major) index i is
   sin(0.001 * i) computed in float64 and rounded to float32, so Rust rebuilds it bit for bit
   with `((i as f64) * 0.001).sin() as f32`. Its 2 x 1000 logits (rounded to 1e-6), top-5
   per row, and PyTorch's FlopCounterMode total (convolutions and the classifier matmul only)
   are recorded.
2. `china`: scikit-learn's datasets/images/china.jpg, preprocessed the standard torchvision
   way (Resize(256), CenterCrop(224), ToTensor, Normalize(ImageNet mean, std)), then rounded
   to float16 and written to china_224.safetensors (tensor `image`, (3, 224, 224), f16) so
   the Rust test classifies exactly the same input. The logits recorded are the model's on
   that f16-rounded input (widened back to float32).

CI never runs this; the Rust tests (crates/tally-models/tests/mobilenet.rs) compare.
"""
import json
import math
import os
import sys

import PIL
import sklearn
import torch
import torchvision
from PIL import Image
from safetensors.torch import load_file, save_file
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPE = (2, 3, 224, 224)
PALACE = 698


def synthetic():
    n = math.prod(SHAPE)
    i = torch.arange(n, dtype=torch.float64)
    return torch.sin(i * 0.001).to(torch.float32).reshape(SHAPE)


def china():
    path = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images", "china.jpg")
    img = Image.open(path).convert("RGB")
    pre = transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    return pre(img).to(torch.float16)


def top5(logits):
    probs = torch.softmax(logits.double(), dim=-1)
    v, i = probs.topk(5)
    return [{"index": int(a), "prob": round(float(b), 6), "logit": round(float(logits[a]), 6)}
            for a, b in zip(i, v)]


def rounded(t):
    return [round(float(x), 6) for x in t]


def main():
    cache = os.environ.get("TALLY_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "tally"))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        cache, "mobilenet-v2", "model.safetensors")
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2()
    if path.endswith(".safetensors"):
        missing, unexpected = model.load_state_dict(load_file(path), strict=False)
        assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), missing
    else:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()

    x = synthetic()
    with torch.no_grad():
        with FlopCounterMode(display=False) as fc:
            logits = model(x)
    by_op = {str(k): int(v) for k, v in fc.get_flop_counts().get("Global", {}).items()}
    total = int(fc.get_total_flops())

    img = china()
    save_file({"image": img.contiguous()}, os.path.join(HERE, "china_224.safetensors"))
    with torch.no_grad():
        china_logits = model(img.float().unsqueeze(0))[0]
    china_top5 = top5(china_logits)
    assert china_top5[0]["index"] == PALACE, china_top5

    golden = {
        "made_by": "models/mobilenet/golden.py",
        "versions": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "pillow": PIL.__version__,
            "scikit-learn": sklearn.__version__,
        },
        "params": sum(p.numel() for p in model.parameters()),
        "synthetic": {
            "shape": list(SHAPE),
            "formula": "x[i] = f32(sin(0.001 * i)), i the flat row-major index, sin in float64",
            "logits": [rounded(row) for row in logits],
            "top5": [top5(row) for row in logits],
            "flop_counter": {"total": total, "by_op": by_op},
        },
        "china": {
            "input": "china_224.safetensors (image, (3, 224, 224), f16)",
            "logits": rounded(china_logits),
            "top5": china_top5,
        },
    }
    with open(os.path.join(HERE, "golden.json"), "w") as f:
        json.dump(golden, f)
        f.write("\n")
    print(f"synthetic {SHAPE}: FlopCounterMode {total} FLOPs {by_op}")
    print(f"synthetic top-5: {[[t['index'] for t in r] for r in golden['synthetic']['top5']]}")
    print(f"china top-5: {china_top5}")


if __name__ == "__main__":
    main()
