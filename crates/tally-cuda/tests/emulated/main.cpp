// Tally's CUDA kernels run on the CPU (cuda_host.hpp), each against a naive double
// reference and against the counts docs/FPO.md gives for the work it executes. Prints one
// line per case and exits non-zero at the first failure. Built and run by
// tests/tests/emulated_kernels.rs.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "tally_count.cuh"
#include "tally_dtype.cuh"

typedef unsigned long long u64;

// The by-value argument structs, as the kernel files define them.
struct TallyView4 {
    u64 dims[4];
    long long strides[4];
};
struct TallyConv {
    u64 batch, c_in, c_out, h_in, w_in, h_out, w_out;
    unsigned kh, kw, stride, padding, groups;
    unsigned clamp_comparisons;
    float lo, hi;
};
struct TallyAttention {
    u64 batch, heads, kv_heads, q_len, kv_len, head_dim;
    long long q_sb, q_sh, q_sr, k_sb, k_sh, k_sr, v_sb, v_sh, v_sr;
    float scale;
    unsigned causal;
};

extern "C" {
void sum_rows_f32(const float*, float*, u64, u64*);
void argmax_rows_f32(const float*, unsigned*, u64, u64*);
void mean_cols_f32(const float*, float*, u64, u64, u64, u64*);
void max_cols_f32(const float*, float*, u64, u64, u64, u64*);
void softmax_f32(const float*, float*, u64, u64*);
void layer_norm_f32(const float*, const float*, const float*, float*, u64, float, u64*);
void add_layer_norm_f32(const float*, const float*, const float*, const float*, float*, u64, float,
                        u64*);
void conv2d_f32(const float*, const float*, const float*, float*, TallyConv, u64*);
void max_pool2d_f32(const float*, float*, u64, u64, u64, unsigned, unsigned, u64*);
void avg_pool2d_f32(const float*, float*, u64, u64, u64, unsigned, unsigned, u64*);
void attention_f32(const float*, const float*, const float*, const unsigned*, float*,
                   TallyAttention, u64*);
void copy_into_f32(const float*, float*, TallyView4, TallyView4, u64*);
void copy_strided_f32(const float*, float*, TallyView4, u64*);
void add_bcast_f32(const float*, const float*, float*, u64, u64, u64*);
void cast_f32_bf16(const float*, bf16*, u64, u64*);
void gelu_erf_f32(const float*, float*, u64, u64*);
void affine_bf16(const bf16*, bf16*, u64, float, float, u64*);
void rms_norm_f16(const f16*, const f16*, f16*, u64, float, u64*);
void add_rms_norm_bf16(const bf16*, const bf16*, const bf16*, bf16*, bf16*, u64, float, u64*);
void rope_half_f32(const float*, const float*, const float*, float*, u64, u64, u64, u64*);
void embedding_f32(const unsigned*, const float*, float*, u64, u64, u64*);
void attention_bf16(const bf16*, const bf16*, const bf16*, const unsigned*, bf16*,
                    TallyAttention, u64*);
void neg_f32(const float*, float*, u64, u64*);
void relu_f32(const float*, float*, u64, u64*);
void relu6_f32(const float*, float*, u64, u64*);
void gelu_tanh_f32(const float*, float*, u64, u64*);
void silu_f32(const float*, float*, u64, u64*);
void sigmoid_f32(const float*, float*, u64, u64*);
void tanh_f32(const float*, float*, u64, u64*);
void exp_f32(const float*, float*, u64, u64*);
void log_f32(const float*, float*, u64, u64*);
void sqrt_f32(const float*, float*, u64, u64*);
void recip_f32(const float*, float*, u64, u64*);
void add_f32(const float*, const float*, float*, u64, u64*);
void sub_f32(const float*, const float*, float*, u64, u64*);
void mul_f32(const float*, const float*, float*, u64, u64*);
void div_f32(const float*, const float*, float*, u64, u64*);
void maximum_f32(const float*, const float*, float*, u64, u64*);
void minimum_f32(const float*, const float*, float*, u64, u64*);
void silu_mul_f32(const float*, const float*, float*, u64, u64*);
void rope_interleaved_f32(const float*, const float*, const float*, float*, u64, u64, u64, u64*);
}

static int failures = 0;

static void check(bool ok, const std::string& what) {
    if (!ok) {
        std::printf("FAIL %s\n", what.c_str());
        ++failures;
    }
}

// Counters as (add, mul, fma, special, read, written).
struct Counts {
    u64 c[6] = {0, 0, 0, 0, 0, 0};
};

static void expect(const Counts& got, const Counts& want, const std::string& what) {
    static const char* names[6] = {"add", "mul", "fma", "special", "bytes_read", "bytes_written"};
    for (int i = 0; i < 6; ++i)
        check(got.c[i] == want.c[i], what + ": " + names[i] + " " + std::to_string(got.c[i]) +
                                         " != " + std::to_string(want.c[i]));
}

static void close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                  const std::string& what) {
    check(got.size() == want.size(), what + ": size");
    for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
        const double d = std::fabs(got[i] - want[i]);
        if (!(d <= tol * (1.0 + std::fabs(want[i])))) {
            check(false, what + ": element " + std::to_string(i) + " got " +
                             std::to_string(got[i]) + " want " + std::to_string(want[i]));
            return;
        }
    }
}

static std::vector<float> values(size_t n, unsigned seed, float lo = -2.0f, float hi = 2.0f) {
    std::vector<float> v(n);
    unsigned s = seed * 2654435761u + 1;
    for (auto& x : v) {
        s = s * 1664525u + 1013904223u;
        x = lo + (hi - lo) * (float)((s >> 8) & 0xffff) / 65535.0f;
    }
    return v;
}

// "ok" or "FAILED" for a case that began when `failures` was `before`.
static const char* verdict(int before) { return failures == before ? "ok" : "FAILED"; }

static void reduce_cases() {
    const int before = failures;
    const u64 rows = 5, n = 37;
    auto x = values(rows * n, 1);
    std::vector<float> y(rows);
    Counts c;
    tally_launch({(unsigned)rows}, {64}, 0, sum_rows_f32, x.data(), y.data(), n, c.c);
    std::vector<double> want(rows, 0.0);
    for (u64 r = 0; r < rows; ++r)
        for (u64 i = 0; i < n; ++i) want[r] += x[r * n + i];
    close(y, want, 1e-5, "sum_rows");
    expect(c, Counts{{rows * n, 0, 0, 0, rows * n * 4, rows * 4}}, "sum_rows");

    // argmax: a NaN first wins (as the CPU's scan), a later NaN never does, ties take the first.
    auto a = values(rows * n, 2);
    a[0] = NAN;
    a[n + 3] = NAN;
    a[n + 10] = 9.0f;
    a[2 * n + 5] = 7.0f;
    a[2 * n + 30] = 7.0f;
    std::vector<unsigned> idx(rows);
    Counts ca;
    tally_launch({(unsigned)rows}, {64}, 0, argmax_rows_f32, a.data(), idx.data(), n, ca.c);
    check(idx[0] == 0 && idx[1] == 10 && idx[2] == 5, "argmax rows: " + std::to_string(idx[0]) +
                                                          " " + std::to_string(idx[1]) + " " +
                                                          std::to_string(idx[2]));
    for (u64 r = 3; r < rows; ++r) {
        unsigned best = 0;
        for (unsigned i = 1; i < n; ++i)
            if (a[r * n + i] > a[r * n + best]) best = i;
        check(idx[r] == best, "argmax row " + std::to_string(r));
    }
    expect(ca, Counts{{rows * n, 0, 0, 0, rows * n * 4, rows * 4}}, "argmax_rows");

    const u64 outer = 2, m = 7, inner = 6;
    auto z = values(outer * m * inner, 3);
    std::vector<float> mean(outer * inner), mx(outer * inner);
    Counts cm, cx;
    tally_launch({1}, {32}, 0, mean_cols_f32, z.data(), mean.data(), outer, m, inner, cm.c);
    tally_launch({2}, {32}, 0, max_cols_f32, z.data(), mx.data(), outer, m, inner, cx.c);
    std::vector<double> wm(outer * inner, 0.0), wx(outer * inner, -1e300);
    for (u64 o = 0; o < outer; ++o)
        for (u64 i = 0; i < m; ++i)
            for (u64 j = 0; j < inner; ++j) {
                wm[o * inner + j] += z[(o * m + i) * inner + j] / (double)m;
                wx[o * inner + j] = std::max(wx[o * inner + j], (double)z[(o * m + i) * inner + j]);
            }
    close(mean, wm, 1e-5, "mean_cols");
    close(mx, wx, 0.0, "max_cols");
    const u64 outs = outer * inner;
    expect(cm, Counts{{outs * m, outs, 0, 0, outs * m * 4, outs * 4}}, "mean_cols");
    expect(cx, Counts{{outs * m, 0, 0, 0, outs * m * 4, outs * 4}}, "max_cols");
    std::printf("%s reduce: sum/argmax rows, mean/max cols\n", verdict(before));
}

static void row_cases() {
    const int before = failures;
    const u64 rows = 3, n = 100;
    auto x = values(rows * n, 4);
    std::vector<float> y(rows * n);
    Counts c;
    tally_launch({(unsigned)rows}, {64}, 0, softmax_f32, x.data(), y.data(), n, c.c);
    std::vector<double> want(rows * n);
    for (u64 r = 0; r < rows; ++r) {
        double m = -1e300, s = 0;
        for (u64 i = 0; i < n; ++i) m = std::max(m, (double)x[r * n + i]);
        for (u64 i = 0; i < n; ++i) s += std::exp(x[r * n + i] - m);
        for (u64 i = 0; i < n; ++i) want[r * n + i] = std::exp(x[r * n + i] - m) / s;
    }
    close(y, want, 1e-5, "softmax");
    expect(c, Counts{{3 * rows * n, rows * n, 0, rows * n + rows, rows * n * 4, rows * n * 4}},
           "softmax");

    const u64 lr = 4, ln = 50;
    auto lx = values(lr * ln, 5), w = values(ln, 6), b = values(ln, 7);
    std::vector<float> ly(lr * ln);
    Counts cl;
    tally_launch({(unsigned)lr}, {32}, 0, layer_norm_f32, lx.data(), w.data(), b.data(), ly.data(),
                 ln, 1e-5f, cl.c);
    std::vector<double> lw(lr * ln);
    for (u64 r = 0; r < lr; ++r) {
        double mean = 0, var = 0;
        for (u64 i = 0; i < ln; ++i) mean += lx[r * ln + i] / (double)ln;
        for (u64 i = 0; i < ln; ++i) var += (lx[r * ln + i] - mean) * (lx[r * ln + i] - mean) / ln;
        for (u64 i = 0; i < ln; ++i)
            lw[r * ln + i] = (lx[r * ln + i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i];
    }
    close(ly, lw, 1e-4, "layer_norm");
    // per row: 2n + 1 + n adds, n + 2 + n muls, n fmas, 1 special; weight and bias read once.
    expect(cl, Counts{{lr * (3 * ln + 1), lr * (2 * ln + 2), lr * ln, lr,
                       (lr * ln + 2 * ln) * 4, lr * ln * 4}},
           "layer_norm");

    // The residual add joined to it: layer_norm of x + r (the sum never written out).
    auto lr2 = values(lr * ln, 8);
    std::vector<float> ay2(lr * ln);
    Counts ca2;
    tally_launch({(unsigned)lr}, {32}, 0, add_layer_norm_f32, lx.data(), lr2.data(), w.data(),
                 b.data(), ay2.data(), ln, 1e-5f, ca2.c);
    std::vector<double> aw2(lr * ln);
    for (u64 r = 0; r < lr; ++r) {
        double mean = 0, var = 0;
        std::vector<double> sum(ln);
        for (u64 i = 0; i < ln; ++i) sum[i] = (double)(lx[r * ln + i] + lr2[r * ln + i]);
        for (u64 i = 0; i < ln; ++i) mean += sum[i] / (double)ln;
        for (u64 i = 0; i < ln; ++i) var += (sum[i] - mean) * (sum[i] - mean) / ln;
        for (u64 i = 0; i < ln; ++i)
            aw2[r * ln + i] = (sum[i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i];
    }
    close(ay2, aw2, 1e-4, "add_layer_norm");
    // layer_norm's counts plus n adds per row; x and r read, weight and bias once; y written.
    expect(ca2, Counts{{lr * (4 * ln + 1), lr * (2 * ln + 2), lr * ln, lr,
                        (2 * lr * ln + 2 * ln) * 4, lr * ln * 4}},
           "add_layer_norm");
    std::printf("%s rows: softmax, layer_norm, add_layer_norm\n", verdict(before));
}

static void conv_cases() {
    const int before = failures;
    for (unsigned groups : {1u, 4u}) {
        TallyConv g{};
        g.batch = 2, g.c_in = 4, g.c_out = 4, g.h_in = 7, g.w_in = 6;
        g.kh = 3, g.kw = 3, g.stride = 2, g.padding = 1, g.groups = groups;
        g.h_out = (7 + 2 - 3) / 2 + 1, g.w_out = (6 + 2 - 3) / 2 + 1;
        g.clamp_comparisons = 2, g.lo = 0.0f, g.hi = 6.0f;
        const u64 cpg = g.c_in / groups, opg = g.c_out / groups;
        auto x = values(g.batch * g.c_in * g.h_in * g.w_in, 8);
        auto w = values(g.c_out * cpg * 9, 9);
        auto b = values(g.c_out, 10);
        const u64 outs = g.batch * g.c_out * g.h_out * g.w_out;
        std::vector<float> y(outs);
        Counts c;
        tally_launch({3}, {32}, 0, conv2d_f32, x.data(), w.data(), b.data(), y.data(), g, c.c);
        std::vector<double> want(outs);
        u64 taps = 0;
        for (u64 o = 0; o < outs; ++o) {
            const u64 ox = o % g.w_out, oy = o / g.w_out % g.h_out, co = o / (g.w_out * g.h_out) % g.c_out,
                      n = o / (g.w_out * g.h_out * g.c_out);
            double acc = b[co];
            for (u64 ci = 0; ci < cpg; ++ci)
                for (int ky = 0; ky < 3; ++ky)
                    for (int kx = 0; kx < 3; ++kx) {
                        const long iy = (long)(oy * 2) - 1 + ky, ix = (long)(ox * 2) - 1 + kx;
                        if (iy < 0 || iy >= (long)g.h_in || ix < 0 || ix >= (long)g.w_in) continue;
                        const u64 cin = (co / opg) * cpg + ci;
                        acc += (double)x[((n * g.c_in + cin) * g.h_in + iy) * g.w_in + ix] *
                               w[(co * cpg + ci) * 9 + ky * 3 + kx];
                        ++taps;
                    }
            want[o] = std::min(std::max(acc, 0.0), 6.0);
        }
        const std::string what = "conv2d groups " + std::to_string(groups);
        close(y, want, 1e-5, what);
        expect(c, Counts{{outs * 3, 0, taps, 0,
                          (x.size() + w.size() + b.size()) * 4, outs * 4}},
               what);
    }
    const u64 planes = 2, h = 5, w = 5;
    auto x = values(planes * h * w, 11);
    std::vector<float> ym(planes * 4), ya(planes * 4);
    Counts cm, ca;
    tally_launch({1}, {32}, 0, max_pool2d_f32, x.data(), ym.data(), planes, h, w, 3u, 2u, cm.c);
    tally_launch({1}, {32}, 0, avg_pool2d_f32, x.data(), ya.data(), planes, h, w, 3u, 2u, ca.c);
    std::vector<double> wm(planes * 4), wa(planes * 4);
    for (u64 p = 0; p < planes; ++p)
        for (u64 oy = 0; oy < 2; ++oy)
            for (u64 ox = 0; ox < 2; ++ox) {
                double m = -1e300, s = 0;
                for (u64 ky = 0; ky < 3; ++ky)
                    for (u64 kx = 0; kx < 3; ++kx) {
                        const double v = x[p * h * w + (oy * 2 + ky) * w + ox * 2 + kx];
                        m = std::max(m, v);
                        s += v / 9.0;
                    }
                wm[p * 4 + oy * 2 + ox] = m;
                wa[p * 4 + oy * 2 + ox] = s;
            }
    close(ym, wm, 0.0, "max_pool2d");
    close(ya, wa, 1e-5, "avg_pool2d");
    expect(cm, Counts{{planes * 4 * 9, 0, 0, 0, planes * h * w * 4, planes * 4 * 4}}, "max_pool2d");
    expect(ca, Counts{{planes * 4 * 9, planes * 4, 0, 0, planes * h * w * 4, planes * 4 * 4}},
           "avg_pool2d");
    std::printf("%s conv2d (padded, grouped, bias, relu6) and pooling\n", verdict(before));
}

static void attention_case(bool causal, bool masked, u64 sq, u64 sk, u64 d = 40) {
    const int before = failures;
    const u64 b = 2, h = 4, hk = 2;
    auto q = values(b * h * sq * d, 12), k = values(b * hk * sk * d, 13), v = values(b * hk * sk * d, 14);
    std::vector<unsigned> mask(b * sk);
    for (u64 i = 0; i < b * sk; ++i) mask[i] = (i % sk) < sk - 5 * (i / sk) - 2 ? 1u : 0u;
    TallyAttention a{b, h, hk, sq, sk, d,
                     (long long)(h * sq * d), (long long)(sq * d), (long long)d,
                     (long long)(hk * sk * d), (long long)(sk * d), (long long)d,
                     (long long)(hk * sk * d), (long long)(sk * d), (long long)d,
                     0.15f, causal ? 1u : 0u};
    std::vector<float> y(b * h * sq * d, -99.0f);
    Counts c;
    const size_t shared = (32 * (2 * d + 1) + 8 * d) * 4;
    tally_launch({(unsigned)((sq + 7) / 8), (unsigned)(b * h)}, {256}, shared, attention_f32,
                 q.data(), k.data(), v.data(), masked ? mask.data() : nullptr, y.data(), a, c.c);
    std::vector<double> want(y.size(), 0.0);
    u64 pairs = 0, rows_seen = 0;
    for (u64 bi = 0; bi < b; ++bi)
        for (u64 hi = 0; hi < h; ++hi)
            for (u64 i = 0; i < sq; ++i) {
                const u64 kh = hi / (h / hk);
                std::vector<double> s;
                std::vector<u64> keys;
                for (u64 j = 0; j < sk; ++j) {
                    const bool vis = (!causal || j + sq <= i + sk) && (!masked || mask[bi * sk + j]);
                    if (!vis) continue;
                    double dot = 0;
                    for (u64 e = 0; e < d; ++e)
                        dot += (double)q[((bi * h + hi) * sq + i) * d + e] * k[((bi * hk + kh) * sk + j) * d + e];
                    s.push_back(dot * 0.15);
                    keys.push_back(j);
                }
                pairs += keys.size();
                if (keys.empty()) continue;
                ++rows_seen;
                const double m = *std::max_element(s.begin(), s.end());
                double l = 0;
                for (auto& x : s) l += std::exp(x - m);
                for (u64 e = 0; e < d; ++e) {
                    double acc = 0;
                    for (size_t t = 0; t < keys.size(); ++t)
                        acc += std::exp(s[t] - m) / l * v[((bi * hk + kh) * sk + keys[t]) * d + e];
                    want[((bi * h + hi) * sq + i) * d + e] = acc;
                }
            }
    const std::string what = std::string("attention causal=") + (causal ? "1" : "0") +
                             " masked=" + (masked ? "1" : "0") + " " + std::to_string(sq) + "x" +
                             std::to_string(sk) + " d=" + std::to_string(d);
    close(y, want, 1e-4, what);
    // The executed count: 2·d FMAs, 1 mul, 3 adds, 1 exp per visible pair; per rescale 1 add,
    // d + 1 muls, 1 exp; per row that saw a key 1 reciprocal and d muls.
    const u64 rescales = c.c[3] - pairs - rows_seen;
    const u64 read = (q.size() + k.size() + v.size()) * 4 + (masked ? b * sk * 4 : 0);
    expect(c, Counts{{3 * pairs + rescales, pairs + rescales * (d + 1) + rows_seen * d,
                      2 * d * pairs, pairs + rescales + rows_seen, read, q.size() * 4}},
           what);
    std::printf("%s %s: %llu visible pairs, %llu rescales\n", verdict(before), what.c_str(), pairs,
                rescales);
}

static void copy_cases() {
    const int before = failures;
    std::vector<float> x = {1, 2, 3, 4, 5, 6};
    std::vector<float> y(10, 0.0f);
    TallyView4 src{{1, 1, 2, 3}, {0, 0, 3, 1}}, dst{{1, 1, 2, 3}, {0, 0, 5, 1}};
    Counts c;
    tally_launch({1}, {32}, 0, copy_into_f32, x.data(), y.data() + 1, src, dst, c.c);
    check(y == std::vector<float>({0, 1, 2, 3, 0, 0, 4, 5, 6, 0}), "copy_into");
    expect(c, Counts{{0, 0, 0, 0, 24, 24}}, "copy_into");

    std::vector<float> z(12);
    TallyView4 bc{{1, 1, 4, 3}, {0, 0, 0, 1}};
    Counts cb;
    tally_launch({1}, {32}, 0, copy_strided_f32, x.data(), z.data(), bc, cb.c);
    check(z == std::vector<float>({1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3}), "copy_strided broadcast");
    expect(cb, Counts{{0, 0, 0, 0, 12, 48}}, "copy_strided broadcast: distinct reads");

    auto a = values(20, 15), bias = values(5, 16);
    std::vector<float> s(20);
    Counts ca;
    tally_launch({1}, {32}, 0, add_bcast_f32, a.data(), bias.data(), s.data(), 4ull, 5ull, ca.c);
    std::vector<double> want(20);
    for (int i = 0; i < 20; ++i) want[i] = (double)a[i] + bias[i % 5];
    close(s, want, 1e-6, "add_bcast");
    expect(ca, Counts{{20, 0, 0, 0, 25 * 4, 20 * 4}}, "add_bcast");

    std::vector<float> f = {1.0f, 1.00390625f, 1.01171875f, -0.0f, 3.0e38f, NAN};
    std::vector<bf16> out(f.size());
    Counts cc;
    tally_launch({1}, {32}, 0, cast_f32_bf16, f.data(), out.data(), (u64)f.size(), cc.c);
    // Round to nearest even: 1 + 2⁻⁸ ties to 1.0; 1 + 3·2⁻⁸ ties up to 1 + 2⁻⁶.
    check(out[0].bits == 0x3f80 && out[1].bits == 0x3f80 && out[2].bits == 0x3f82 &&
              out[3].bits == 0x8000 && (out[5].bits & 0x7fc0) == 0x7fc0,
          "cast f32 -> bf16 rounding");
    expect(cc, Counts{{0, 0, 0, 0, f.size() * 4, f.size() * 2}}, "cast f32 -> bf16");
    std::printf("%s copies, broadcast add, cast\n", verdict(before));
}

static void elementwise_cases() {
    const int before = failures;
    const u64 n = 1000;
    auto x = values(n, 17, -4.0f, 4.0f);
    std::vector<float> y(n);
    Counts c;
    tally_launch({2}, {64}, 0, gelu_erf_f32, x.data(), y.data(), n, c.c);
    std::vector<double> want(n);
    for (u64 i = 0; i < n; ++i) want[i] = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
    close(y, want, 1e-5, "gelu_erf");
    expect(c, Counts{{n, 3 * n, 0, n, n * 4, n * 4}}, "gelu_erf");

    // bf16 in, f32 math, bf16 out: one rounding of a·x + b.
    std::vector<bf16> xb(n), yb(n);
    for (u64 i = 0; i < n; ++i) xb[i] = from_f32<bf16>(x[i]);
    Counts cb;
    tally_launch({2}, {64}, 0, affine_bf16, xb.data(), yb.data(), n, 0.5f, -1.0f, cb.c);
    std::vector<float> got(n);
    for (u64 i = 0; i < n; ++i) {
        got[i] = to_f32(yb[i]);
        want[i] = 0.5 * to_f32(xb[i]) - 1.0;
    }
    close(got, want, 1.0 / 128, "affine bf16");
    expect(cb, Counts{{0, 0, n, 0, n * 2, n * 2}}, "affine bf16");

    // RMS norm in f16: rows of 48, a weight.
    const u64 rows = 3, d = 48;
    auto rx = values(rows * d, 18), rw = values(d, 19);
    std::vector<f16> hx(rows * d), hw(d), hy(rows * d);
    for (u64 i = 0; i < rows * d; ++i) hx[i] = from_f32<f16>(rx[i]);
    for (u64 i = 0; i < d; ++i) hw[i] = from_f32<f16>(rw[i]);
    Counts cr;
    tally_launch({(unsigned)rows}, {32}, 0, rms_norm_f16, hx.data(), hw.data(), hy.data(), d, 1e-6f,
                 cr.c);
    std::vector<float> rg(rows * d);
    std::vector<double> rwant(rows * d);
    for (u64 r = 0; r < rows; ++r) {
        double ss = 0;
        for (u64 i = 0; i < d; ++i) ss += (double)to_f32(hx[r * d + i]) * to_f32(hx[r * d + i]);
        const double inv = 1.0 / std::sqrt(ss / d + 1e-6);
        for (u64 i = 0; i < d; ++i) {
            rwant[r * d + i] = to_f32(hx[r * d + i]) * inv * to_f32(hw[i]);
            rg[r * d + i] = to_f32(hy[r * d + i]);
        }
    }
    close(rg, rwant, 2e-3, "rms_norm f16");
    expect(cr, Counts{{rows, rows * (2 * d + 1), rows * d, rows, (rows * d + d) * 2, rows * d * 2}},
           "rms_norm f16");

    // Residual add then RMS norm in bf16: the sum is stored rounded, and normalised as stored.
    auto ar = values(rows * d, 24);
    std::vector<bf16> ax(rows * d), arr(rows * d), aw(d), asum(rows * d), ay(rows * d);
    for (u64 i = 0; i < rows * d; ++i) {
        ax[i] = from_f32<bf16>(rx[i]);
        arr[i] = from_f32<bf16>(ar[i]);
    }
    for (u64 i = 0; i < d; ++i) aw[i] = from_f32<bf16>(rw[i]);
    Counts ca;
    tally_launch({(unsigned)rows}, {32}, 0, add_rms_norm_bf16, ax.data(), arr.data(), aw.data(),
                 asum.data(), ay.data(), d, 1e-6f, ca.c);
    std::vector<float> sg(rows * d), ag(rows * d);
    std::vector<double> swant(rows * d), awant(rows * d);
    for (u64 r = 0; r < rows; ++r) {
        double ss = 0;
        for (u64 i = 0; i < d; ++i) {
            const u64 k = r * d + i;
            swant[k] = to_f32(from_f32<bf16>(to_f32(ax[k]) + to_f32(arr[k])));
            ss += swant[k] * swant[k];
        }
        const double inv = 1.0 / std::sqrt(ss / d + 1e-6);
        for (u64 i = 0; i < d; ++i) {
            const u64 k = r * d + i;
            awant[k] = swant[k] * inv * to_f32(aw[i]);
            sg[k] = to_f32(asum[k]);
            ag[k] = to_f32(ay[k]);
        }
    }
    close(sg, swant, 0.0, "add_rms_norm bf16 sum");
    close(ag, awant, 1e-2, "add_rms_norm bf16");
    expect(ca,
           Counts{{rows * d + rows, rows * (2 * d + 1), rows * d, rows, (2 * rows * d + d) * 2,
                   2 * rows * d * 2}},
           "add_rms_norm bf16");

    // Rotary embedding, half style: x (2 rows, s = 3, d = 8), tables (3, 4).
    const u64 rr = 2, s = 3, dd = 8, half = 4;
    auto qx = values(rr * s * dd, 20), cs = values(s * half, 21), sn = values(s * half, 22);
    std::vector<float> qy(rr * s * dd);
    Counts cq;
    tally_launch({1}, {32}, 0, rope_half_f32, qx.data(), cs.data(), sn.data(), qy.data(), rr, s, dd,
                 cq.c);
    std::vector<double> qw(qy.size());
    for (u64 r = 0; r < rr * s; ++r)
        for (u64 f = 0; f < half; ++f) {
            const u64 t = r % s;
            const double a = qx[r * dd + f], b = qx[r * dd + f + half];
            qw[r * dd + f] = a * cs[t * half + f] - b * sn[t * half + f];
            qw[r * dd + f + half] = a * sn[t * half + f] + b * cs[t * half + f];
        }
    close(qy, qw, 1e-6, "rope half");
    const u64 pairs = rr * s * half;
    expect(cq, Counts{{2 * pairs, 4 * pairs, 0, 0, (2 * pairs + 2 * s * half) * 4, 2 * pairs * 4}},
           "rope half");

    // Embedding: an id past the table writes zeros and reads no table bytes.
    const u64 vocab = 10, dim = 40;
    auto table = values(vocab * dim, 23);
    std::vector<unsigned> ids = {3, 0, 12, 9};
    std::vector<float> e(ids.size() * dim, 5.0f);
    Counts ce;
    tally_launch({(unsigned)ids.size()}, {32}, 0, embedding_f32, ids.data(), table.data(), e.data(),
                 vocab, dim, ce.c);
    std::vector<double> ew(e.size(), 0.0);
    for (size_t k = 0; k < ids.size(); ++k)
        for (u64 j = 0; j < dim; ++j) ew[k * dim + j] = ids[k] < vocab ? table[ids[k] * dim + j] : 0.0;
    close(e, ew, 0.0, "embedding");
    expect(ce, Counts{{0, 0, 0, 0, ids.size() * 4 + 3 * dim * 4, ids.size() * dim * 4}}, "embedding");
    std::printf("%s elementwise: gelu_erf, affine bf16, rms_norm f16, add_rms_norm bf16, rope, "
                "embedding\n",
                verdict(before));
}

// Every unary and binary function over positive inputs (log, sqrt and recip need them):
// values against <cmath> in double, counts against docs/FPO.md's per-element table.
static void function_table_cases() {
    const int before = failures;
    typedef void (*Unary)(const float*, float*, u64, u64*);
    typedef void (*Binary)(const float*, const float*, float*, u64, u64*);
    const u64 n = 300;
    auto x = values(n, 40, 0.1f, 7.0f), z = values(n, 41, 0.1f, 7.0f);
    struct U { const char* name; Unary k; double (*f)(double); u64 a, m, s; };
    const U unary[] = {
        {"neg", neg_f32, [](double v) { return -v; }, 0, 1, 0},
        {"relu", relu_f32, [](double v) { return v > 0 ? v : 0.0; }, 1, 0, 0},
        {"relu6", relu6_f32, [](double v) { return std::min(std::max(v, 0.0), 6.0); }, 2, 0, 0},
        {"gelu_tanh", gelu_tanh_f32,
         [](double v) { return 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); },
         2, 6, 1},
        {"silu", silu_f32, [](double v) { return v / (1 + std::exp(-v)); }, 0, 1, 1},
        {"sigmoid", sigmoid_f32, [](double v) { return 1 / (1 + std::exp(-v)); }, 0, 0, 1},
        {"tanh", tanh_f32, [](double v) { return std::tanh(v); }, 0, 0, 1},
        {"exp", exp_f32, [](double v) { return std::exp(v); }, 0, 0, 1},
        {"log", log_f32, [](double v) { return std::log(v); }, 0, 0, 1},
        {"sqrt", sqrt_f32, [](double v) { return std::sqrt(v); }, 0, 0, 1},
        {"recip", recip_f32, [](double v) { return 1 / v; }, 0, 0, 1},
    };
    for (const U& u : unary) {
        std::vector<float> y(n);
        Counts c;
        tally_launch({3}, {32}, 0, u.k, x.data(), y.data(), n, c.c);
        std::vector<double> want(n);
        for (u64 i = 0; i < n; ++i) want[i] = u.f(x[i]);
        close(y, want, 1e-5, u.name);
        expect(c, Counts{{n * u.a, n * u.m, 0, n * u.s, n * 4, n * 4}}, u.name);
    }
    struct B { const char* name; Binary k; double (*f)(double, double); u64 a, m, s; };
    const B binary[] = {
        {"add", add_f32, [](double a, double b) { return a + b; }, 1, 0, 0},
        {"sub", sub_f32, [](double a, double b) { return a - b; }, 1, 0, 0},
        {"mul", mul_f32, [](double a, double b) { return a * b; }, 0, 1, 0},
        {"div", div_f32, [](double a, double b) { return a / b; }, 0, 0, 1},
        {"maximum", maximum_f32, [](double a, double b) { return std::max(a, b); }, 1, 0, 0},
        {"minimum", minimum_f32, [](double a, double b) { return std::min(a, b); }, 1, 0, 0},
        {"silu_mul", silu_mul_f32, [](double a, double b) { return a / (1 + std::exp(-a)) * b; },
         0, 2, 1},
    };
    for (const B& b : binary) {
        std::vector<float> y(n);
        Counts c;
        tally_launch({2}, {64}, 0, b.k, x.data(), z.data(), y.data(), n, c.c);
        std::vector<double> want(n);
        for (u64 i = 0; i < n; ++i) want[i] = b.f(x[i], z[i]);
        close(y, want, 1e-6, b.name);
        expect(c, Counts{{n * b.a, n * b.m, 0, n * b.s, 2 * n * 4, n * 4}}, b.name);
    }
    // Rotary embedding, interleaved pairs (x[2f], x[2f+1]).
    const u64 rr = 3, s = 2, dd = 6, half = 3;
    auto qx = values(rr * s * dd, 42), cs = values(s * half, 43), sn = values(s * half, 44);
    std::vector<float> qy(rr * s * dd);
    Counts cq;
    tally_launch({1}, {32}, 0, rope_interleaved_f32, qx.data(), cs.data(), sn.data(), qy.data(), rr,
                 s, dd, cq.c);
    std::vector<double> qw(qy.size());
    for (u64 r = 0; r < rr * s; ++r)
        for (u64 f = 0; f < half; ++f) {
            const u64 t = r % s;
            const double a = qx[r * dd + 2 * f], b = qx[r * dd + 2 * f + 1];
            qw[r * dd + 2 * f] = a * cs[t * half + f] - b * sn[t * half + f];
            qw[r * dd + 2 * f + 1] = a * sn[t * half + f] + b * cs[t * half + f];
        }
    close(qy, qw, 1e-6, "rope interleaved");
    const u64 pairs = rr * s * half;
    expect(cq, Counts{{2 * pairs, 4 * pairs, 0, 0, (2 * pairs + 2 * s * half) * 4, 2 * pairs * 4}},
           "rope interleaved");
    std::printf("%s every unary and binary function, interleaved rope\n", verdict(before));
}

// bf16 attention against the f32 kernel on the same (bf16-rounded) inputs.
static void attention_bf16_case() {
    const int before = failures;
    const u64 b = 1, h = 2, hk = 1, sq = 9, sk = 33, d = 32;
    auto q = values(b * h * sq * d, 30), k = values(b * hk * sk * d, 31), v = values(b * hk * sk * d, 32);
    auto round = [](std::vector<float>& x, std::vector<bf16>& xb) {
        xb.resize(x.size());
        for (size_t i = 0; i < x.size(); ++i) {
            xb[i] = from_f32<bf16>(x[i]);
            x[i] = to_f32(xb[i]);
        }
    };
    std::vector<bf16> qb, kb, vb;
    round(q, qb), round(k, kb), round(v, vb);
    TallyAttention a{b, h, hk, sq, sk, d,
                     (long long)(h * sq * d), (long long)(sq * d), (long long)d,
                     (long long)(hk * sk * d), (long long)(sk * d), (long long)d,
                     (long long)(hk * sk * d), (long long)(sk * d), (long long)d, 0.2f, 1u};
    const size_t shared = (32 * (2 * d + 1) + 8 * d) * 4;
    const dim3 grid{(unsigned)((sq + 7) / 8), (unsigned)(b * h)};
    std::vector<float> y(b * h * sq * d);
    std::vector<bf16> yb(y.size());
    Counts c32, c16;
    tally_launch(grid, {256}, shared, attention_f32, q.data(), k.data(), v.data(),
                 (const unsigned*)nullptr, y.data(), a, c32.c);
    tally_launch(grid, {256}, shared, attention_bf16, qb.data(), kb.data(), vb.data(),
                 (const unsigned*)nullptr, yb.data(), a, c16.c);
    std::vector<float> got(y.size());
    std::vector<double> want(y.size());
    for (size_t i = 0; i < y.size(); ++i) {
        got[i] = to_f32(yb[i]);
        want[i] = y[i];
    }
    close(got, want, 1.0 / 128, "attention bf16 vs f32");
    Counts halved = c32;
    halved.c[4] /= 2;
    halved.c[5] /= 2;
    expect(c16, halved, "attention bf16: the f32 kernel's counts at half the bytes");
    std::printf("%s attention bf16 against f32 (causal, grouped heads)\n", verdict(before));
}

int main() {
    reduce_cases();
    row_cases();
    conv_cases();
    attention_case(false, true, 19, 37);
    attention_case(true, false, 40, 40);
    attention_case(true, true, 1, 45);
    attention_case(true, false, 3, 70);
    attention_case(false, true, 9, 40, 128);  // the largest head the kernel holds
    attention_case(true, true, 17, 17, 64);
    copy_cases();
    elementwise_cases();
    function_table_cases();
    attention_bf16_case();
    if (failures) {
        std::printf("%d failures\n", failures);
        return 1;
    }
    std::printf("all emulated kernel cases passed\n");
    return 0;
}
