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
# The median pass time `tally bench` (or benches/pytorch/bench.py) printed, in seconds.
median() { sed -n 's/.*median_s=\([0-9.]*\).*/\1/p' | tail -n 1; }
