#!/usr/bin/env bash
# Builds and runs the independent ceilings check (C + OpenMP, gcc) beside `tally calibrate`.
# Usage: benches/independent/run.sh   (needs gcc; writes its binary to target/independent/)
# Threads are bound to cores (OMP_PROC_BIND): unbound, they migrate and the 2-thread peak
# reads 15-20% low on this VM.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../target/independent"
mkdir -p "$out"
gcc -O3 -fopenmp -o "$out/ceilings" "$here/ceilings.c"
OMP_PROC_BIND=true "$out/ceilings"
