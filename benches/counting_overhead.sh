#!/usr/bin/env bash
# What counting costs, per model, in time: builds `tally` twice, the default (counters on,
# every kernel call recorded) and `--features uncounted` (counters compiled out), then runs
# both builds side by side, warm, alternating pass by pass (benches/counting_lockstep.py),
# SECONDS of pairs per workload after loading. Prints per workload the median of the
# per-pair ratios (counted / uncounted), a 95% bootstrap interval, the pairs and each
# build's median pass. Models that are not fetched are skipped with the fetch command.
#
# Usage: benches/counting_overhead.sh [SECONDS [NAME...]]   (default 20 s; NAME: only the
#        workloads whose name contains it, e.g. `benches/counting_overhead.sh 60 decode`)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release -q -p tally-cli
CARGO_TARGET_DIR="$root/target/uncounted" cargo build --release -q -p tally-cli --features uncounted
python3 benches/counting_lockstep.py "$root/target/release/tally" \
    "$root/target/uncounted/release/tally" "${1:-20}" "${@:2}"
