#!/usr/bin/env bash
# The GPU scripts run here, on the CPU, to catch a broken path, flag or parse before a
# scarce GPU session does: builds the bundle if it is missing, puts a stand-in `ncu` on PATH
# (it runs the profiled command and writes an empty capture), and runs run.sh, ncu.sh and
# counting.sh with few passes. Then checks that every result file is there and holds
# figures. Its numbers are CPU numbers: never report them as GPU ones.
#   gpu/dry-run.sh [OUTDIR]             Tally on the CPU (TALLY_GPU_DEVICE=cpu)
#   gpu/dry-run.sh --emulated [OUTDIR]  Tally on the emulated GPU (`cuda:0`: a stand-in
#       driver and cuBLAS that run Tally's kernels on the CPU, tests/emulated_gpu.rs), so the
#       CUDA paths of the test binaries, `tally bench/profile/calibrate --device cuda` and
#       the uncounted build run as on the GPU machine; small shapes (it is slow), PyTorch on
#       the CPU. Needs a C++ compiler and NVRTC (kernels/nvrtc-env.sh).
# Needs PyTorch for the races (PYTHON=/path/to/python with torch, transformers, gguf,
# torchvision). OUTDIR defaults to target/gpu-dry-run.
set -euo pipefail
cd "$(dirname "$0")/.."
emulated=0
if [ "${1:-}" = --emulated ]; then
    emulated=1
    shift
fi
out=${1:-target/gpu-dry-run}
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ -x gpu-bundle/tally ] || gpu/build.sh

fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
cat >"$fake/ncu" <<'NCU'
#!/usr/bin/env bash
# Stand-in for Nsight Compute: lists two tensor metrics, runs the profiled command after
# ncu's own options, and prints a raw CSV page with no launches.
if [ "${1:-}" = --query-metrics ]; then
    printf 'Device CPU\nsm__ops_path_tensor_src_bf16_dst_fp32 Counter ops\n'
    exit 0
fi
metrics=""
while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do
    case "$1" in
        --metrics) metrics=$2; shift 2 ;;
        --clock-control | --page | --profile-from-start) shift 2 ;;
        *) shift ;;
    esac
done
"$@" >&2 || exit $?
header='"ID","Kernel Name"'
for m in ${metrics//,/ }; do header="$header,\"$m\""; done
echo "$header"
NCU
chmod +x "$fake/ncu"

export PATH="$fake:$PATH" TALLY_GPU_REPEAT=${TALLY_GPU_REPEAT:-2}
if [ "$emulated" -eq 1 ]; then
    nvrtc=$(kernels/nvrtc-env.sh)
    export LD_LIBRARY_PATH="$nvrtc${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    lib=$(cargo run --release -q -p tally-tests --bin build-emulated-gpu -- target/emulated-gpu)
    export TALLY_GPU_EMULATOR=$lib TALLY_GPU_DEVICE=cuda TALLY_GPU_TORCH_DEVICE=cpu
    export TALLY_GPU_WORKLOADS=${TALLY_GPU_WORKLOADS:-"minilm --batch 2 --seq 16;smollm2 --seq 8;smollm2 --past 8 --seq 1;mobilenet --batch 1"}
    export LD_LIBRARY_PATH="$lib:$LD_LIBRARY_PATH"
else
    export TALLY_GPU_DEVICE=cpu
fi
gpu/run.sh "$out" || echo "run.sh: exit $? (the test binaries skip without a GPU)"
gpu/ncu.sh "$out"
gpu/counting.sh "$out"

# Every result is there and holds a figure.
bad=0
check() {
    if ! grep -Eq "$2" "$out/$1" 2>/dev/null; then
        echo "dry run: $1 lacks /$2/" >&2
        bad=1
    fi
}
check summary.txt 'passed'
# On the emulated GPU the test binaries run their GPU tests: none may fail.
[ "$emulated" -eq 0 ] || ! grep -q FAILED "$out/summary.txt" ||
    { echo "dry run: a test binary failed on the emulated GPU (summary.txt)" >&2; bad=1; }
check calibrate-gpu.txt '[0-9]'
check models.txt 'pytorch/tally [0-9]'
! grep -q failed "$out/models.txt" || { echo "dry run: a model run failed (models.txt)" >&2; bad=1; }
for f in "$out"/reconcile-*.txt; do
    [ "$(basename "$f")" = reconcile-summary.txt ] && continue
    check "$(basename "$f")" "over 1 pass$"
done
check reconcile-summary.txt 'reconciled \(exit 0\)'
! grep -Eq 'failed|exit [1-9]' "$out/reconcile-summary.txt" ||
    { echo "dry run: a reconciliation failed (reconcile-summary.txt)" >&2; bad=1; }
check counting.txt 'counted/uncounted median [0-9]'
[ "$bad" -eq 0 ] && echo "dry run: every GPU script ran and wrote its figures ($out)"
exit "$bad"
