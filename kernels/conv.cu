// conv.cu: NCHW 2-D convolution with groups (depthwise when groups == c_in), zero padding,
// an optional bias and a fused clamp (ReLU, ReLU6) applied as each output is stored.
// defines: conv2d_{f32, bf16, f16}
// Per output: (c_in/groups)·(taps inside the input) FMAs, plus 1 add for a bias and the
// clamp's comparisons (1 for ReLU, 2 for ReLU6). Padding taps are skipped, not multiplied by
// zero, and so not counted: this kernel's executed count is below cost::conv2d's dense count
// (which the CPU's im2col executes) by exactly the padding taps (docs/FPO.md).
// Bytes: the input, weight and bias once each (shared out over the grid's threads,
// tally_grid_share), every output once.
#include "tally_count.cuh"
#include "tally_dtype.cuh"

// The convolution's geometry, passed by value.
struct TallyConv {
    unsigned long long batch, c_in, c_out, h_in, w_in, h_out, w_out;
    unsigned kh, kw, stride, padding, groups;
    // Fused clamp: comparisons per output (0, 1 or 2) and its bounds.
    unsigned clamp_comparisons;
    float lo, hi;
};
// The host passes this struct by value (crates/tally-cuda ConvArgs): its size is pinned.
static_assert(sizeof(TallyConv) == 88, "TallyConv's layout is shared with the host");

// x (batch, c_in, h_in, w_in), weight (c_out, c_in/groups, kh, kw), bias (c_out)?
// -> y (batch, c_out, h_out, w_out); one thread per output, grid-stride.
template <typename T>
__device__ void conv2d_body(const T* x, const T* weight, const T* bias, T* y, TallyConv g,
                            unsigned long long* counters) {
    const unsigned long long outs = g.batch * g.c_out * g.h_out * g.w_out;
    const unsigned long long cpg = g.c_in / g.groups, opg = g.c_out / g.groups;
    const unsigned long long taps = cpg * g.kh * g.kw;
    unsigned long long done = 0, fmas = 0;
    for (unsigned long long o = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
         o < outs; o += (unsigned long long)gridDim.x * blockDim.x) {
        const unsigned long long ox = o % g.w_out, oy = (o / g.w_out) % g.h_out;
        const unsigned long long co = (o / (g.w_out * g.h_out)) % g.c_out;
        const unsigned long long n = o / (g.w_out * g.h_out * g.c_out);
        const unsigned long long c0 = (co / opg) * cpg;
        const T* wo = weight + co * taps;
        const long long y0 = (long long)(oy * g.stride) - g.padding;
        const long long x0 = (long long)(ox * g.stride) - g.padding;
        unsigned inside_y = 0, inside_x = 0;
        for (unsigned k = 0; k < g.kh; ++k) inside_y += y0 + k >= 0 && y0 + k < (long long)g.h_in;
        for (unsigned k = 0; k < g.kw; ++k) inside_x += x0 + k >= 0 && x0 + k < (long long)g.w_in;
        fmas += cpg * inside_y * inside_x;
        float acc = 0.0f;
        for (unsigned long long ci = 0; ci < cpg; ++ci) {
            const T* plane = x + ((n * g.c_in + c0 + ci) * g.h_in) * g.w_in;
            const T* wc = wo + ci * g.kh * g.kw;
            for (unsigned ky = 0; ky < g.kh; ++ky) {
                const long long iy = y0 + ky;
                if (iy < 0 || iy >= (long long)g.h_in) continue;  // a padding tap
                for (unsigned kx = 0; kx < g.kw; ++kx) {
                    const long long ix = x0 + kx;
                    if (ix < 0 || ix >= (long long)g.w_in) continue;
                    acc = fmaf(to_f32(plane[iy * g.w_in + ix]), to_f32(wc[ky * g.kw + kx]), acc);
                }
            }
        }
        if (bias != nullptr) acc += to_f32(bias[co]);
        if (g.clamp_comparisons > 0) acc = fminf(fmaxf(acc, g.lo), g.hi);
        y[o] = from_f32<T>(acc);
        ++done;
    }
    const unsigned has_bias = bias != nullptr;
    const unsigned long long read = tally_grid_share(g.batch * g.c_in * g.h_in * g.w_in) +
                                    tally_grid_share(g.c_out * taps) +
                                    tally_grid_share(has_bias ? g.c_out : 0);
    TallyWork w = tally_elems(done, has_bias + g.clamp_comparisons, 0, 0, 0, read * sizeof(T),
                              done * sizeof(T));
    w.c[TALLY_FMA] = fmas;
    tally_flush(w, counters);
}

// Stamps one dtype: x (batch, c_in, h_in, w_in), weight (c_out, c_in/groups, kh, kw),
// bias (c_out) or null -> y (batch, c_out, h_out, w_out)
#define CONV(T, SUFFIX)                                                                          \
    extern "C" __global__ void conv2d_##SUFFIX(const T* x, const T* weight, const T* bias, T* y, \
                                               TallyConv g, unsigned long long* counters) {     \
        conv2d_body(x, weight, bias, y, g, counters);                                           \
    }

CONV(float, f32)
CONV(bf16, bf16)
CONV(f16, f16)
