// reduce.cu: sum, mean, max and argmax over one dimension of a contiguous tensor seen as
// (outer, n, inner); the reduced dimension is kept with size 1.
// defines: {sum, mean, max, argmax}_rows_{f32, bf16, f16}   inner == 1, one block per row
//          {sum, mean, max, argmax}_cols_{f32, bf16, f16}   inner > 1, one thread per output
// Per output (cost::reduce): n adds (comparisons for max and argmax), plus 1 mul for mean;
// reads every input element once; writes one element per output (argmax: a u32 index, the
// first maximum's).
#include "tally_count.cuh"
#include "tally_dtype.cuh"
#include "tally_reduce.cuh"

// The running state of a reduction: a value and (argmax) the index where it was seen.
struct Acc {
    float v;
    unsigned i;
};

// Each functor: the start value, one step, a merge of two partials, and the output.
struct Sum {
    static constexpr unsigned MUL = 0;
    __device__ static Acc start() { return Acc{0.0f, 0}; }
    __device__ static Acc step(Acc a, float x, unsigned) { return Acc{a.v + x, 0}; }
    __device__ static Acc merge(Acc a, Acc b) { return Acc{a.v + b.v, 0}; }
};
struct Mean {
    static constexpr unsigned MUL = 1;
    __device__ static Acc start() { return Acc{0.0f, 0}; }
    __device__ static Acc step(Acc a, float x, unsigned) { return Acc{a.v + x, 0}; }
    __device__ static Acc merge(Acc a, Acc b) { return Acc{a.v + b.v, 0}; }
};
// The maximum and the index of its first occurrence, as the CPU's scan finds them: the
// first element is taken whatever it is (a NaN there wins), any later NaN never is.
struct Best {
    static constexpr unsigned MUL = 0;
    __device__ static Acc start() { return Acc{TALLY_NEG_INF, 0xffffffffu}; }
    __device__ static Acc step(Acc a, float x, unsigned i) {
        const bool take = a.i == 0xffffffffu ? (i == 0 || x == x) : x > a.v;
        return take ? Acc{x, i} : a;
    }
    __device__ static Acc merge(Acc a, Acc b) {
        if (b.i == 0xffffffffu) return a;
        if (a.i == 0xffffffffu) return b;
        if (a.i == 0 && a.v != a.v) return a;
        if (b.i == 0 && b.v != b.v) return b;
        return b.v > a.v || (b.v == a.v && b.i < a.i) ? b : a;
    }
};
struct Max : Best {};
struct Argmax : Best {};

template <typename T>
__device__ __forceinline__ void store(T* y, unsigned long long at, Acc a, unsigned long long n,
                                      const Sum&) {
    y[at] = from_f32<T>(a.v);
}
template <typename T>
__device__ __forceinline__ void store(T* y, unsigned long long at, Acc a, unsigned long long n,
                                      const Mean&) {
    y[at] = from_f32<T>(a.v * (1.0f / (float)n));
}
template <typename T>
__device__ __forceinline__ void store(T* y, unsigned long long at, Acc a, unsigned long long n,
                                      const Max&) {
    y[at] = from_f32<T>(a.v);
}
__device__ __forceinline__ void store(unsigned* y, unsigned long long at, Acc a,
                                      unsigned long long n, const Argmax&) {
    y[at] = a.i == 0xffffffffu ? 0u : a.i;
}

template <typename Op>
__device__ __forceinline__ Acc warp_merge(Acc a) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        Acc b{__shfl_xor_sync(0xffffffffu, a.v, o), __shfl_xor_sync(0xffffffffu, a.i, o)};
        a = Op::merge(a, b);
    }
    return a;
}

// x (rows, n) -> y (rows); grid = rows blocks.
template <typename Op, typename T, typename O>
__device__ void reduce_rows_body(const T* x, O* y, unsigned long long n,
                                 unsigned long long* counters) {
    const T* xr = x + blockIdx.x * n;
    Acc a = Op::start();
    unsigned long long mine = 0;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) {
        a = Op::step(a, to_f32(xr[i]), (unsigned)i);
        ++mine;
    }
    __shared__ float pv[32];
    __shared__ unsigned pi[32];
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    a = warp_merge<Op>(a);
    if (lane == 0) {
        pv[warp] = a.v;
        pi[warp] = a.i;
    }
    __syncthreads();
    if (warp == 0) {
        const Acc none = Op::start();
        Acc b = lane < (blockDim.x >> 5) ? Acc{pv[lane], pi[lane]} : none;
        b = warp_merge<Op>(b);
        if (lane == 0) store(y, blockIdx.x, b, n, Op());
    }
    TallyWork w = tally_elems(mine, 1, 0, 0, 0, mine * sizeof(T), 0);
    if (threadIdx.x == 0) {
        w.c[TALLY_MUL] += Op::MUL;
        w.c[TALLY_BYTES_WRITTEN] += sizeof(O);
    }
    tally_flush(w, counters);
}

// x (outer, n, inner) -> y (outer, inner); grid-stride over the outputs.
template <typename Op, typename T, typename O>
__device__ void reduce_cols_body(const T* x, O* y, unsigned long long outer, unsigned long long n,
                                 unsigned long long inner, unsigned long long* counters) {
    unsigned long long outs = 0;
    for (unsigned long long o = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
         o < outer * inner; o += (unsigned long long)gridDim.x * blockDim.x) {
        const T* xo = x + (o / inner) * n * inner + o % inner;
        Acc a = Op::start();
        for (unsigned long long i = 0; i < n; ++i) a = Op::step(a, to_f32(xo[i * inner]), i);
        store(y, o, a, n, Op());
        ++outs;
    }
    TallyWork w = tally_elems(outs, n, Op::MUL, 0, 0, outs * n * sizeof(T), outs * sizeof(O));
    tally_flush(w, counters);
}

// Stamps one op and dtype: rows x (rows, n) -> y (rows); cols x (outer, n, inner) -> y (outer,
// inner). O is the output element (T, or unsigned for argmax).
#define REDUCE(OP, NAME, T, O, SUFFIX)                                                           \
    extern "C" __global__ void NAME##_rows_##SUFFIX(const T* x, O* y, unsigned long long n,      \
                                                    unsigned long long* counters) {             \
        reduce_rows_body<OP>(x, y, n, counters);                                                \
    }                                                                                           \
    extern "C" __global__ void NAME##_cols_##SUFFIX(const T* x, O* y, unsigned long long outer,  \
                                                    unsigned long long n,                       \
                                                    unsigned long long inner,                   \
                                                    unsigned long long* counters) {             \
        reduce_cols_body<OP>(x, y, outer, n, inner, counters);                                  \
    }

// Stamps the four reductions for one dtype.
#define REDUCE_ALL(T, SUFFIX)                                                                    \
    REDUCE(Sum, sum, T, T, SUFFIX)                                                               \
    REDUCE(Mean, mean, T, T, SUFFIX)                                                             \
    REDUCE(Max, max, T, T, SUFFIX)                                                               \
    REDUCE(Argmax, argmax, T, unsigned, SUFFIX)

REDUCE_ALL(float, f32)
REDUCE_ALL(bf16, bf16)
REDUCE_ALL(f16, f16)
