// rope.cu: rotary position embedding over the last dimension.
// defines: rope_interleaved_{f32, bf16, f16}   pairs (x[2f], x[2f+1])
//          rope_half_{f32, bf16, f16}          pairs (x[f], x[f + d/2])
// Per rotated pair (cost::rope): 4 muls, 2 adds; reads the pair and writes it. The cos/sin
// tables are distinct inputs: only the pairs of the first (s, d) slice count their bytes.
#include "tally_count.cuh"
#include "tally_dtype.cuh"

// x (rows, s, d), cos (s, d/2), sin (s, d/2) -> y (rows, s, d); grid-stride over pairs.
// Pair f of position t: (a, b) -> (a·cos − b·sin, a·sin + b·cos).
template <bool INTERLEAVED, typename T>
__device__ void rope_body(const T* x, const T* cos, const T* sin, T* y, unsigned long long rows,
                          unsigned long long s, unsigned long long d,
                          unsigned long long* counters) {
    const unsigned long long half = d / 2, pairs = rows * s * half;
    unsigned long long done = 0, table = 0;
    for (unsigned long long p = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
         p < pairs; p += (unsigned long long)gridDim.x * blockDim.x) {
        const unsigned long long row = p / half, f = p % half, t = row % s;
        const unsigned long long ia = row * d + (INTERLEAVED ? 2 * f : f);
        const unsigned long long ib = INTERLEAVED ? ia + 1 : ia + half;
        const float a = to_f32(x[ia]), b = to_f32(x[ib]);
        const float c = to_f32(cos[t * half + f]), sn = to_f32(sin[t * half + f]);
        y[ia] = from_f32<T>(a * c - b * sn);
        y[ib] = from_f32<T>(a * sn + b * c);
        ++done;
        table += (row < s);  // first (s, d) slice: every table element once
    }
    tally_flush(tally_elems(done, 2, 4, 0, 0, (2 * done + 2 * table) * sizeof(T),
                            2 * done * sizeof(T)),
                counters);
}

// Stamps both pairings for one dtype:
// x (rows, s, d), cos (s, d/2), sin (s, d/2) -> y (rows, s, d)
#define ROPE(T, SUFFIX)                                                                          \
    extern "C" __global__ void rope_interleaved_##SUFFIX(                                       \
        const T* x, const T* cos, const T* sin, T* y, unsigned long long rows,                  \
        unsigned long long s, unsigned long long d, unsigned long long* counters) {             \
        rope_body<true>(x, cos, sin, y, rows, s, d, counters);                                  \
    }                                                                                           \
    extern "C" __global__ void rope_half_##SUFFIX(                                              \
        const T* x, const T* cos, const T* sin, T* y, unsigned long long rows,                  \
        unsigned long long s, unsigned long long d, unsigned long long* counters) {             \
        rope_body<false>(x, cos, sin, y, rows, s, d, counters);                                 \
    }

ROPE(float, f32)
ROPE(bf16, bf16)
ROPE(f16, f16)
