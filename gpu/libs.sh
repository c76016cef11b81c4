# Sourced by run.sh and ncu.sh on the GPU machine: puts NVRTC and cuBLAS (the CUDA
# toolkit's, else the ones PyTorch's wheels carry) on LD_LIBRARY_PATH, and writes where
# libcuda, libnvrtc and libcublas were found into "$1/libs.txt". Tally loads them at run time.
# NVRTC and cuBLAS: the CUDA toolkit's, else the ones PyTorch's wheels carry.
dirs=()
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/*/lib; do
    [ -d "$d" ] && dirs+=("$d")
done
py_nvidia=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)
if [ -n "$py_nvidia" ]; then
    for d in "$py_nvidia"/nvidia/*/lib; do
        [ -d "$d" ] && dirs+=("$d")
    done
fi
# Tally's loader (cudarc) tries unversioned names and .so.12/.11/…, not .so.13: give each
# library it loads an unversioned link to the newest version found.
links=$(mktemp -d)
for lib in libcublas libcublasLt libnvrtc; do
    for d in "${dirs[@]:-}"; do
        [ -e "$d/$lib.so" ] && break
        found=$(ls "$d/$lib.so."* 2>/dev/null | sort -V | tail -n 1)
        if [ -n "$found" ]; then
            ln -sf "$found" "$links/$lib.so"
            break
        fi
    done
done
dirs=("$links" "${dirs[@]:-}")
# gpu/dry-run.sh --emulated: the stand-in driver and cuBLAS before any real one.
[ -n "${TALLY_GPU_EMULATOR:-}" ] && dirs=("$TALLY_GPU_EMULATOR" "${dirs[@]}")
extra=$(IFS=:; echo "${dirs[*]}")
export LD_LIBRARY_PATH="$extra${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
{
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    for lib in libcuda.so libnvrtc.so libcublas.so libcublasLt.so; do
        found=$( (ldconfig -p 2>/dev/null | grep -m1 "$lib" | awk '{print $NF}') || true)
        [ -z "$found" ] && found=$(for d in "${dirs[@]:-}"; do ls "$d"/$lib* 2>/dev/null; done | head -n 1)
        echo "$lib: ${found:-not found}"
    done
} >"$1/libs.txt"

