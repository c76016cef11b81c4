// copy.cu: a strided view (rank ≤ 4) made contiguous, and dtype casts.
// defines: copy_strided_{f32, bf16, f16}, copy_into_{f32, bf16, f16}
//          cast_{f32_bf16, bf16_f32, f32_f16, f16_f32, bf16_f16, f16_bf16}
//          cast_{u32_f32, u32_bf16, u32_f16}   (masks to floats)
// No FPO (cost::copy, cost::cast): bytes only. A strided copy reads each distinct input
// element once: an element reached through a stride-0 (broadcast) dimension is counted
// only at index 0 of that dimension.
#include "tally_count.cuh"
#include "tally_dtype.cuh"

// The view: dims and element strides, rank ≤ 4 padded at the front with (1, 0).
struct TallyView4 {
    unsigned long long dims[4];
    long long strides[4];
};
// The host passes this struct by value (crates/tally-cuda View4): its size is pinned.
static_assert(sizeof(TallyView4) == 64, "TallyView4's layout is shared with the host");

// x (view dims, strided) -> y (the same dims, element strides `dst`); grid-stride. A
// contiguous y is `dst` = the row-major strides of the dims.
template <typename T>
__device__ void copy_view_body(const T* x, T* y, TallyView4 v, const long long* dst,
                               unsigned long long* counters) {
    const unsigned long long n = v.dims[0] * v.dims[1] * v.dims[2] * v.dims[3];
    unsigned long long done = 0, distinct = 0;
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        unsigned long long rest = i;
        long long off = 0, at = 0;
        bool first = true;  // index 0 along every broadcast dimension
        for (int k = 3; k >= 0; --k) {
            const unsigned long long idx = rest % v.dims[k];
            rest /= v.dims[k];
            off += (long long)idx * v.strides[k];
            at += (long long)idx * dst[k];
            first = first && (v.strides[k] != 0 || idx == 0);
        }
        y[at] = x[off];
        ++done;
        distinct += first;
    }
    tally_flush(tally_elems(0, 0, 0, 0, 0, distinct * sizeof(T), done * sizeof(T)), counters);
}

// x (view dims, strided) -> y (dims[0]·…·dims[3]) contiguous; grid-stride.
template <typename T>
__device__ void copy_strided_body(const T* x, T* y, TallyView4 v, unsigned long long* counters) {
    const long long dst[4] = {(long long)(v.dims[1] * v.dims[2] * v.dims[3]),
                              (long long)(v.dims[2] * v.dims[3]), (long long)v.dims[3], 1};
    copy_view_body(x, y, v, dst, counters);
}

// x (n) of S -> y (n) of D, contiguous; grid-stride.
template <typename S, typename D>
__device__ void cast_body(const S* x, D* y, unsigned long long n, unsigned long long* counters) {
    unsigned long long done = 0;
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        y[i] = from_f32<D>(to_f32(x[i]));
        ++done;
    }
    tally_flush(tally_elems(0, 0, 0, 0, 0, done * sizeof(S), done * sizeof(D)), counters);
}

// copy_strided: x (view dims, strided) -> y (dims[0]·…·dims[3]) contiguous;
// copy_into: x (view) -> y seen through `dst` (view.dims, dst.strides): concat's parts and
// the KV cache's in-place appends.
#define COPY(T, SUFFIX)                                                                          \
    extern "C" __global__ void copy_strided_##SUFFIX(const T* x, T* y, TallyView4 view,         \
                                                     unsigned long long* counters) {            \
        copy_strided_body(x, y, view, counters);                                                \
    }                                                                                           \
    extern "C" __global__ void copy_into_##SUFFIX(const T* x, T* y, TallyView4 view,            \
                                                  TallyView4 dst,                               \
                                                  unsigned long long* counters) {               \
        copy_view_body(x, y, view, dst.strides, counters);                                      \
    }
COPY(float, f32)
COPY(bf16, bf16)
COPY(f16, f16)

// x (n) of S -> y (n) of D
#define CAST(S, SN, D, DN)                                                                       \
    extern "C" __global__ void cast_##SN##_##DN(const S* x, D* y, unsigned long long n,         \
                                                unsigned long long* counters) {                 \
        cast_body(x, y, n, counters);                                                           \
    }
CAST(float, f32, bf16, bf16)
CAST(bf16, bf16, float, f32)
CAST(float, f32, f16, f16)
CAST(f16, f16, float, f32)
CAST(bf16, bf16, f16, f16)
CAST(f16, f16, bf16, bf16)
CAST(unsigned, u32, float, f32)
CAST(unsigned, u32, bf16, bf16)
CAST(unsigned, u32, f16, f16)
