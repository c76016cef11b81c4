// pool.cu: NCHW max and average pooling with a square window, no padding.
// defines: max_pool2d_{f32, bf16, f16}, avg_pool2d_{f32, bf16, f16}
// Per output (cost::pool2d): kernel² comparisons (max) or adds (avg), plus 1 mul for avg.
// Bytes: the input once (shared out over the grid's threads), every output once.
#include "tally_count.cuh"
#include "tally_dtype.cuh"
#include "tally_reduce.cuh"

// x (planes, h, w) -> y (planes, h_out, w_out); one thread per output, grid-stride.
template <bool AVG, typename T>
__device__ void pool2d_body(const T* x, T* y, unsigned long long planes, unsigned long long h,
                            unsigned long long w, unsigned kernel, unsigned stride,
                            unsigned long long* counters) {
    const unsigned long long ho = (h - kernel) / stride + 1, wo = (w - kernel) / stride + 1;
    const float inv = 1.0f / (float)(kernel * kernel);
    unsigned long long done = 0;
    for (unsigned long long o = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
         o < planes * ho * wo; o += (unsigned long long)gridDim.x * blockDim.x) {
        const unsigned long long ox = o % wo, oy = (o / wo) % ho, p = o / (wo * ho);
        const T* src = x + p * h * w + oy * stride * w + ox * stride;
        float acc = AVG ? 0.0f : TALLY_NEG_INF;
        for (unsigned ky = 0; ky < kernel; ++ky)
            for (unsigned kx = 0; kx < kernel; ++kx) {
                const float v = to_f32(src[ky * w + kx]);
                acc = AVG ? acc + v : fmaxf(acc, v);
            }
        y[o] = from_f32<T>(AVG ? acc * inv : acc);
        ++done;
    }
    TallyWork w_ = tally_elems(done, kernel * kernel, AVG ? 1 : 0, 0, 0,
                               tally_grid_share(planes * h * w) * sizeof(T), done * sizeof(T));
    tally_flush(w_, counters);
}

// Stamps one dtype: x (planes, h, w) -> y (planes, (h - kernel)/stride + 1, (w - kernel)/stride + 1)
#define POOL(T, SUFFIX)                                                                          \
    extern "C" __global__ void max_pool2d_##SUFFIX(const T* x, T* y, unsigned long long planes,  \
                                                   unsigned long long h, unsigned long long w,  \
                                                   unsigned kernel, unsigned stride,            \
                                                   unsigned long long* counters) {              \
        pool2d_body<false>(x, y, planes, h, w, kernel, stride, counters);                       \
    }                                                                                           \
    extern "C" __global__ void avg_pool2d_##SUFFIX(const T* x, T* y, unsigned long long planes,  \
                                                   unsigned long long h, unsigned long long w,  \
                                                   unsigned kernel, unsigned stride,            \
                                                   unsigned long long* counters) {              \
        pool2d_body<true>(x, y, planes, h, w, kernel, stride, counters);                        \
    }

POOL(float, f32)
POOL(bf16, bf16)
POOL(f16, f16)
