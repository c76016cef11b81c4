// An independent check of `tally calibrate`: the f32 FMA peak and the STREAM triad bandwidth,
// written in C with intrinsics and OpenMP, built by gcc, sharing no code with Tally.
// Build and run: benches/independent/run.sh (prints one line per figure).
//
// Peak: per thread, 12 independent accumulators of 16 (AVX-512) or 8 (AVX2) f32 lanes, each
// a chain of FMAs held in registers; FPO = 2 × lanes × chains × iterations. Best of 5.
// Triad: a[i] = b[i] + s·c[i] over three 256 MiB arrays (far above the last-level cache);
// bytes = 3 × 4 × n per pass (two reads, one write; write-allocate traffic not counted, as
// STREAM reports it). Best of 10.
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define CHAINS 12

__attribute__((target("avx512f,fma"))) static float chains512(long iters) {
    __m512 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps(1.0f + c);
    volatile float va = 0.999999f, vb = 1e-7f;
    __m512 a = _mm512_set1_ps(va), b = _mm512_set1_ps(vb);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    __m512 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm512_add_ps(s, acc[c]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float chains256(long iters) {
    __m256 acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps(1.0f + c);
    volatile float va = 0.999999f, vb = 1e-7f;
    __m256 a = _mm256_set1_ps(va), b = _mm256_set1_ps(vb);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    float out[8];
    __m256 s = acc[0];
    for (int c = 1; c < CHAINS; c++) s = _mm256_add_ps(s, acc[c]);
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}

static void peak(const char *isa, int lanes, float (*f)(long), int threads) {
    const long iters = 50000000;
    double best = 0;
    float sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += f(iters);
        double t = now() - t0;
        double gflops = 2.0 * lanes * CHAINS * (double)iters * threads / t / 1e9;
        if (gflops > best) best = gflops;
    }
    printf("peak f32_fma %s threads=%d %.1f GFLOP/s (sink %g)\n", isa, threads, best, sink);
}

static void triad(int threads) {
    const long n = 64L << 20; // 64 Mi floats = 256 MiB per array
    float *a = aligned_alloc(64, n * 4), *b = aligned_alloc(64, n * 4), *c = aligned_alloc(64, n * 4);
#pragma omp parallel for num_threads(threads)
    for (long i = 0; i < n; i++) { a[i] = 0; b[i] = 1; c[i] = 2; }
    double best = 0;
    for (int rep = 0; rep < 10; rep++) {
        double t0 = now();
#pragma omp parallel for num_threads(threads)
        for (long i = 0; i < n; i++) a[i] = b[i] + 3.0f * c[i];
        double t = now() - t0;
        double gbs = 3.0 * 4.0 * n / t / 1e9;
        if (gbs > best) best = gbs;
    }
    printf("bandwidth triad threads=%d %.1f GB/s (check %g)\n", threads, best, a[n - 1]);
    free(a); free(b); free(c);
}

int main(void) {
    int all = omp_get_num_procs();
    for (int t = 1; t <= all; t *= 2) {
        if (__builtin_cpu_supports("avx512f")) peak("avx512", 16, chains512, t);
        if (__builtin_cpu_supports("avx2")) peak("avx2", 8, chains256, t);
        triad(t);
        if (t * 2 > all && t != all) t = all / 2; // end on exactly `all` threads
    }
    return 0;
}
