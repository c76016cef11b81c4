// unary.cu: elementwise functions of one contiguous operand, and affine a·x + b.
// defines: {neg, relu, relu6, gelu_erf, gelu_tanh, silu, sigmoid, tanh, exp, log, sqrt, recip,
//           affine}_{f32, bf16, f16}
// Per element each op counts cost::unary_per_elem (affine: one fma), and reads and
// writes one element.
#include "tally_count.cuh"
#include "tally_dtype.cuh"

// Each functor: the f32 function and its per-element (add, mul, fma, special).
struct Neg { static constexpr unsigned A = 0, M = 1, F = 0, S = 0;
    __device__ static float f(float x) { return -x; } };
struct Relu { static constexpr unsigned A = 1, M = 0, F = 0, S = 0;
    __device__ static float f(float x) { return fmaxf(x, 0.0f); } };
// min(max(x, 0), 6): two comparisons.
struct Relu6 { static constexpr unsigned A = 2, M = 0, F = 0, S = 0;
    __device__ static float f(float x) { return fminf(fmaxf(x, 0.0f), 6.0f); } };
// 0.5·x·(1 + erf(x·(1/√2))): 3 mul, 1 add, 1 erf.
struct GeluErf { static constexpr unsigned A = 1, M = 3, F = 0, S = 1;
    __device__ static float f(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); } };
// 0.5·x·(1 + tanh(√(2/π)·x·(1 + 0.044715·x²))): 6 mul, 2 add, 1 tanh.
struct GeluTanh { static constexpr unsigned A = 2, M = 6, F = 0, S = 1;
    __device__ static float f(float x) {
        float inner = 0.7978845608028654f * x * (1.0f + 0.044715f * (x * x));
        return 0.5f * x * (1.0f + tanhf(inner));
    } };
// x·σ(x): 1 mul, 1 sigmoid.
struct Silu { static constexpr unsigned A = 0, M = 1, F = 0, S = 1;
    __device__ static float f(float x) { return x * (1.0f / (1.0f + expf(-x))); } };
struct Sigmoid { static constexpr unsigned A = 0, M = 0, F = 0, S = 1;
    __device__ static float f(float x) { return 1.0f / (1.0f + expf(-x)); } };
struct Tanh { static constexpr unsigned A = 0, M = 0, F = 0, S = 1;
    __device__ static float f(float x) { return tanhf(x); } };
struct Exp { static constexpr unsigned A = 0, M = 0, F = 0, S = 1;
    __device__ static float f(float x) { return expf(x); } };
struct Log { static constexpr unsigned A = 0, M = 0, F = 0, S = 1;
    __device__ static float f(float x) { return logf(x); } };
struct Sqrt { static constexpr unsigned A = 0, M = 0, F = 0, S = 1;
    __device__ static float f(float x) { return sqrtf(x); } };
struct Recip { static constexpr unsigned A = 0, M = 0, F = 0, S = 1;
    __device__ static float f(float x) { return 1.0f / x; } };

// x (n) -> y (n), grid-stride; each thread counts the elements it wrote.
template <typename Op, typename T>
__device__ void unary_body(const T* x, T* y, unsigned long long n, unsigned long long* counters) {
    unsigned long long done = 0;
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        y[i] = from_f32<T>(Op::f(to_f32(x[i])));
        ++done;
    }
    tally_flush(tally_elems(done, Op::A, Op::M, Op::F, Op::S, done * sizeof(T), done * sizeof(T)),
                counters);
}

// x (n) -> y (n) = mul·x + add, one fma per element.
template <typename T>
__device__ void affine_body(const T* x, T* y, unsigned long long n, float mul, float add,
                            unsigned long long* counters) {
    unsigned long long done = 0;
    for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
         i += (unsigned long long)gridDim.x * blockDim.x) {
        y[i] = from_f32<T>(fmaf(to_f32(x[i]), mul, add));
        ++done;
    }
    tally_flush(tally_elems(done, 0, 0, 1, 0, done * sizeof(T), done * sizeof(T)), counters);
}

// Stamps the f32, bf16 and f16 entries of one unary op: x (n) -> y (n).
#define UNARY(NAME, OP)                                                                          \
    extern "C" __global__ void NAME##_f32(const float* x, float* y, unsigned long long n,       \
                                          unsigned long long* counters) {                       \
        unary_body<OP>(x, y, n, counters);                                                      \
    }                                                                                           \
    extern "C" __global__ void NAME##_bf16(const bf16* x, bf16* y, unsigned long long n,        \
                                           unsigned long long* counters) {                      \
        unary_body<OP>(x, y, n, counters);                                                      \
    }                                                                                           \
    extern "C" __global__ void NAME##_f16(const f16* x, f16* y, unsigned long long n,           \
                                          unsigned long long* counters) {                       \
        unary_body<OP>(x, y, n, counters);                                                      \
    }

UNARY(neg, Neg)
UNARY(relu, Relu)
UNARY(relu6, Relu6)
UNARY(gelu_erf, GeluErf)
UNARY(gelu_tanh, GeluTanh)
UNARY(silu, Silu)
UNARY(sigmoid, Sigmoid)
UNARY(tanh, Tanh)
UNARY(exp, Exp)
UNARY(log, Log)
UNARY(sqrt, Sqrt)
UNARY(recip, Recip)

// x (n) -> y (n) = mul·x + add
extern "C" __global__ void affine_f32(const float* x, float* y, unsigned long long n, float mul,
                                      float add, unsigned long long* counters) {
    affine_body(x, y, n, mul, add, counters);
}
// x (n) -> y (n) = mul·x + add
extern "C" __global__ void affine_bf16(const bf16* x, bf16* y, unsigned long long n, float mul,
                                       float add, unsigned long long* counters) {
    affine_body(x, y, n, mul, add, counters);
}
// x (n) -> y (n) = mul·x + add
extern "C" __global__ void affine_f16(const f16* x, f16* y, unsigned long long n, float mul,
                                      float add, unsigned long long* counters) {
    affine_body(x, y, n, mul, add, counters);
}
