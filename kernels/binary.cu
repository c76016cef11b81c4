// binary.cu: elementwise functions of two operands, both contiguous or the second
// broadcast along rows.
// defines: {add, sub, mul, div, maximum, minimum, silu_mul}_{f32, bf16, f16}   a (n), b (n)
//          {add, ..., silu_mul}_bcast_{f32, bf16, f16}                 a (rows, cols), b (cols)
// Per output element each op counts cost::binary_per_elem; bytes: every a element, every
// distinct b element once (a broadcast b is counted by the first row only), every output.
#include "tally_count.cuh"
#include "tally_dtype.cuh"

// Each functor: the f32 function and its per-element (add, mul, special).
struct Add { static constexpr unsigned A = 1, M = 0, S = 0;
    __device__ static float f(float a, float b) { return a + b; } };
struct Sub { static constexpr unsigned A = 1, M = 0, S = 0;
    __device__ static float f(float a, float b) { return a - b; } };
struct Mul { static constexpr unsigned A = 0, M = 1, S = 0;
    __device__ static float f(float a, float b) { return a * b; } };
struct Div { static constexpr unsigned A = 0, M = 0, S = 1;
    __device__ static float f(float a, float b) { return a / b; } };
struct Maximum { static constexpr unsigned A = 1, M = 0, S = 0;
    __device__ static float f(float a, float b) { return fmaxf(a, b); } };
struct Minimum { static constexpr unsigned A = 1, M = 0, S = 0;
    __device__ static float f(float a, float b) { return fminf(a, b); } };
// silu(a)·b: silu's mul and sigmoid (as unary.cu's Silu), then the product with b.
struct SiluMul { static constexpr unsigned A = 0, M = 2, S = 1;
    __device__ static float f(float a, float b) { return a * (1.0f / (1.0f + expf(-a))) * b; } };

// a (n), b (n) -> y (n), grid-stride.
template <typename Op, typename T>
__device__ void binary_body(const T* a, const T* b, T* y, unsigned long long n,
                            unsigned long long* counters) {
    unsigned long long done = 0;
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        y[i] = from_f32<T>(Op::f(to_f32(a[i]), to_f32(b[i])));
        ++done;
    }
    tally_flush(tally_elems(done, Op::A, Op::M, 0, Op::S, 2 * done * sizeof(T), done * sizeof(T)),
                counters);
}

// a (rows, cols), b (cols) -> y (rows, cols), grid-stride over y.
template <typename Op, typename T>
__device__ void binary_bcast_body(const T* a, const T* b, T* y, unsigned long long rows,
                                  unsigned long long cols, unsigned long long* counters) {
    const unsigned long long n = rows * cols;
    unsigned long long done = 0, b_read = 0;
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        const unsigned long long c = i % cols;
        y[i] = from_f32<T>(Op::f(to_f32(a[i]), to_f32(b[c])));
        ++done;
        b_read += (i < cols);  // each b element is distinct input once
    }
    tally_flush(tally_elems(done, Op::A, Op::M, 0, Op::S, (done + b_read) * sizeof(T),
                            done * sizeof(T)),
                counters);
}

// Stamps the contiguous and row-broadcast entries of one op for one dtype.
#define BINARY(NAME, OP, T, SUFFIX)                                                              \
    extern "C" __global__ void NAME##_##SUFFIX(const T* a, const T* b, T* y, unsigned long long n, \
                                               unsigned long long* counters) {                  \
        binary_body<OP>(a, b, y, n, counters);                                                  \
    }                                                                                           \
    extern "C" __global__ void NAME##_bcast_##SUFFIX(const T* a, const T* b, T* y,              \
                                                     unsigned long long rows,                   \
                                                     unsigned long long cols,                   \
                                                     unsigned long long* counters) {            \
        binary_bcast_body<OP>(a, b, y, rows, cols, counters);                                   \
    }

BINARY(add, Add, float, f32)
BINARY(sub, Sub, float, f32)
BINARY(mul, Mul, float, f32)
BINARY(div, Div, float, f32)
BINARY(maximum, Maximum, float, f32)
BINARY(minimum, Minimum, float, f32)
BINARY(silu_mul, SiluMul, float, f32)
BINARY(add, Add, bf16, bf16)
BINARY(sub, Sub, bf16, bf16)
BINARY(mul, Mul, bf16, bf16)
BINARY(div, Div, bf16, bf16)
BINARY(maximum, Maximum, bf16, bf16)
BINARY(minimum, Minimum, bf16, bf16)
BINARY(silu_mul, SiluMul, bf16, bf16)
BINARY(add, Add, f16, f16)
BINARY(sub, Sub, f16, f16)
BINARY(mul, Mul, f16, f16)
BINARY(div, Div, f16, f16)
BINARY(maximum, Maximum, f16, f16)
BINARY(minimum, Minimum, f16, f16)
BINARY(silu_mul, SiluMul, f16, f16)
