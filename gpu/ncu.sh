#!/usr/bin/env bash
# Reconciles Tally's counts with the GPU's own: runs each workload under Nsight Compute with
# the FP32 instruction, tensor-path op, DRAM byte and duration metrics over its measured
# passes only (Tally's profiler range), keeps Tally's `profile --json` report
# of the same run, and joins the two with `tally reconcile-gpu`. Writes into OUTDIR
# (default $OUT): ncu-<workload>.csv, ncu-<workload>.json, reconcile-<workload>.{txt,md}
# (with roofline floors when run.sh's calibrate-gpu.json is in OUTDIR).
# Needs the bundle gpu/build.sh made; run from the repository root on the GPU machine.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:?give an output folder or set OUT}}
mkdir -p "$out"
: >"$out/reconcile-summary.txt"
source gpu/libs.sh "$out"
source gpu/workloads.sh
bundle=gpu-bundle
tally="$bundle/tally"
export TALLY_CACHE="$PWD/$bundle/models"
# FP32 instructions (Tally's kernels compute in f32 whatever the storage dtype), DRAM bytes
# and time; then the tensor-core path's ops (cuBLAS products in bf16, f16 and TF32), only
# those this ncu lists: an unknown metric name would fail the whole run.
metrics=gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum
for op in fadd fmul ffma; do
    metrics="$metrics,sm__sass_thread_inst_executed_op_${op}_pred_on.sum"
done
known=$(ncu --query-metrics 2>/dev/null | awk '{print $1}')
for src in bf16 fp16 tf32; do
    m="sm__ops_path_tensor_src_${src}_dst_fp32"
    if grep -qx "$m" <<<"$known"; then
        metrics="$metrics,$m.sum"
    else
        echo "ncu here does not list $m: tensor-core work with $src sources is not seen" |
            tee -a "$out/reconcile-summary.txt"
    fi
done
status=0
# One measured pass: ncu replays every kernel once per metric group, which costs far more
# than the pass itself (SmolLM2 launches some 450 kernels a pass).
passes=1
# Tally opens a profiler range around its measured passes and ncu starts with collection
# off, so exactly those passes are captured: not the load, the warm-up or a decoder's prompt.
# Most wanted first (workloads.sh's ncu_workloads).
for w in "${ncu_workloads[@]}"; do
    set -- $w
    seeded=(--seeded 1)
    [ "$1" = mobilenet ] && seeded=()
    tag=$(echo "$w" | tr ' ' '_' | tr -s '_' | sed 's/--//g')
    # --clock-control none: leave the GPU's clocks as they are (the device notes ask it).
    ncu --clock-control none --profile-from-start off --csv --page raw --metrics "$metrics" \
        "$tally" profile $w --device "$device" "${seeded[@]}" --repeat "$passes" \
        --json "$out/ncu-$tag.json" >"$out/ncu-$tag.csv" 2>"$out/ncu-$tag.log"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "$w: ncu failed (exit $rc), see ncu-$tag.log" | tee -a "$out/reconcile-summary.txt"
        status=1
        continue
    fi
    ceilings=()
    grep -qs '"tally.gpu-ceilings/1"' "$out/calibrate-gpu.json" &&
        ceilings=(--ceilings "$out/calibrate-gpu.json")
    "$tally" reconcile-gpu --ncu "$out/ncu-$tag.csv" --profile "$out/ncu-$tag.json" \
        --passes "$passes" "${ceilings[@]}" --markdown "$out/reconcile-$tag.md" \
        >"$out/reconcile-$tag.txt" 2>&1
    echo "$w: reconciled (exit $?)" | tee -a "$out/reconcile-summary.txt"
done
exit "$status"
