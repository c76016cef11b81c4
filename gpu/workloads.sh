# Sourced by run.sh and counting.sh: the model workloads on the GPU, and two helpers.
# shellcheck shell=bash
workloads=(
    "minilm --batch 32 --seq 128"
    "smollm2 --seq 128"
    "smollm2 --past 128 --seq 1"
    "mobilenet --batch 1"
    "mobilenet --batch 32"
)
py=${PYTHON:-python3}
# Where the workloads run: the GPU, or `cpu` for gpu/dry-run.sh, which runs these scripts'
# plumbing on a machine without one (its figures are CPU figures, never GPU ones).
device=${TALLY_GPU_DEVICE:-cuda}
# Measured passes per `tally bench` / PyTorch run (the dry run asks for fewer).
repeat=${TALLY_GPU_REPEAT:-20}
# The median pass time `tally bench` (or benches/pytorch/bench.py) printed, in seconds.
median() { sed -n 's/.*median_s=\([0-9.]*\).*/\1/p' | tail -n 1; }
