#!/usr/bin/env bash
# What counting costs, in instructions: callgrind counts the instructions of one forward pass
# (the difference between a run of 1 + R passes and a run of 1 pass, so loading and the
# warm-up cancel) for the default build and the `--features uncounted` build. Instruction
# counts repeat exactly for the same binary and input, so this needs no quiet machine; it
# is a proxy for time (valgrind runs the AVX2 kernels, as it does not emulate AVX-512).
# Slow: MiniLM takes a few minutes per run under valgrind.
#
# The meter's clock (quanta's TSC clock) calibrates once per process for a varying time,
# about a million instructions either way; so each workload runs R × its own multiplier of
# passes (digits 100, digits1 2000, minilm 1), which shrinks that to well under 1% of what is
# compared.
#
# Usage: benches/counting_instructions.sh [R] [WORKLOAD...]   (default R = 2;
#        workloads: digits, digits1, minilm; default digits digits1)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
passes="${1:-2}"
shift || true
workloads=("${@:-digits digits1}")
cd "$root"
cargo build --release -q -p tally-cli
CARGO_TARGET_DIR="$root/target/uncounted" cargo build --release -q -p tally-cli --features uncounted
declare -A times=([digits]=100 [digits1]=2000 [minilm]=1)
declare -A args=(
  [digits]="digits-mlp"
  [digits1]="digits-mlp --batch 1"
  [minilm]="minilm --seq 128"
)
instructions() { # binary, passes, workload args...
  local bin="$1" n="$2"
  shift 2
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --threads 1 bench "$@" --repeat "$n" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-10s %16s %16s %9s\n' workload counted uncounted ratio
for w in ${workloads[@]}; do
  read -r -a a <<<"${args[$w]}"
  per=()
  n=$((passes * times[$w]))
  for bin in "$root/target/release/tally" "$root/target/uncounted/release/tally"; do
    one=$(instructions "$bin" 1 "${a[@]}")
    more=$(instructions "$bin" $((1 + n)) "${a[@]}")
    per+=($(((more - one) / n)))
  done
  python3 -c "import sys; c,u=map(int,sys.argv[2:]); print(f'{sys.argv[1]:<10} {c:>16,} {u:>16,} {c/u:9.5f}')" "$w" "${per[0]}" "${per[1]}"
done
echo "instructions per forward pass, 1 thread; ratio = counted / uncounted"
