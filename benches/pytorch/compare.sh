#!/usr/bin/env bash
# Tally against candle and PyTorch on the same checkpoints, shapes and thread count, in one
# run: for each workload, `tally bench`, candle (`candle_bench`, the candle-transformers 0.11
# models of the `models` bench) and benches/pytorch/bench.py run in alternating blocks,
# ROUNDS times, the engine that goes first rotating from round to round. Prints per workload
# each engine's median pass (the median over rounds of each block's median, with the
# rounds' range) and the ratios candle / Tally and PyTorch / Tally (above 1: Tally is faster;
# PyTorch's faster attention in each round) as the median of the rounds' ratios, with their
# range. PyTorch runs with SDPA attention (and eager, for
# MiniLM), always in f32; candle in f32 (MiniLM and SmolLM2 only: candle-transformers has
# no MobileNetV2); the rows marked "Tally bf16" run Tally in bf16 against those f32 engines.
# SmolLM2 prefill: Tally and PyTorch compute all 128 positions' logits, candle's Llama only
# the last one's (7.2 GFLOP less), so candle / Tally understates Tally there.
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
cargo build --release -q -p tally-benches --example candle_bench
tally="$root/target/release/tally"
candle="$root/target/release/examples/candle_bench"
median_of() { sed -n 's/.*median_s=\([0-9.e-]*\).*/\1/p'; }

# name | tally bench args | candle_bench args (empty: no candle run) | bench.py args
workloads=(
  "MiniLM 1x128|minilm --seq 128 --repeat 15|minilm --seq 128 --repeat 15|minilm --seq 128 --repeat 15"
  "MiniLM 1x512|minilm --seq 512 --repeat 5|minilm --seq 512 --repeat 5|minilm --seq 512 --repeat 5"
  "MiniLM 8x128|minilm --batch 8 --seq 128 --repeat 5|minilm --batch 8 --seq 128 --repeat 5|minilm --batch 8 --seq 128 --repeat 5"
  "MiniLM 1x128, Tally bf16|minilm --seq 128 --repeat 15 --dtype bf16|minilm --seq 128 --repeat 15|minilm --seq 128 --repeat 15"
  "MiniLM 1x512, Tally bf16|minilm --seq 512 --repeat 5 --dtype bf16|minilm --seq 512 --repeat 5|minilm --seq 512 --repeat 5"
  "MiniLM 8x128, Tally bf16|minilm --batch 8 --seq 128 --repeat 5 --dtype bf16|minilm --batch 8 --seq 128 --repeat 5|minilm --batch 8 --seq 128 --repeat 5"
  "SmolLM2 prefill 1x128|smollm2 --seq 128 --repeat 5|smollm2 --seq 128 --repeat 5|smollm2 --seq 128 --repeat 5"
  "SmolLM2 decode after 128|smollm2 --past 128 --seq 1 --repeat 15|smollm2 --past 128 --seq 1 --repeat 15|smollm2 --past 128 --seq 1 --repeat 15"
  "MobileNetV2 1x224|mobilenet --repeat 15||mobilenet --repeat 15"
)
printf '| workload | Tally | candle | candle / Tally | PyTorch (sdpa) | PyTorch (eager) | PyTorch / Tally |\n'
printf '|---|---|---|---|---|---|---|\n'
for w in "${workloads[@]}"; do
  IFS='|' read -r name targs cargs pargs <<<"$w"
  [[ $name =~ $pattern ]] || continue
  # One command line per engine; each round runs them all, starting one further along.
  engines=("tally" "sdpa")
  [[ -n $cargs ]] && engines+=("candle")
  [[ $name == MiniLM* ]] && engines+=("eager")
  declare -A got=([tally]="" [candle]="" [sdpa]="" [eager]="")
  for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < ${#engines[@]}; i++)); do
      e="${engines[$(((r + i) % ${#engines[@]}))]}"
      case $e in
        tally) v="$("$tally" --threads "$threads" bench $targs | median_of)" ;;
        candle) v="$(RAYON_NUM_THREADS="$threads" "$candle" $cargs | median_of)" ;;
        sdpa | eager) v="$("$py" benches/pytorch/bench.py $pargs --threads "$threads" --attn "$e" 2>/dev/null | median_of)" ;;
      esac
      got[$e]+="$v "
    done
  done
  python3 - "$name" "${got[tally]}" "${got[candle]}" "${got[sdpa]}" "${got[eager]}" <<'PY'
import statistics as st, sys
name = sys.argv[1]
tally, candle, sdpa, eager = [list(map(float, a.split())) for a in sys.argv[2:6]]
ms = lambda v: f"{v * 1e3:.2f}"
def time(v):
    return f"{ms(st.median(v))} ms [{ms(min(v))}–{ms(max(v))}]" if v else "—"
def ratio(v):
    if not v:
        return "—"
    per_round = [x / t for x, t in zip(v, tally)]
    return f"**{st.median(per_round):.2f}×** [{min(per_round):.2f}–{max(per_round):.2f}]"
# PyTorch's best attention in each round (eager runs for MiniLM only).
best = [min(x) for x in zip(sdpa, eager)] if eager else sdpa
print(f"| {name} | {time(tally)} | {time(candle)} | {ratio(candle)} | {time(sdpa)} | {time(eager)} | {ratio(best)} |")
PY
  unset got
done
echo "each engine's median pass: median over $rounds rounds [range]; ratios: median of the rounds' ratios [range], above 1 = Tally faster, PyTorch at its faster attention per round; $threads threads; candle and PyTorch f32, Tally f32 except where marked bf16; SmolLM2 prefill: candle computes the last position's logits only, Tally and PyTorch all 128"
