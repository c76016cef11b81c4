// tally_reduce.cuh: block-wide f32 sum and max for the one-block-per-row kernels.
// Combining the threads' partials is not counted: by docs/FPO.md a reduction of n terms
// costs n adds however it is bracketed, and each thread counts its own terms.
// blockDim.x must be a multiple of 32, at most 1024; every thread must call.
#pragma once

// −∞ as f32 (NVRTC has no math.h, so no INFINITY).
#define TALLY_NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float tally_warp_sum_f32(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float tally_warp_max_f32(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The block's sum of `v`, returned to every thread.
__device__ __forceinline__ float tally_block_sum_f32(float v) {
    __shared__ float part[32];
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    v = tally_warp_sum_f32(v);
    __syncthreads();  // part may still be read by a previous call
    if (lane == 0) part[warp] = v;
    __syncthreads();
    const unsigned warps = blockDim.x >> 5;
    v = lane < warps ? part[lane] : 0.0f;
    return tally_warp_sum_f32(v);
}

// The block's max of `v`, returned to every thread.
__device__ __forceinline__ float tally_block_max_f32(float v) {
    __shared__ float part[32];
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    v = tally_warp_max_f32(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    const unsigned warps = blockDim.x >> 5;
    v = lane < warps ? part[lane] : TALLY_NEG_INF;
    return tally_warp_max_f32(v);
}
