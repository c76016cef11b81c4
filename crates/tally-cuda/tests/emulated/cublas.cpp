// cublas.cpp: a stand-in for cuBLAS (libcublas.so) beside the emulated driver: the one
// product Tally calls, cublasGemmStridedBatchedEx, in cuBLAS's column-major terms, summed in
// double (a reference, not a model of cuBLAS's order of additions) and rounded once to the
// output dtype. TF32 compute rounds both operands to TF32 (10 mantissa bits) first, as the
// tensor cores do. Device memory is host memory (driver.cpp), so the addresses are read
// directly.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {
typedef int Status;
constexpr Status kSuccess = 0, kInvalidValue = 7, kNotSupported = 15;
constexpr int kOpN = 0, kOpT = 1;
constexpr int kR32F = 0, kR16F = 2, kR16BF = 14;
constexpr int kCompute32F = 68, kCompute32FFastTF32 = 77;
int handle_token;

float bits_to_f32(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
uint32_t f32_to_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

float load(const void* p, size_t i, int ty) {
    switch (ty) {
        case kR32F: return static_cast<const float*>(p)[i];
        case kR16BF: return bits_to_f32(uint32_t(static_cast<const uint16_t*>(p)[i]) << 16);
        default: {
            _Float16 h;
            std::memcpy(&h, static_cast<const uint16_t*>(p) + i, 2);
            return float(h);
        }
    }
}

void store(void* p, size_t i, int ty, double v) {
    const float f = float(v);
    switch (ty) {
        case kR32F: static_cast<float*>(p)[i] = f; break;
        case kR16BF: {
            uint32_t u = f32_to_bits(f);
            uint16_t h = (u & 0x7fffffffu) > 0x7f800000u
                             ? uint16_t((u >> 16) | 0x40u)
                             : uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
            static_cast<uint16_t*>(p)[i] = h;
            break;
        }
        default: {
            const _Float16 h = _Float16(f);
            std::memcpy(static_cast<uint16_t*>(p) + i, &h, 2);
        }
    }
}

// Rounds to TF32: 10 explicit mantissa bits, to nearest even.
float tf32(float x) {
    uint32_t u = f32_to_bits(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return x;
    u += 0xfffu + ((u >> 13) & 1u);
    return bits_to_f32(u & ~0x1fffu);
}
}  // namespace

extern "C" {
Status cublasCreate_v2(void** handle) {
    *handle = &handle_token;
    return kSuccess;
}
Status cublasDestroy_v2(void*) { return kSuccess; }
Status cublasSetStream_v2(void*, void*) { return kSuccess; }
Status cublasSetMathMode(void*, int) { return kSuccess; }
Status cublasSetWorkspace_v2(void*, void*, size_t) { return kSuccess; }

// C = alpha·op(A)·op(B) + beta·C per batch entry, column-major; alpha and beta host f32.
Status cublasGemmStridedBatchedEx(void*, int transa, int transb, int m, int n, int k,
                                  const void* alpha, const void* a, int a_type, int lda,
                                  long long stride_a, const void* b, int b_type, int ldb,
                                  long long stride_b, const void* beta, void* c, int c_type,
                                  int ldc, long long stride_c, int batch, int compute, int) {
    auto known = [](int t) { return t == kR32F || t == kR16F || t == kR16BF; };
    if (!known(a_type) || !known(b_type) || !known(c_type) ||
        (compute != kCompute32F && compute != kCompute32FFastTF32)) {
        std::fprintf(stderr, "emulated cuBLAS: types %d %d %d, compute %d not emulated\n", a_type,
                     b_type, c_type, compute);
        return kNotSupported;
    }
    if (m < 0 || n < 0 || k < 0 || batch < 0 || (transa != kOpN && transa != kOpT) ||
        (transb != kOpN && transb != kOpT) || ldc < (m > 0 ? m : 1) ||
        lda < (transa == kOpN ? (m > 0 ? m : 1) : (k > 0 ? k : 1)) ||
        ldb < (transb == kOpN ? (k > 0 ? k : 1) : (n > 0 ? n : 1))) {
        std::fprintf(stderr, "emulated cuBLAS: invalid gemm m=%d n=%d k=%d lda=%d ldb=%d ldc=%d\n",
                     m, n, k, lda, ldb, ldc);
        return kInvalidValue;
    }
    const double al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
    const bool round_tf32 = compute == kCompute32FFastTF32;
    // op(A) as a dense m × k column-major block of doubles, so the inner loop runs down a
    // column of it.
    std::vector<double> opa(size_t(m) * k), acc(m);
    for (int e = 0; e < batch; ++e) {
        const size_t ea = size_t(e) * stride_a, eb = size_t(e) * stride_b,
                     ec = size_t(e) * stride_c;
        for (int l = 0; l < k; ++l)
            for (int i = 0; i < m; ++i) {
                const size_t at = transa == kOpN ? size_t(i) + size_t(l) * lda
                                                 : size_t(l) + size_t(i) * lda;
                float v = load(a, ea + at, a_type);
                opa[size_t(l) * m + i] = round_tf32 ? tf32(v) : v;
            }
        for (int j = 0; j < n; ++j) {
            for (int i = 0; i < m; ++i) acc[i] = 0.0;
            for (int l = 0; l < k; ++l) {
                const size_t at = transb == kOpN ? size_t(l) + size_t(j) * ldb
                                                 : size_t(j) + size_t(l) * ldb;
                float bv = load(b, eb + at, b_type);
                const double bl = round_tf32 ? tf32(bv) : bv;
                const double* col = &opa[size_t(l) * m];
                for (int i = 0; i < m; ++i) acc[i] += col[i] * bl;
            }
            for (int i = 0; i < m; ++i) {
                const size_t at = ec + size_t(i) + size_t(j) * ldc;
                // beta = 0 ignores C, NaN included, as cuBLAS does.
                const double old = be == 0.0 ? 0.0 : be * load(c, at, c_type);
                store(c, at, c_type, al * acc[i] + old);
            }
        }
    }
    return kSuccess;
}
}  // extern "C"
