"""PyTorch's side of `benches/pytorch/compare.sh`: wall-clock per forward pass of the same
workloads `tally bench` runs, on the same checkpoints, the same input shapes and the same
thread count. Prints one line like `tally bench` does:
    bench model=... engine=pytorch passes=N median_s=... min_s=... max_s=...

    python bench.py minilm --batch 1 --seq 128 --repeat 15 --threads 2 [--attn sdpa|eager]
    python bench.py smollm2 --seq 128 --repeat 5          (prefill, logits for every position)
    python bench.py mobilenet --repeat 15
    python bench.py smollm2 --past 128 --seq 1           (one decode step after 128 tokens)

On a GPU (`--device cuda`, timed with torch.cuda.synchronize() around each pass) the
checkpoints are usually not there: `--seeded SEED` builds each model from its configuration
with random weights, as `tally bench --seeded` does (MiniLM reads only config.json; SmolLM2's
configuration is written below; MobileNetV2 is torchvision's architecture).

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


def place(model, a):
    """The model in the asked dtype on the asked device, in eval mode."""
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[a.dtype]
    return model.to(device=a.device, dtype=dtype).eval()


def minilm(a):
    from transformers import AutoConfig, AutoModel
    folder = os.path.join(cache(), "all-minilm-l6-v2")
    if a.seeded is not None:
        torch.manual_seed(a.seeded)
        config = AutoConfig.from_pretrained(folder, attn_implementation=a.attn)
        model = AutoModel.from_config(config)
    else:
        model = AutoModel.from_pretrained(folder, attn_implementation=a.attn)
    model = place(model, a)
    # The ids `tally bench` uses are real text; the content does not change the work.
    ids = torch.randint(1000, 29000, (a.batch or 1, a.seq), device=a.device)
    ids[:, 0], ids[:, -1] = 101, 102
    mask = torch.ones_like(ids)

    def run():
        h = model(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(e, dim=1)
    return run


def smollm2(a):
    from transformers import AutoModelForCausalLM, LlamaConfig
    if a.seeded is not None:
        torch.manual_seed(a.seeded)
        # SmolLM2-135M's configuration (LlamaConfig::smollm2_135m in tally-models).
        config = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                             num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                             rms_norm_eps=1e-5, rope_theta=100000.0,
                             max_position_embeddings=8192, tie_word_embeddings=True,
                             attn_implementation=a.attn)
        model = AutoModelForCausalLM.from_config(config)
    else:
        folder = os.path.join(cache(), "smollm2")
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file="model.gguf",
                                                     dtype=torch.float32)
    model = place(model, a)
    b = a.batch or 1
    ids = torch.randint(100, 40000, (b, a.past + a.seq), device=a.device)
    if a.past == 0:
        return lambda: model(input_ids=ids, use_cache=True).logits
    # A decode pass: the cache holds `past` tokens (filled once); each pass crops it back
    # and runs the next `seq` tokens, as `tally bench --past` does.
    cache_ = model(input_ids=ids[:, :a.past], use_cache=True).past_key_values

    def step():
        extra = cache_.get_seq_length() - a.past
        if extra > 0:
            cache_.crop(-extra)
        return model(input_ids=ids[:, a.past:], past_key_values=cache_, use_cache=True).logits
    return step


def mobilenet(a):
    import torchvision
    model = torchvision.models.mobilenet_v2()
    if a.seeded is None:
        from safetensors.torch import load_file
        path = os.path.join(cache(), "mobilenet-v2", "model.safetensors")
        model.load_state_dict(load_file(path), strict=False)
    model = place(model, a)
    n = (a.batch or 1) * 3 * 224 * 224
    x = torch.sin(torch.arange(n, dtype=torch.float64) * 0.001).reshape(-1, 3, 224, 224)
    x = x.to(device=a.device, dtype=next(model.parameters()).dtype)
    return lambda: model(x)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=["minilm", "smollm2", "mobilenet"])
    p.add_argument("--batch", type=int)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    p.add_argument("--past", type=int, default=0)
    p.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--seeded", type=int)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        run = {"minilm": minilm, "smollm2": smollm2, "mobilenet": mobilenet}[a.model](a)
        times = []
        run()
        sync()
        for _ in range(a.repeat):
            t = time.perf_counter()
            run()
            sync()
            times.append(time.perf_counter() - t)
    print(f"bench model={a.model} engine=pytorch-{torch.__version__}-{a.attn} passes={len(times)} "
          f"median_s={statistics.median(times):.9f} min_s={min(times):.9f} max_s={max(times):.9f}")


if __name__ == "__main__":
    main()
