#!/usr/bin/env bash
# What counting costs, per model: the same `tally bench` from two builds, the default
# (counters on and every kernel call recorded) and `--features uncounted` (counters
# compiled out), run alternately, ROUNDS times each, in one session. Prints per model the
# median of the per-round ratios (counted / uncounted medians), their range, a 95%
# bootstrap interval of that median (2000 resamples of the rounds, fixed seed), and the
# medians themselves. Models that are not fetched are skipped with the fetch command.
#
# Usage: benches/counting_overhead.sh [ROUNDS]      (default 7)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
rounds="${1:-7}"
cd "$root"
cargo build --release -q -p tally-cli
CARGO_TARGET_DIR="$root/target/uncounted" cargo build --release -q -p tally-cli --features uncounted
on="$root/target/release/tally"
off="$root/target/uncounted/release/tally"
cache="${TALLY_CACHE:-$HOME/.cache/tally}"

# name | tally arguments | folder in the cache it needs ("" = ships in models/)
workloads=(
  "digits-mlp batch 360|digits-mlp --repeat 300|"
  "digits-mlp batch 1|digits-mlp --batch 1 --repeat 2000|"
  "minilm 1x128|minilm --seq 128 --repeat 15|all-minilm-l6-v2"
  "minilm 8x128|minilm --batch 8 --seq 128 --repeat 4|all-minilm-l6-v2"
  "smollm2 prefill 1x128|smollm2 --seq 128 --repeat 5|smollm2"
  "smollm2 prefill 1x16|smollm2 --seq 16 --repeat 20|smollm2"
  "mobilenet 1x224|mobilenet --repeat 15|mobilenet-v2"
)

median_of() { grep -o 'median_s=[0-9.e-]*' | cut -d= -f2; }

printf '%-24s %9s %9s %9s %17s %12s %12s\n' workload ratio lo hi "95% CI" counted uncounted
for w in "${workloads[@]}"; do
  IFS='|' read -r name args need <<<"$w"
  if [[ -n "$need" && ! -d "$cache/$need" ]]; then
    echo "skipping $name: $cache/$need not found; run models/fetch all"
    continue
  fi
  ons=(); offs=()
  for ((r = 0; r < rounds; r++)); do
    # Alternate which build goes first, so drift in the machine hits both arms alike.
    if ((r % 2 == 0)); then
      ons+=("$("$on" bench $args | median_of)"); offs+=("$("$off" bench $args | median_of)")
    else
      offs+=("$("$off" bench $args | median_of)"); ons+=("$("$on" bench $args | median_of)")
    fi
  done
  python3 - "$name" "${ons[*]}" "${offs[*]}" <<'PY'
import random, statistics as st, sys
name, on, off = sys.argv[1], list(map(float, sys.argv[2].split())), list(map(float, sys.argv[3].split()))
ratios = [a / b for a, b in zip(on, off)]
rng = random.Random(1)
boot = sorted(st.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
ci = f"{boot[50]:.4f}-{boot[1949]:.4f}"
fmt = lambda s: f"{s*1e3:.3f} ms" if s >= 1e-3 else f"{s*1e6:.1f} us"
print(f"{name:<24} {st.median(ratios):9.4f} {min(ratios):9.4f} {max(ratios):9.4f} {ci:>17} "
      f"{fmt(st.median(on)):>12} {fmt(st.median(off)):>12}")
PY
done
echo "ratio = counted / uncounted wall-clock per pass (median over rounds); 1.01 = 1% overhead"
