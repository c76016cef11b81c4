#!/usr/bin/env bash
# Tally against PyTorch on the same checkpoints, shapes and thread count: `tally bench` and
# benches/pytorch/bench.py run in alternating blocks, ROUNDS times each, in one session; prints
# per workload both medians (of the per-block medians) and the ratio PyTorch / Tally
# (above 1: Tally is faster). PyTorch runs with SDPA attention (and eager, for MiniLM), always
# in f32; the rows marked "Tally bf16" run Tally in bf16 against that f32 PyTorch.
#
# Usage: benches/pytorch/compare.sh PYTHON [ROUNDS [PATTERN]]   (PYTHON: an interpreter with
#        torch, transformers, gguf, torchvision and safetensors; ROUNDS default 3; PATTERN: an
#        extended regex, only workloads whose name matches it run)
set -euo pipefail
py="${1:?usage: compare.sh PYTHON [ROUNDS [PATTERN]]}"
rounds="${2:-3}"
pattern="${3:-.}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
threads="$(nproc)"
cd "$root"
cargo build --release -q -p tally-cli
tally="$root/target/release/tally"
median_of() { sed -n 's/.*median_s=\([0-9.e-]*\).*/\1/p'; }

# name | tally bench args | bench.py args
workloads=(
  "MiniLM 1x128|minilm --seq 128 --repeat 15|minilm --seq 128 --repeat 15"
  "MiniLM 1x512|minilm --seq 512 --repeat 5|minilm --seq 512 --repeat 5"
  "MiniLM 8x128|minilm --batch 8 --seq 128 --repeat 5|minilm --batch 8 --seq 128 --repeat 5"
  "MiniLM 1x128, Tally bf16|minilm --seq 128 --repeat 15 --dtype bf16|minilm --seq 128 --repeat 15"
  "MiniLM 1x512, Tally bf16|minilm --seq 512 --repeat 5 --dtype bf16|minilm --seq 512 --repeat 5"
  "MiniLM 8x128, Tally bf16|minilm --batch 8 --seq 128 --repeat 5 --dtype bf16|minilm --batch 8 --seq 128 --repeat 5"
  "SmolLM2 prefill 1x128|smollm2 --seq 128 --repeat 5|smollm2 --seq 128 --repeat 5"
  "MobileNetV2 1x224|mobilenet --repeat 15|mobilenet --repeat 15"
)
printf '| workload | Tally | PyTorch (sdpa) | PyTorch / Tally | PyTorch (eager) | eager / Tally |\n|---|---|---|---|---|---|\n'
for w in "${workloads[@]}"; do
  IFS='|' read -r name targs pargs <<<"$w"
  [[ $name =~ $pattern ]] || continue
  t=(); s=(); e=()
  for ((r = 0; r < rounds; r++)); do
    t+=("$("$tally" --threads "$threads" bench $targs | median_of)")
    s+=("$("$py" benches/pytorch/bench.py $pargs --threads "$threads" --attn sdpa 2>/dev/null | median_of)")
    if [[ $name == MiniLM* ]]; then
      e+=("$("$py" benches/pytorch/bench.py $pargs --threads "$threads" --attn eager 2>/dev/null | median_of)")
    fi
  done
  python3 - "$name" "${t[*]}" "${s[*]}" "${e[*]:-}" <<'PY'
import statistics as st, sys
name = sys.argv[1]
t, s = [list(map(float, a.split())) for a in sys.argv[2:4]]
e = list(map(float, sys.argv[4].split())) if sys.argv[4].strip() else []
ms = lambda v: f"{v * 1e3:.2f} ms"
mt, msd = st.median(t), st.median(s)
row = f"| {name} | {ms(mt)} | {ms(msd)} | {msd / mt:.2f}× |"
row += f" {ms(st.median(e))} | {st.median(e) / mt:.2f}× |" if e else " — | — |"
print(row)
PY
done
echo "medians over $rounds alternating blocks; $threads threads; PyTorch f32, Tally f32 except where marked bf16"
