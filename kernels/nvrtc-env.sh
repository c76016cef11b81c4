#!/usr/bin/env bash
# Installs NVRTC from its pinned PyPI wheel (no GPU, no CUDA toolkit: the wheel carries
# libnvrtc.so.12, a name Tally's loader tries, and libnvrtc-builtins beside it) into
# target/nvrtc-venv, and prints the folder holding the libraries, for LD_LIBRARY_PATH.
# Used by .ci/run (the kernel compile test) and gpu/build.sh (the shipped PTX cache).
set -euo pipefail
cd "$(dirname "$0")/.."
wheel="nvidia-cuda-nvrtc-cu12==12.9.86"
sha256="210cf05005a447e29214e9ce50851e83fc5f4358df8b453155d5e1918094dcb4"
venv=target/nvrtc-venv
find_lib() {
    [ -d "$venv" ] || return 0
    find "$PWD/$venv" -path '*/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so*' | sort | head -n 1
}
so=$(find_lib)
if [ -z "$so" ]; then
    python3 -m venv "$venv" >&2
    echo "$wheel --hash=sha256:$sha256" >target/nvrtc-requirements.txt
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        --require-hashes -r target/nvrtc-requirements.txt >&2
    so=$(find_lib)
fi
if [ -z "$so" ]; then
    echo "no libnvrtc.so* under $venv/**/nvidia/cuda_nvrtc/lib" >&2
    exit 1
fi
lib=$(dirname "$so")
if ! compgen -G "$lib/libnvrtc-builtins.so*" >/dev/null; then
    echo "no libnvrtc-builtins.so* beside $so" >&2
    exit 1
fi
echo "$lib"
