// cuda_host.hpp: just enough of CUDA to run Tally's kernels on the CPU, for tests on machines
// without a GPU. Each launch runs its blocks one after another; a block's threads are real
// threads (std::thread), so __syncthreads, warp shuffles, ballots and atomics behave as
// they must for the kernels' own logic (indexing, reductions, masks, counting) to be
// checked. It says nothing about speed, memory coalescing or the GPU's rounding of
// special functions. Included first (g++ -include) when TALLY_HOST_EMULATION is defined.
#pragma once
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <math.h>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace tally_emu {
// One block's synchronisation: the block barrier, one barrier per warp, and the exchange
// slots warp operations pass values through.
struct Block {
    explicit Block(unsigned threads)
        : bar(threads), warps((threads + 31) / 32) {
        for (unsigned w = 0; w < warps; ++w) warp_bar.emplace_back(std::make_unique<std::barrier<>>(32));
        slots.resize(warps * 32);
    }
    std::barrier<> bar;
    unsigned warps;
    std::vector<std::unique_ptr<std::barrier<>>> warp_bar;
    std::vector<unsigned long long> slots;
    std::atomic<int> flag{0};
};
inline Block* block = nullptr;
inline std::vector<unsigned char> dynamic_shared;
}  // namespace tally_emu

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 gridDim, blockDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static  // one block runs at a time, so statics are its shared memory

inline void __syncthreads() { tally_emu::block->bar.arrive_and_wait(); }

inline int __syncthreads_or(int p) {
    auto* b = tally_emu::block;
    b->bar.arrive_and_wait();
    if (p) b->flag.store(1);
    b->bar.arrive_and_wait();
    const int r = b->flag.load();
    b->bar.arrive_and_wait();
    if (threadIdx.x == 0) b->flag.store(0);
    return r;
}

namespace tally_emu {
// Every lane of the calling thread's warp publishes `v` and gets lane `src(lane)`'s value.
template <typename T, typename F>
T exchange(T v, F src) {
    auto* b = block;
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    auto& bar = *b->warp_bar[warp];
    bar.arrive_and_wait();  // the previous exchange's reads are done
    unsigned long long cell = 0;
    std::memcpy(&cell, &v, sizeof(T));
    b->slots[warp * 32 + lane] = cell;
    bar.arrive_and_wait();
    T r;
    const unsigned long long got = b->slots[warp * 32 + src(lane)];
    std::memcpy(&r, &got, sizeof(T));
    return r;
}
}  // namespace tally_emu

template <typename T>
T __shfl_xor_sync(unsigned, T v, int o) {
    return tally_emu::exchange(v, [o](unsigned l) { return l ^ (unsigned)o; });
}
template <typename T>
T __shfl_sync(unsigned, T v, int src) {
    return tally_emu::exchange(v, [src](unsigned) { return (unsigned)src; });
}
template <typename T>
T __shfl_down_sync(unsigned, T v, int o) {
    return tally_emu::exchange(v, [o](unsigned l) { return l + o < 32 ? l + o : l; });
}
inline unsigned __ballot_sync(unsigned, int p) {
    auto* b = tally_emu::block;
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    auto& bar = *b->warp_bar[warp];
    bar.arrive_and_wait();
    b->slots[warp * 32 + lane] = p ? 1 : 0;
    bar.arrive_and_wait();
    unsigned r = 0;
    for (unsigned i = 0; i < 32; ++i) r |= (unsigned)(b->slots[warp * 32 + i] & 1) << i;
    return r;
}

inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline float __int_as_float(int x) { float f; std::memcpy(&f, &x, 4); return f; }
inline float __uint_as_float(unsigned x) { float f; std::memcpy(&f, &x, 4); return f; }
inline unsigned __float_as_uint(float x) { unsigned u; std::memcpy(&u, &x, 4); return u; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
template <typename T>
T min(T a, T b) { return a < b ? a : b; }
template <typename T>
T max(T a, T b) { return a < b ? b : a; }

// Runs kernel `k` over `grid` blocks of `block` threads, `shared` bytes of dynamic shared
// memory each, one block at a time.
template <typename... P, typename... A>
void tally_launch(dim3 grid, dim3 block, size_t shared, void (*k)(P...), A... args) {
    gridDim = grid;
    blockDim = block;
    tally_emu::dynamic_shared.assign(shared + 16, 0);
    const unsigned threads = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                tally_emu::Block b(threads);
                tally_emu::block = &b;
                std::vector<std::thread> ts;
                ts.reserve(threads);
                for (unsigned t = 0; t < threads; ++t)
                    ts.emplace_back([=] {
                        threadIdx = dim3{t, 0, 0};
                        blockIdx = dim3{bx, by, bz};
                        k(args...);
                    });
                for (auto& t : ts) t.join();
                tally_emu::block = nullptr;
            }
}
