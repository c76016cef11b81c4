// softmax.cu: softmax over the last dimension, one block per row.
// defines: softmax_{f32, bf16, f16}
// Per row of n (cost::softmax): max n adds, shift n adds, exp n specials, sum n adds,
// one reciprocal, scale n muls; reads and writes the row once.
#include "tally_count.cuh"
#include "tally_dtype.cuh"
#include "tally_reduce.cuh"

// x (rows, n) -> y (rows, n); grid = rows blocks.
template <typename T>
__device__ void softmax_body(const T* x, T* y, unsigned long long n, unsigned long long* counters) {
    const T* xr = x + blockIdx.x * n;
    T* yr = y + blockIdx.x * n;
    unsigned long long mine = 0;  // elements of this row this thread handles
    float m = TALLY_NEG_INF;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        m = fmaxf(m, to_f32(xr[i]));
        ++mine;
    }
    m = tally_block_max_f32(m);
    float s = 0.0f;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        const float e = expf(to_f32(xr[i]) - m);
        s += e;
        yr[i] = from_f32<T>(e);  // an f32 row would keep full precision; bf16/f16 round twice
    }
    s = tally_block_sum_f32(s);
    const float inv = 1.0f / s;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x)
        yr[i] = from_f32<T>(to_f32(yr[i]) * inv);
    // per element: max, shift, sum (3 adds), exp, scale; thread 0 adds the reciprocal
    TallyWork w = tally_elems(mine, 3, 1, 0, 1, mine * sizeof(T), mine * sizeof(T));
    if (threadIdx.x == 0) w.c[TALLY_SPECIAL] += 1;
    tally_flush(w, counters);
}

// x (rows, n) -> y (rows, n); grid = rows blocks.
extern "C" __global__ void softmax_f32(const float* x, float* y, unsigned long long n,
                                       unsigned long long* counters) {
    softmax_body(x, y, n, counters);
}
// x (rows, n) -> y (rows, n); grid = rows blocks.
extern "C" __global__ void softmax_bf16(const bf16* x, bf16* y, unsigned long long n,
                                        unsigned long long* counters) {
    softmax_body(x, y, n, counters);
}
// x (rows, n) -> y (rows, n); grid = rows blocks.
extern "C" __global__ void softmax_f16(const f16* x, f16* y, unsigned long long n,
                                       unsigned long long* counters) {
    softmax_body(x, y, n, counters);
}
