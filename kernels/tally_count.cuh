// tally_count.cuh: the counter buffer every Tally kernel adds its executed work into.
//
// `unsigned long long* counters` points at six device counters, in this order:
//   [0] add   [1] mul   [2] fma   [3] special   [4] bytes_read   [5] bytes_written
// (the columns of tally_core::Work, convention in docs/FPO.md). A kernel may be passed
// counters == nullptr to run uncounted. Each thread tallies what it executed in a
// TallyWork held in registers; tally_flush sums the block's tallies in shared memory and
// thread 0 does one atomicAdd per non-zero column. Every thread of the block must reach
// tally_flush (no early return), and blockDim.x must be a multiple of 32, at most 1024.
#pragma once

#define TALLY_ADD 0
#define TALLY_MUL 1
#define TALLY_FMA 2
#define TALLY_SPECIAL 3
#define TALLY_BYTES_READ 4
#define TALLY_BYTES_WRITTEN 5
#define TALLY_COUNTERS 6

// One thread's executed work: the six columns above.
struct TallyWork {
    unsigned long long c[TALLY_COUNTERS];
};

// A tally of nothing.
__device__ __forceinline__ TallyWork tally_zero() {
    TallyWork w;
#pragma unroll
    for (int i = 0; i < TALLY_COUNTERS; ++i) w.c[i] = 0;
    return w;
}

// `elems` elements, each costing (add, mul, fma, special) arithmetic, reading `read` bytes
// and writing `written` bytes in all.
__device__ __forceinline__ TallyWork tally_elems(unsigned long long elems, unsigned add,
                                                 unsigned mul, unsigned fma, unsigned special,
                                                 unsigned long long read,
                                                 unsigned long long written) {
    TallyWork w;
    w.c[TALLY_ADD] = elems * add;
    w.c[TALLY_MUL] = elems * mul;
    w.c[TALLY_FMA] = elems * fma;
    w.c[TALLY_SPECIAL] = elems * special;
    w.c[TALLY_BYTES_READ] = read;
    w.c[TALLY_BYTES_WRITTEN] = written;
    return w;
}

// How many of `total` elements this thread owns when the grid shares them out grid-stride
// (element i to global thread i mod gridDim.x·blockDim.x). For operands that many threads
// read, such as a convolution's input: each distinct element is counted exactly once.
__device__ __forceinline__ unsigned long long tally_grid_share(unsigned long long total) {
    const unsigned long long threads = (unsigned long long)gridDim.x * gridDim.y * gridDim.z *
                                       blockDim.x;
    const unsigned long long block =
        blockIdx.x + (unsigned long long)gridDim.x * (blockIdx.y + (unsigned long long)gridDim.y *
                                                                       blockIdx.z);
    const unsigned long long me = block * blockDim.x + threadIdx.x;
    return me < total ? (total - me + threads - 1) / threads : 0;
}

__device__ __forceinline__ unsigned long long tally_warp_sum(unsigned long long v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// Sums every thread's `w` over the block and adds the total into `counters` (one thread,
// one atomicAdd per non-zero column). Call once per block, from every thread.
__device__ __forceinline__ void tally_flush(const TallyWork& w, unsigned long long* counters) {
    if (counters == nullptr) return;  // uniform over the block
    __shared__ unsigned long long part[32][TALLY_COUNTERS];
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
#pragma unroll
    for (int i = 0; i < TALLY_COUNTERS; ++i) {
        unsigned long long v = tally_warp_sum(w.c[i]);
        if (lane == 0) part[warp][i] = v;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        const unsigned warps = (blockDim.x + 31u) / 32u;
        for (int i = 0; i < TALLY_COUNTERS; ++i) {
            unsigned long long s = 0;
            for (unsigned k = 0; k < warps; ++k) s += part[k][i];
            if (s != 0) atomicAdd(&counters[i], s);
        }
    }
}
