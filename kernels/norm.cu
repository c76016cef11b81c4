// norm.cu: layer norm and RMS norm over the last dimension, one block per row.
// defines: layer_norm_{f32, bf16, f16}, rms_norm_{f32, bf16, f16}, add_rms_norm_{f32, bf16, f16},
// add_layer_norm_{f32, bf16, f16}
// Counts follow cost::layer_norm, cost::rms_norm, cost::add_rms_norm and cost::add_layer_norm;
// weight and bias
// (optional: pass nullptr) are distinct inputs, so only block 0 counts their bytes.
#include "tally_count.cuh"
#include "tally_dtype.cuh"
#include "tally_reduce.cuh"

// x (rows, n), r (rows, n)?, weight (n)?, bias (n)? -> y (rows, n); grid = rows blocks.
// Per row: with a residual r, the add n adds (the sum rounded to T, as a separate add rounds
// it, and kept in y); then over x (or the sum): mean n adds + 1 mul; centre n adds (done in
// both later passes, counted once); variance n fmas + 1 mul; +eps 1 add; rsqrt 1; normalise
// n muls; weight n muls; bias n adds. Bytes: x (and r, and the parameters once) read; y
// written once (each thread reads back only what it wrote).
template <typename T>
__device__ void layer_norm_body(const T* x, const T* r, const T* weight, const T* bias, T* y,
                                unsigned long long n, float eps, unsigned long long* counters) {
    const unsigned long long off = blockIdx.x * n;
    // The row as normalised: x itself, or the sum kept in y.
    const T* v = r != nullptr ? y + off : x + off;
    const float inv_n = 1.0f / (float)n;
    unsigned long long mine = 0;
    float s = 0.0f;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        float e = to_f32(x[off + i]);
        if (r != nullptr) {
            const T sum = from_f32<T>(e + to_f32(r[off + i]));
            y[off + i] = sum;
            e = to_f32(sum);
        }
        s += e;
        ++mine;
    }
    const float mean = tally_block_sum_f32(s) * inv_n;
    float var = 0.0f;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        const float d = to_f32(v[i]) - mean;
        var = fmaf(d, d, var);
    }
    const float rstd = rsqrtf(tally_block_sum_f32(var) * inv_n + eps);
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        float o = (to_f32(v[i]) - mean) * rstd;
        if (weight != nullptr) o *= to_f32(weight[i]);
        if (bias != nullptr) o += to_f32(bias[i]);
        y[off + i] = from_f32<T>(o);
    }
    const unsigned has_r = r != nullptr, has_w = weight != nullptr, has_b = bias != nullptr;
    unsigned long long read = (1 + has_r) * mine * sizeof(T);
    if (blockIdx.x == 0) read += mine * (has_w + has_b) * sizeof(T);
    TallyWork w = tally_elems(mine, 2 + has_r + has_b, 1 + has_w, 1, 0, read, mine * sizeof(T));
    if (threadIdx.x == 0) {  // the row's scalars: 2 muls (×1/n twice), +eps, rsqrt
        w.c[TALLY_MUL] += 2;
        w.c[TALLY_ADD] += 1;
        w.c[TALLY_SPECIAL] += 1;
    }
    tally_flush(w, counters);
}

// x (rows, n), weight (n)? -> y (rows, n); grid = rows blocks.
// Per row: Σx² n fmas; ×1/n 1 mul; +eps 1 add; rsqrt 1; scale n muls; weight n muls.
template <typename T>
__device__ void rms_norm_body(const T* x, const T* weight, T* y, unsigned long long n, float eps,
                              unsigned long long* counters) {
    const T* xr = x + blockIdx.x * n;
    T* yr = y + blockIdx.x * n;
    unsigned long long mine = 0;
    float ss = 0.0f;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = to_f32(xr[i]);
        ss = fmaf(v, v, ss);
        ++mine;
    }
    const float rstd = rsqrtf(tally_block_sum_f32(ss) * (1.0f / (float)n) + eps);
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        float o = to_f32(xr[i]) * rstd;
        if (weight != nullptr) o *= to_f32(weight[i]);
        yr[i] = from_f32<T>(o);
    }
    const unsigned has_w = weight != nullptr;
    unsigned long long read = mine * sizeof(T);
    if (blockIdx.x == 0) read += mine * has_w * sizeof(T);
    TallyWork w = tally_elems(mine, 0, 1 + has_w, 1, 0, read, mine * sizeof(T));
    if (threadIdx.x == 0) {  // the row's scalars: ×1/n, +eps, rsqrt
        w.c[TALLY_MUL] += 1;
        w.c[TALLY_ADD] += 1;
        w.c[TALLY_SPECIAL] += 1;
    }
    tally_flush(w, counters);
}

// x (rows, n), r (rows, n), weight (n)? -> sum (rows, n), y (rows, n); grid = rows blocks.
// Per row: the residual add n adds (the sum rounded to T and stored, as a separate add
// stores it), then rms_norm's counts over the stored sum. Bytes: x, r (and the weight once)
// read; sum and y written; the norm's read of the sum this thread just wrote is not an input.
template <typename T>
__device__ void add_rms_norm_body(const T* x, const T* r, const T* weight, T* sum, T* y,
                                  unsigned long long n, float eps, unsigned long long* counters) {
    const unsigned long long off = blockIdx.x * n;
    unsigned long long mine = 0;
    float ss = 0.0f;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        const T s = from_f32<T>(to_f32(x[off + i]) + to_f32(r[off + i]));
        sum[off + i] = s;
        const float v = to_f32(s);
        ss = fmaf(v, v, ss);
        ++mine;
    }
    const float rstd = rsqrtf(tally_block_sum_f32(ss) * (1.0f / (float)n) + eps);
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        float o = to_f32(sum[off + i]) * rstd;  // each thread reads back only what it wrote
        if (weight != nullptr) o *= to_f32(weight[i]);
        y[off + i] = from_f32<T>(o);
    }
    const unsigned has_w = weight != nullptr;
    unsigned long long read = 2 * mine * sizeof(T);
    if (blockIdx.x == 0) read += mine * has_w * sizeof(T);
    TallyWork w = tally_elems(mine, 1, 1 + has_w, 1, 0, read, 2 * mine * sizeof(T));
    if (threadIdx.x == 0) {  // the row's scalars: ×1/n, +eps, rsqrt
        w.c[TALLY_MUL] += 1;
        w.c[TALLY_ADD] += 1;
        w.c[TALLY_SPECIAL] += 1;
    }
    tally_flush(w, counters);
}

// Stamps layer_norm, rms_norm, add_rms_norm and add_layer_norm for one dtype (shapes above
// each body).
#define NORM(T, SUFFIX)                                                                          \
    extern "C" __global__ void layer_norm_##SUFFIX(const T* x, const T* weight, const T* bias,  \
                                                   T* y, unsigned long long n, float eps,       \
                                                   unsigned long long* counters) {              \
        layer_norm_body<T>(x, nullptr, weight, bias, y, n, eps, counters);                      \
    }                                                                                           \
    extern "C" __global__ void rms_norm_##SUFFIX(const T* x, const T* weight, T* y,             \
                                                 unsigned long long n, float eps,               \
                                                 unsigned long long* counters) {                \
        rms_norm_body(x, weight, y, n, eps, counters);                                          \
    }                                                                                           \
    extern "C" __global__ void add_rms_norm_##SUFFIX(const T* x, const T* r, const T* weight,   \
                                                     T* sum, T* y, unsigned long long n,        \
                                                     float eps, unsigned long long* counters) { \
        add_rms_norm_body(x, r, weight, sum, y, n, eps, counters);                              \
    }                                                                                           \
    extern "C" __global__ void add_layer_norm_##SUFFIX(const T* x, const T* r, const T* weight, \
                                                       const T* bias, T* y,                     \
                                                       unsigned long long n, float eps,         \
                                                       unsigned long long* counters) {          \
        layer_norm_body(x, r, weight, bias, y, n, eps, counters);                               \
    }

// x (rows, n), weight (n)?, bias (n)? -> y (rows, n)
NORM(float, f32)
NORM(bf16, bf16)
NORM(f16, f16)
