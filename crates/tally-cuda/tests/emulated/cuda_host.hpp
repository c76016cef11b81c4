// cuda_host.hpp: just enough of CUDA to run Tally's kernels on the CPU, for tests on machines
// without a GPU. Each launch runs its blocks one after another; a block's threads are fibers
// (one stack each, switched by _setjmp/_longjmp on the launching thread), so __syncthreads,
// warp shuffles, ballots and atomics behave as they must for the kernels' own logic
// (indexing, reductions, masks, counting) to be checked. A barrier some threads never reach
// is reported as a deadlock, naming the threads. It says nothing about speed, memory
// coalescing or the GPU's rounding of special functions. Included first (g++ -include) when
// TALLY_HOST_EMULATION is defined; compile with -U_FORTIFY_SOURCE (its longjmp check
// refuses a jump to another stack).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include <math.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

// The calling fiber's indices: the scheduler sets them before it resumes a fiber.
inline dim3 threadIdx, blockIdx;
inline dim3 gridDim, blockDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static  // one block runs at a time, so statics are its shared memory

namespace tally_emu {

// One CUDA thread's fiber. Fibers outlive launches: each parks at the top of its loop and
// runs the current kernel for whichever thread index it is handed next.
struct Fiber {
    jmp_buf ctx;
    ucontext_t start;
    unsigned tid = 0;
    enum State { Ready, Waiting, Done } state = Done;
    int waiting_on = 0;  // -1: the block barrier; w >= 0: warp w's barrier
};

// A barrier's arrivals and generation (how many times it has opened).
struct Barrier {
    unsigned arrived = 0, gen = 0;
};

constexpr size_t kStack = 256 << 10;  // per fiber, a guard page below it
constexpr unsigned kMaxThreads = 1024;

// The kernel a launch runs: a type-erased call of the kernel with its arguments.
struct Job {
    void (*call)(void*);
    void* arg;
};

inline std::vector<std::unique_ptr<Fiber>> pool;
inline jmp_buf scheduler;
inline Fiber* running = nullptr;
inline const Job* job = nullptr;
inline unsigned threads = 0, alive = 0;
inline Barrier block_barrier, warp_barrier[kMaxThreads / 32];
inline unsigned warp_alive[kMaxThreads / 32];
// Values a warp operation passes between lanes, double-buffered by barrier generation.
inline unsigned long long slots[kMaxThreads / 32][2][32];
inline int any_flag[2];  // __syncthreads_or, by generation
inline std::vector<unsigned char> dynamic_shared;
inline std::mutex launches;  // one launch at a time in the process

// Back to the scheduler; returns when the scheduler resumes this fiber.
inline void park() {
    if (!_setjmp(running->ctx)) _longjmp(scheduler, 1);
}

inline void thread_exited();

[[noreturn]] inline void fiber_main() {
    for (;;) {
        park();
        job->call(job->arg);
        running->state = Fiber::Done;
        thread_exited();
    }
}

inline void grow_pool(unsigned n) {
    while (pool.size() < n) {
        auto f = std::make_unique<Fiber>();
        const size_t page = 4096;
        void* mem = mmap(nullptr, kStack + page, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mem == MAP_FAILED) {
            std::fprintf(stderr, "cuda_host: cannot map a fiber stack\n");
            std::abort();
        }
        mprotect(mem, page, PROT_NONE);  // an overflow faults instead of corrupting
        getcontext(&f->start);
        f->start.uc_stack.ss_sp = static_cast<char*>(mem) + page;
        f->start.uc_stack.ss_size = kStack;
        f->start.uc_link = nullptr;
        makecontext(&f->start, fiber_main, 0);
        running = f.get();
        ucontext_t here;
        // The fiber parks at once (a _longjmp back here): from then on only jumps switch.
        if (!_setjmp(scheduler)) swapcontext(&here, &f->start);
        pool.push_back(std::move(f));
    }
}

// Makes every fiber of the block waiting on `which` (-1 block, else a warp) ready.
inline void open(int which) {
    unsigned first = 0, last = threads;
    if (which >= 0) first = which * 32u, last = std::min(threads, first + 32u);
    for (unsigned t = first; t < last; ++t) {
        Fiber& f = *pool[t];
        if (f.state == Fiber::Waiting && f.waiting_on == which) f.state = Fiber::Ready;
    }
}

inline void opened(int which) {
    Barrier& b = which < 0 ? block_barrier : warp_barrier[which];
    b.arrived = 0;
    ++b.gen;
    if (which < 0) any_flag[b.gen & 1] = 0;
    open(which);
}

// The calling thread arrives at barrier `which`; returns once every live member has.
inline void arrive(int which) {
    Barrier& b = which < 0 ? block_barrier : warp_barrier[which];
    const unsigned expected = which < 0 ? alive : warp_alive[which];
    if (++b.arrived >= expected) {
        opened(which);
        return;
    }
    running->state = Fiber::Waiting;
    running->waiting_on = which;
    park();
}

// A thread that returned no longer holds up its block's or its warp's barrier.
inline void thread_exited() {
    const unsigned w = running->tid / 32;
    --alive;
    --warp_alive[w];
    if (block_barrier.arrived > 0 && block_barrier.arrived >= alive) opened(-1);
    if (warp_barrier[w].arrived > 0 && warp_barrier[w].arrived >= warp_alive[w]) opened(w);
}

[[noreturn]] inline void deadlock() {
    unsigned at_block = 0, at_warp = 0;
    for (unsigned t = 0; t < threads; ++t) {
        const Fiber& f = *pool[t];
        if (f.state != Fiber::Waiting) continue;
        if (f.waiting_on < 0) ++at_block;
        else ++at_warp;
    }
    std::fprintf(stderr,
                 "cuda_host: deadlock in block (%u,%u,%u): %u of %u threads wait at "
                 "__syncthreads, %u at a warp operation, the others returned\n",
                 blockIdx.x, blockIdx.y, blockIdx.z, at_block, threads, at_warp);
    std::abort();
}

inline void run_block() {
    alive = threads;
    block_barrier = Barrier{};
    for (unsigned w = 0; w * 32 < threads; ++w) {
        warp_barrier[w] = Barrier{};
        warp_alive[w] = std::min(32u, threads - w * 32);
    }
    any_flag[0] = any_flag[1] = 0;
    for (unsigned t = 0; t < threads; ++t) {
        pool[t]->tid = t;
        pool[t]->state = Fiber::Ready;
    }
    while (alive > 0) {
        bool ran = false;
        for (unsigned t = 0; t < threads; ++t) {
            Fiber* f = pool[t].get();
            if (f->state != Fiber::Ready) continue;
            ran = true;
            running = f;
            threadIdx = dim3{t, 0, 0};
            if (!_setjmp(scheduler)) _longjmp(f->ctx, 1);
        }
        if (!ran) deadlock();
    }
}

// Runs `j` over `grid` blocks of `block` threads (1-D, a multiple of 32, at most 1024),
// `shared` bytes of dynamic shared memory each, one block at a time.
inline void run_grid(dim3 grid, dim3 block, size_t shared, const Job& j) {
    std::lock_guard<std::mutex> hold(launches);
    if (block.y != 1 || block.z != 1 || block.x == 0 || block.x > kMaxThreads ||
        block.x % 32 != 0) {
        std::fprintf(stderr, "cuda_host: blocks must be 1-D, 32..1024 threads in warps; got (%u,%u,%u)\n",
                     block.x, block.y, block.z);
        std::abort();
    }
    grow_pool(block.x);
    gridDim = grid;
    blockDim = block;
    threads = block.x;
    job = &j;
    dynamic_shared.assign(shared + 16, 0);
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                blockIdx = dim3{bx, by, bz};
                run_block();
            }
    job = nullptr;
    running = nullptr;
}

// Every lane of the calling thread's warp publishes `v` and gets lane `src(lane)`'s value.
template <typename T, typename F>
T exchange(T v, F src) {
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const unsigned buf = warp_barrier[warp].gen & 1u;
    unsigned long long cell = 0;
    std::memcpy(&cell, &v, sizeof(T));
    slots[warp][buf][lane] = cell;
    arrive((int)warp);
    T r;
    const unsigned long long got = slots[warp][buf][src(lane)];
    std::memcpy(&r, &got, sizeof(T));
    return r;
}
}  // namespace tally_emu

inline void __syncthreads() { tally_emu::arrive(-1); }

inline int __syncthreads_or(int p) {
    const unsigned buf = tally_emu::block_barrier.gen & 1u;
    if (p) tally_emu::any_flag[buf] = 1;
    tally_emu::arrive(-1);
    return tally_emu::any_flag[buf];
}

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
    const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    const unsigned buf = tally_emu::warp_barrier[warp].gen & 1u;
    tally_emu::slots[warp][buf][lane] = p ? 1 : 0;
    tally_emu::arrive((int)warp);
    unsigned r = 0;
    for (unsigned i = 0; i < 32; ++i) r |= (unsigned)(tally_emu::slots[warp][buf][i] & 1) << i;
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
    auto call = [&] { k(args...); };
    using Call = decltype(call);
    const tally_emu::Job j{[](void* c) { (*static_cast<Call*>(c))(); }, &call};
    tally_emu::run_grid(grid, block, shared, j);
}
