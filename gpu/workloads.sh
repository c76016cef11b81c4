# Sourced by run.sh, ncu.sh and counting.sh: the issue's model workloads on the GPU, and two
# helpers.
# shellcheck shell=bash
workloads=(
    "minilm --batch 32 --seq 128"
    "smollm2 --seq 128"
    "smollm2 --past 128 --seq 1"
    "mobilenet --batch 1"
    "mobilenet --batch 32"
)
# ncu.sh's captures, most wanted first (a device call may stop at its time limit): f32 and
# bf16 (tensor cores), a decode step, a convolution net, then SmolLM2's prefill, the longest.
ncu_workloads=(
    "minilm --batch 32 --seq 128"
    "minilm --batch 32 --seq 128 --dtype bf16"
    "smollm2 --past 128 --seq 1"
    "mobilenet --batch 1"
    "smollm2 --seq 128"
)
# gpu/dry-run.sh --emulated asks for small shapes instead (';' between workloads): the
# emulated GPU runs kernels on the CPU, a thousand times slower.
if [ -n "${TALLY_GPU_WORKLOADS:-}" ]; then
    IFS=';' read -r -a workloads <<<"$TALLY_GPU_WORKLOADS"
    ncu_workloads=("${workloads[@]}")
fi
py=${PYTHON:-python3}
# Where the workloads run: the GPU, or `cpu` for gpu/dry-run.sh, which runs these scripts'
# plumbing on a machine without one (its figures are CPU figures, never GPU ones).
device=${TALLY_GPU_DEVICE:-cuda}
# Where PyTorch runs for the race: the same device, unless the dry run on the emulated GPU
# (where PyTorch has no GPU) says cpu.
torch_device=${TALLY_GPU_TORCH_DEVICE:-$device}
# Measured passes per `tally bench` / PyTorch run (the dry run asks for fewer).
repeat=${TALLY_GPU_REPEAT:-20}
# The median pass time `tally bench` (or benches/pytorch/bench.py) printed, in seconds.
median() { sed -n 's/.*median_s=\([0-9.]*\).*/\1/p' | tail -n 1; }
