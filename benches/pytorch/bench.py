"""PyTorch's side of `benches/pytorch/compare.sh`: wall-clock per forward pass of the same
workloads `tally bench` runs, on the same checkpoints, the same input shapes and the same
thread count. Prints one line like `tally bench` does:
    bench model=... engine=pytorch passes=N median_s=... min_s=... max_s=...

    python bench.py minilm --batch 1 --seq 128 --repeat 15 --threads 2 [--attn sdpa|eager]
    python bench.py smollm2 --seq 128 --repeat 5          (prefill, logits for every position)
    python bench.py mobilenet --repeat 15

Needs torch, transformers (and gguf for SmolLM2) and torchvision; checkpoints from
`models/fetch` in ${TALLY_CACHE:-~/.cache/tally}. Not run by CI.
"""
import argparse
import os
import statistics
import time

import torch


def cache():
    return os.environ.get("TALLY_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "tally"))


def minilm(a):
    from transformers import AutoModel
    model = AutoModel.from_pretrained(os.path.join(cache(), "all-minilm-l6-v2"),
                                      attn_implementation=a.attn).eval()
    # The ids `tally bench` uses are real text; the content does not change the work.
    ids = torch.randint(1000, 29000, (a.batch or 1, a.seq))
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones_like(ids)

    def run():
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(e, dim=1)
    return run


def smollm2(a):
    from transformers import AutoModelForCausalLM
    folder = os.path.join(cache(), "smollm2")
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file="model.gguf",
                                                 dtype=torch.float32).eval()
    ids = torch.randint(100, 40000, (a.batch or 1, a.seq))
    return lambda: model(input_ids=ids, use_cache=True).logits


def mobilenet(a):
    import torchvision
    from safetensors.torch import load_file
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(load_file(os.path.join(cache(), "mobilenet-v2", "model.safetensors")),
                          strict=False)
    model.eval()
    n = (a.batch or 1) * 3 * 224 * 224
    x = torch.sin(torch.arange(n, dtype=torch.float64) * 0.001).float().reshape(-1, 3, 224, 224)
    return lambda: model(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=["minilm", "smollm2", "mobilenet"])
    p.add_argument("--batch", type=int)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    run = {"minilm": minilm, "smollm2": smollm2, "mobilenet": mobilenet}[a.model](a)
    times = []
    with torch.inference_mode():
        run()
        for _ in range(a.repeat):
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
    print(f"bench model={a.model} engine=pytorch-{torch.__version__}-{a.attn} passes={len(times)} "
          f"median_s={statistics.median(times):.9f} min_s={min(times):.9f} max_s={max(times):.9f}")


if __name__ == "__main__":
    main()
