#!/usr/bin/env bash
# What counting costs, per model, in time: builds `tally` twice, the default (counters on,
# every kernel call recorded) and `--features uncounted` (counters compiled out), then runs
# both builds side by side, warm, alternating pass by pass (benches/counting_lockstep.py),
# in ROUNDS rounds of two fresh processes, SECONDS of pairs per round after loading. Prints
# per workload the median over rounds of each round's median per-pair ratio (counted /
# uncounted), a 95% bootstrap interval over rounds, the rounds' range, the pairs and each
# build's median pass. Models that are not fetched are skipped with the fetch command.
#
# Usage: [ROUNDS=N] benches/counting_overhead.sh [SECONDS [NAME...]]   (default 5 rounds of
#        20 s; NAME: only the workloads whose name contains it, e.g.
#        `ROUNDS=8 benches/counting_overhead.sh 10 decode`)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release -q -p tally-cli
CARGO_TARGET_DIR="$root/target/uncounted" cargo build --release -q -p tally-cli --features uncounted
python3 benches/counting_lockstep.py --rounds "${ROUNDS:-5}" "$root/target/release/tally" \
    "$root/target/uncounted/release/tally" "${1:-20}" "${@:2}"
