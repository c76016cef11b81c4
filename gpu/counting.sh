#!/usr/bin/env bash
# What counting costs on the GPU: each of run.sh's workloads with the CLI built as usual and
# with counting compiled out (`--features uncounted`, both in the bundle), 3 alternating
# rounds of 20 passes each ($TALLY_GPU_REPEAT); the counted / uncounted ratio of median pass times per round.
# Writes OUTDIR/counting.txt (default $OUT). Run from the repository root on the GPU machine,
# after gpu/run.sh and gpu/ncu.sh (it matters least of the three when time is short).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:?give an output folder or set OUT}}
mkdir -p "$out"
source gpu/libs.sh "$out"
source gpu/workloads.sh
bundle=gpu-bundle
export TALLY_CACHE="$PWD/$bundle/models"
: >"$out/counting.txt"
for w in "${workloads[@]}"; do
    set -- $w
    seeded=(--seeded 1)
    [ "$1" = mobilenet ] && seeded=()
    ratios=()
    for round in 1 2 3; do
        on=$("$bundle/tally" bench $w --device "$device" "${seeded[@]}" --repeat "$repeat" 2>&1 |
            median)
        off=$("$bundle/tally-uncounted" bench $w --device "$device" "${seeded[@]}" \
            --repeat "$repeat" 2>&1 | median)
        ratios+=("$("$py" -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "${on:-nan}" "${off:-nan}" 2>/dev/null || echo nan)")
    done
    "$py" -c "import statistics, sys; r = [float(x) for x in sys.argv[2:]]; print(f'{sys.argv[1]}: counted/uncounted median {statistics.median(r):.4f}, range {min(r):.4f}-{max(r):.4f}')" "$w" "${ratios[@]}" |
        tee -a "$out/counting.txt"
done
