#!/usr/bin/env bash
# Builds, here, everything the GPU machine runs (it reaches no package registry) into
# gpu-bundle/ (ignored by git), stripped to fit the 64 MiB that travels with a device call:
#   gpu-bundle/bin/<name>   the GPU test binaries (tests/tests/cuda.rs, crates/tally-cuda/tests,
#                           crates/tally-energy/tests/nvml.rs)
#   gpu-bundle/tally        the CLI, for the model runs (`tally bench --device cuda --seeded`)
#   gpu-bundle/tally-uncounted  the CLI built with counting compiled out (its cost on the GPU)
#   gpu-bundle/models/      a TALLY_CACHE with what fits: MiniLM's config and tokenizer (its
#                           weights are seeded there) and MobileNetV2's 14 MB checkpoint;
#                           SmolLM2 needs no file (seeded, its configuration is built in);
#                           and ptx/, every kernel compiled for sm_90 (`tally kernels`)
#   gpu-bundle/MANIFEST     what was built, from which commit, and the sizes
# Then, on the device machine: gpu/run.sh "$OUT" (see gpu/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

bundle=gpu-bundle
rm -rf "$bundle"
mkdir -p "$bundle/bin"

# Test binaries: cargo prints each executable in its JSON messages.
build_tests() {
    cargo test --release "$@" --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["executable"])
'
}

{
    build_tests -p tally-tests --test cuda
    build_tests -p tally-cuda --test kernels
    build_tests -p tally-energy --test nvml
} | while read -r name exe; do
    cp "$exe" "$bundle/bin/$name"
    strip "$bundle/bin/$name"
done

cargo build --release -p tally-cli
cp target/release/tally "$bundle/tally"
strip "$bundle/tally"
# The same CLI with counting compiled out, to race against: what counting costs on the GPU.
CARGO_TARGET_DIR=target/uncounted cargo build --release -p tally-cli --features uncounted
cp target/uncounted/release/tally "$bundle/tally-uncounted"
strip "$bundle/tally-uncounted"

cache="${TALLY_CACHE:-$HOME/.cache/tally}"
[ -f "$cache/all-minilm-l6-v2/tokenizer.json" ] || models/fetch minilm
[ -f "$cache/mobilenet-v2/model.safetensors" ] || models/fetch mobilenet
for f in config.json tokenizer.json sentence_bert_config.json 1_Pooling/config.json; do
    mkdir -p "$(dirname "$bundle/models/all-minilm-l6-v2/$f")"
    cp "$cache/all-minilm-l6-v2/$f" "$bundle/models/all-minilm-l6-v2/$f"
done
mkdir -p "$bundle/models/mobilenet-v2"
cp "$cache/mobilenet-v2/model.safetensors" "$bundle/models/mobilenet-v2/"
# Every kernel's PTX for Hopper, compiled here by NVRTC (the pinned wheel) into the PTX
# cache the GPU machine reads ($TALLY_CACHE/ptx): no process there waits for NVRTC (about
# 4 s per process for all files on this machine, over some 80 tally processes in run.sh).
LD_LIBRARY_PATH="$(kernels/nvrtc-env.sh)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$bundle/tally" kernels --arch sm90 --cache "$bundle/models/ptx"

{
    echo "commit $(git rev-parse HEAD)$(git diff --quiet || echo ' (dirty)')"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)"
    (cd "$bundle" && du -ab bin tally tally-uncounted models | sort -k2)
} >"$bundle/MANIFEST"
cat "$bundle/MANIFEST"

total=$(du -sb "$bundle" | cut -f1)
limit=$((64 * 1024 * 1024))
if [ "$total" -gt "$limit" ]; then
    echo "gpu-bundle is $total bytes: over the 64 MiB a device call carries" >&2
    exit 1
fi
echo "gpu-bundle: $total bytes (limit $limit)"
