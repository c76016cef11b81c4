#!/usr/bin/env bash
# Runs the bundle gpu/build.sh made on the GPU machine and writes every result under
# OUTDIR (default $OUT, the device tool's returned folder):
#   OUTDIR/gpu.txt        nvidia-smi's view of the GPU and driver
#   OUTDIR/libs.txt       where libcuda, libnvrtc and libcublas were found
#   OUTDIR/<test>.txt     each test binary's output (TALLY_REQUIRE_GPU=1: no silent skips)
#   OUTDIR/summary.txt    one line per test binary: passed or failed, and its exit code
#   OUTDIR/calibrate-gpu.{txt,json}  the GPU's measured ceilings (cuBLAS products, copy)
#   OUTDIR/models.txt     each model workload: Tally on the GPU and PyTorch on the same GPU
#                         (same shapes, seeded weights), medians, their ratio and throughputs
#   OUTDIR/profile-*.txt  Tally's per-op table (FPO, bytes, time, GFLOP/s, GB/s) per workload
# What counting costs on the GPU is gpu/counting.sh, and the ncu reconciliation gpu/ncu.sh:
# run them after this one, in that priority order (gpu/README.md).
# Exit status: non-zero when any test binary failed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:?give an output folder or set OUT}}
mkdir -p "$out"
bundle=gpu-bundle
if [ ! -d "$bundle/bin" ]; then
    echo "no $bundle/bin: run gpu/build.sh here first and carry $bundle" >&2
    exit 2
fi

nvidia-smi >"$out/gpu.txt" 2>&1 || echo "nvidia-smi failed" >>"$out/gpu.txt"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.max.sm,power.limit \
    --format=csv >>"$out/gpu.txt" 2>&1 || true

# NVRTC and cuBLAS on LD_LIBRARY_PATH (and libs.txt saying where they were found).
source gpu/libs.sh "$out"

source gpu/workloads.sh
# The tests' model files (MiniLM's config and tokenizer, MobileNet) come from the bundle.
export TALLY_CACHE="$PWD/$bundle/models"
# On the GPU machine a missing GPU or NVRTC fails the tests instead of skipping them.
[ "$device" = cpu ] || export TALLY_REQUIRE_GPU=1 TALLY_REQUIRE_NVRTC=1
status=0
: >"$out/summary.txt"
for exe in "$bundle"/bin/*; do
    name=$(basename "$exe")
    "$exe" --nocapture --test-threads=1 >"$out/$name.txt" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then verdict=passed; else verdict=FAILED; status=1; fi
    echo "$name: $verdict (exit $rc)" | tee -a "$out/summary.txt"
done

# Models: the issue's workloads, Tally against PyTorch on this GPU, alternating.
tally="$bundle/tally"
# The GPU's ceilings first: the roofline every table below is read against.
quick=()
# A CPU, or the emulated GPU (gpu/dry-run.sh): small sizes, no ceilings.
{ [ "$device" = cpu ] || [ -n "${TALLY_GPU_EMULATOR:-}" ]; } && quick=(--quick)
"$tally" calibrate --device "$device" "${quick[@]}" --json "$out/calibrate-gpu.json" \
    >"$out/calibrate-gpu.txt" 2>&1 ||
    echo "calibrate --device $device failed, see calibrate-gpu.txt" | tee -a "$out/summary.txt"
: >"$out/models.txt"
for w in "${workloads[@]}"; do
    set -- $w
    seeded=(--seeded 1)
    [ "$1" = mobilenet ] && seeded=()
    for dtype in f32 bf16; do
        tag=$(echo "$w $dtype" | tr ' ' '_' | tr -s '_' | sed 's/--//g')
        "$tally" profile $w --dtype "$dtype" --device "$device" "${seeded[@]}" --repeat 5 \
            >"$out/profile-$tag.txt" 2>&1
        t=$("$tally" bench $w --dtype "$dtype" --device "$device" "${seeded[@]}" \
            --repeat "$repeat" 2>&1 | median)
        p=$("$py" benches/pytorch/bench.py $w --dtype "$dtype" --device "$torch_device" --seeded 1 \
            --repeat "$repeat" 2>>"$out/pytorch-errors.txt" | median)
        ratio=$("$py" -c "import sys; t, p = sys.argv[1:]; print(f'{float(p) / float(t):.2f}')" \
            "${t:-nan}" "${p:-nan}" 2>/dev/null || echo "n/a")
        # Throughput: tokens a pass takes in (batch × seq; a decode step's new tokens), or
        # images for MobileNet, per second.
        rate=$("$py" -c "
import sys
w, t, p = sys.argv[1].split(), float(sys.argv[2]), float(sys.argv[3])
arg = lambda k, d: int(w[w.index(k) + 1]) if k in w else d
n = arg('--batch', 1) * (1 if w[0] == 'mobilenet' else arg('--seq', 128))
unit = 'images' if w[0] == 'mobilenet' else 'tokens'
print(f'{n / t:.0f} vs {n / p:.0f} {unit}/s')" "$w" "${t:-nan}" "${p:-nan}" 2>/dev/null ||
            echo "n/a")
        echo "$w $dtype: tally ${t:-failed} s, pytorch ${p:-failed} s, pytorch/tally $ratio ($rate)" |
            tee -a "$out/models.txt"
    done
done

exit "$status"
