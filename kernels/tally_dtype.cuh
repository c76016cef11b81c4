// tally_dtype.cuh: bf16/f16 storage types with f32 math, without CUDA's fp16 headers
// (NVRTC compiles these sources with no include path). Conversions are not FPO.
#pragma once

// bfloat16 storage: the high half of an f32.
struct bf16 {
    unsigned short bits;
};
// IEEE half storage.
struct f16 {
    unsigned short bits;
};

__device__ __forceinline__ float to_f32(float x) { return x; }
// u32 (masks, ids) read as a float: exact below 2^24.
__device__ __forceinline__ float to_f32(unsigned x) { return (float)x; }
__device__ __forceinline__ float to_f32(bf16 x) {
    return __uint_as_float(((unsigned)x.bits) << 16);
}
__device__ __forceinline__ float to_f32(f16 x) {
#ifdef TALLY_HOST_EMULATION  // the CPU test harness (crates/tally-cuda/tests/emulated)
    _Float16 h;
    __builtin_memcpy(&h, &x.bits, 2);
    return (float)h;
#else
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
    return f;
#endif
}

template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) {
    return x;
}
// Round to nearest even; NaN stays NaN (quiet).
template <>
__device__ __forceinline__ bf16 from_f32<bf16>(float x) {
    unsigned u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{(unsigned short)((u >> 16) | 0x40u)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return bf16{(unsigned short)(u >> 16)};
}
template <>
__device__ __forceinline__ f16 from_f32<f16>(float x) {
    unsigned short h;
#ifdef TALLY_HOST_EMULATION
    const _Float16 v = (_Float16)x;
    __builtin_memcpy(&h, &v, 2);
#else
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
#endif
    return f16{h};
}
