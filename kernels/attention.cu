// attention.cu: fused scaled-dot-product attention, flash style: scores never leave the
// chip, the softmax is online, and keys that a causal or padding mask hides are skipped, a
// whole tile of them at a time where no query of the block can see any.
// defines: attention_{f32, bf16, f16}
// Shapes: q (b, h, s_q, d), k and v (b, h_kv, s_k, d) with any row/head/batch strides and a
// contiguous last dimension, mask (b, s_k) u32 (non-zero: visible) or null; y (b, h, s_q, d)
// contiguous. Query head hi reads kv head hi / (h / h_kv). d ≤ ATT_MAX_D.
// A block is ATT_ROWS warps, one query row each; keys go through shared memory ATT_TILE at a
// time, and lane j of a warp scores key j of the tile.
//
// What each row counts is what it executed (docs/FPO.md, "Attention on the GPU"):
//   per visible (query, key) pair: 2·d FMAs (q·k, p·v), 1 mul (scale), 3 adds (max, shift,
//     sum), 1 exp;
//   per rescale of the running sum (a tile raised the row's max): 1 add, d + 1 muls, 1 exp;
//   per row that saw a key: 1 reciprocal and d muls (normalise).
// Bytes: each row's q and output once; k and v at their full (s_k, d) per kv head and mask
// rows once, as cost::attention_over charges them.
#include "tally_count.cuh"
#include "tally_dtype.cuh"
#include "tally_reduce.cuh"

#define ATT_TILE 32
#define ATT_ROWS 8
#define ATT_MAX_D 128

// The call's geometry and element strides, passed by value.
struct TallyAttention {
    unsigned long long batch, heads, kv_heads, q_len, kv_len, head_dim;
    long long q_sb, q_sh, q_sr, k_sb, k_sh, k_sr, v_sb, v_sh, v_sr;
    float scale;
    unsigned causal;
};
// The host passes this struct by value (crates/tally-cuda AttentionArgs): its size is pinned.
static_assert(sizeof(TallyAttention) == 128, "TallyAttention's layout is shared with the host");

// grid = (ceil(s_q / ATT_ROWS), b·h), block = 32·ATT_ROWS threads, dynamic shared memory
// (ATT_TILE·(2d + 1) + ATT_ROWS·d) floats.
template <typename T>
__device__ void attention_body(const T* q, const T* k, const T* v, const unsigned* mask, T* y,
                               TallyAttention a, unsigned long long* counters) {
#ifdef TALLY_HOST_EMULATION  // the CPU test harness (crates/tally-cuda/tests/emulated)
    float* smem = reinterpret_cast<float*>(tally_emu::dynamic_shared.data());
#else
    extern __shared__ float smem[];
#endif
    const unsigned d = (unsigned)a.head_dim;
    float* ks = smem;                     // ATT_TILE × (d + 1): padded, lane j reads row j
    float* vs = ks + ATT_TILE * (d + 1);  // ATT_TILE × d
    float* qs = vs + ATT_TILE * d;        // ATT_ROWS × d
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const unsigned long long bi = blockIdx.y / a.heads, hi = blockIdx.y % a.heads;
    const unsigned long long group = a.heads / a.kv_heads, kh = hi / group;
    const unsigned long long row0 = (unsigned long long)blockIdx.x * ATT_ROWS, i = row0 + warp;
    const bool active = i < a.q_len;
    // Query i sees key j when j ≤ i + s_k − s_q (causal) and the mask allows it.
    const long long shift = (long long)a.kv_len - (long long)a.q_len;
    if (active)
        for (unsigned c = lane; c < d; c += 32)
            qs[warp * d + c] = to_f32(q[bi * a.q_sb + hi * a.q_sh + i * a.q_sr + c]);
    long long kend = (long long)a.kv_len;
    if (a.causal) {
        const unsigned long long last = min(row0 + ATT_ROWS, a.q_len) - 1;
        kend = min(kend, (long long)last + shift + 1);
    }
    const long long jmax = a.causal ? (long long)i + shift : (long long)a.kv_len - 1;
    const T* kb = k + bi * a.k_sb + kh * a.k_sh;
    const T* vb = v + bi * a.v_sb + kh * a.v_sh;
    const unsigned* mrow = mask == nullptr ? nullptr : mask + bi * a.kv_len;

    float m = TALLY_NEG_INF, l = 0.0f;
    float acc[ATT_MAX_D / 32];
#pragma unroll
    for (int t = 0; t < ATT_MAX_D / 32; ++t) acc[t] = 0.0f;
    unsigned long long pairs = 0, rescales = 0;
    for (long long t0 = 0; t0 < kend; t0 += ATT_TILE) {
        const unsigned n = (unsigned)min((long long)ATT_TILE, kend - t0);
        const bool key_ok = lane < n && (mrow == nullptr || mrow[t0 + lane] != 0);
        // Also the barrier before the tile is overwritten: every warp is done with the last.
        if (!__syncthreads_or(key_ok)) continue;  // a tile no query may see: skipped
        for (unsigned e = threadIdx.x; e < n * d; e += blockDim.x) {
            const unsigned jj = e / d, c = e % d;
            ks[jj * (d + 1) + c] = to_f32(kb[(t0 + jj) * a.k_sr + c]);
            vs[jj * d + c] = to_f32(vb[(t0 + jj) * a.v_sr + c]);
        }
        __syncthreads();
        if (!active) continue;
        const bool vis = key_ok && t0 + (long long)lane <= jmax;
        float s = TALLY_NEG_INF;
        if (vis) {
            float dot = 0.0f;
            for (unsigned c = 0; c < d; ++c) dot = fmaf(qs[warp * d + c], ks[lane * (d + 1) + c], dot);
            s = dot * a.scale;
        }
        const unsigned seen = __ballot_sync(0xffffffffu, vis);
        if (seen == 0) continue;
        const float tmax = tally_warp_max_f32(s);
        if (tmax > m) {
            if (l > 0.0f) {  // rescale what earlier tiles summed
                const float corr = expf(m - tmax);
                l *= corr;
#pragma unroll
                for (int t = 0; t < ATT_MAX_D / 32; ++t) acc[t] *= corr;
                ++rescales;
            }
            m = tmax;
        }
        const float p = vis ? expf(s - m) : 0.0f;
        l += tally_warp_sum_f32(p);
        for (unsigned jj = 0; jj < n; ++jj) {
            if (((seen >> jj) & 1u) == 0) continue;  // uniform over the warp
            const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
            for (int t = 0; t < ATT_MAX_D / 32; ++t) {
                const unsigned c = lane + 32u * t;
                if (c < d) acc[t] = fmaf(pj, vs[jj * d + c], acc[t]);
            }
        }
        pairs += __popc(seen);
    }
    if (active) {
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // a row that saw no key writes zeros
        T* yr = y + ((bi * a.heads + hi) * a.q_len + i) * d;
#pragma unroll
        for (int t = 0; t < ATT_MAX_D / 32; ++t) {
            const unsigned c = lane + 32u * t;
            if (c < d) yr[c] = from_f32<T>(acc[t] * inv);
        }
    }
    TallyWork w = tally_zero();
    if (active && lane == 0) {
        const unsigned long long dd = d, saw = l > 0.0f;
        w.c[TALLY_FMA] = 2 * dd * pairs;
        w.c[TALLY_MUL] = pairs + rescales * (dd + 1) + saw * dd;
        w.c[TALLY_ADD] = 3 * pairs + rescales;
        w.c[TALLY_SPECIAL] = pairs + rescales + saw;
        w.c[TALLY_BYTES_READ] = dd * sizeof(T);
        w.c[TALLY_BYTES_WRITTEN] = dd * sizeof(T);
    }
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        if (hi % group == 0) w.c[TALLY_BYTES_READ] += 2 * a.kv_len * d * sizeof(T);
        if (hi == 0 && mask != nullptr) w.c[TALLY_BYTES_READ] += a.kv_len * sizeof(unsigned);
    }
    tally_flush(w, counters);
}

// Stamps one dtype: q (b, h, s_q, d), k, v (b, h_kv, s_k, d), mask (b, s_k)? -> y (b, h, s_q, d)
#define ATTENTION(T, SUFFIX)                                                                     \
    extern "C" __global__ void attention_##SUFFIX(const T* q, const T* k, const T* v,           \
                                                  const unsigned* mask, T* y, TallyAttention a, \
                                                  unsigned long long* counters) {               \
        attention_body(q, k, v, mask, y, a, counters);                                          \
    }

ATTENTION(float, f32)
ATTENTION(bf16, bf16)
ATTENTION(f16, f16)
