#!/usr/bin/env bash
# Reconciles Tally's counts with the GPU's own: runs each workload under Nsight Compute with
# the FP32 instruction, DRAM byte and duration metrics, keeps Tally's `profile --json` report
# of the same run, and joins the two with `tally reconcile-gpu`. Writes into OUTDIR
# (default $OUT): ncu-<workload>.csv, ncu-<workload>.json, reconcile-<workload>.{txt,md}
# (with roofline floors when run.sh's calibrate-gpu.json is in OUTDIR).
# Needs the bundle gpu/build.sh made; run from the repository root on the GPU machine.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:?give an output folder or set OUT}}
mkdir -p "$out"
source gpu/libs.sh "$out"
bundle=gpu-bundle
tally="$bundle/tally"
export TALLY_CACHE="$PWD/$bundle/models"
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum
for op in fadd fmul ffma; do
    metrics="$metrics,sm__sass_thread_inst_executed_op_${op}_pred_on.sum"
done
status=0
# No decode workload: its prompt is run before the measured passes, and ncu would count
# those launches too (an NVTX range around the measured passes would let ncu filter them).
for w in "minilm --batch 32 --seq 128" "smollm2 --seq 128" "mobilenet --batch 1"; do
    set -- $w
    seeded=(--seeded 1)
    [ "$1" = mobilenet ] && seeded=()
    tag=$(echo "$w" | tr ' ' '_' | tr -s '_' | sed 's/--//g')
    # --clock-control none: leave the GPU's clocks as they are (the device notes ask it).
    ncu --clock-control none --csv --page raw --metrics "$metrics" \
        "$tally" profile $w --device cuda "${seeded[@]}" --repeat 1 \
        --json "$out/ncu-$tag.json" >"$out/ncu-$tag.csv" 2>"$out/ncu-$tag.log"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "$w: ncu failed (exit $rc), see ncu-$tag.log" | tee -a "$out/reconcile-summary.txt"
        status=1
        continue
    fi
    ceilings=()
    [ -f "$out/calibrate-gpu.json" ] && ceilings=(--ceilings "$out/calibrate-gpu.json")
    "$tally" reconcile-gpu --ncu "$out/ncu-$tag.csv" --profile "$out/ncu-$tag.json" \
        --passes 2 "${ceilings[@]}" --markdown "$out/reconcile-$tag.md" \
        >"$out/reconcile-$tag.txt" 2>&1
    echo "$w: reconciled (exit $?)" | tee -a "$out/reconcile-summary.txt"
done
exit "$status"
