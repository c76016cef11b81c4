// driver.cpp: a stand-in for the CUDA driver (libcuda.so) that runs Tally's kernels on the
// CPU, so that the whole CUDA backend (tally-cuda's launches, argument passing, counter
// arena, events, copies) runs in tests on a machine without a GPU. One device, "compute
// capability 9.0"; every operation is synchronous on the calling thread; device memory is
// host memory. Kernels come from the registry files (registry.hpp) linked into the same
// library: cuModuleLoadData reads the PTX's entry names, cuModuleGetFunction finds the
// kernel of that name, cuLaunchKernel runs it on cuda_host.hpp's fibers.
//
// Checks a real driver does not make, because they find host-side bugs: a copy or memset
// must lie inside one live allocation, a free must name one, and new allocations are filled
// with 0xff bytes (NaN in every float dtype), so a kernel that reads an output it did not
// write shows it. Each allocation ends exactly where an inaccessible page begins, so a
// kernel that reads or writes even one element past a buffer faults at once, and the fault
// names the kernel (a real GPU reports "an illegal memory access" later, or nothing).
// TALLY_EMU_SMS sets the multiprocessor count (default 2), which bounds
// grid-stride grids. Only what Tally and cudarc call is here; any other symbol is missing,
// and cudarc names it when it is asked for.
#include <chrono>
#include <csignal>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

#include <unistd.h>

#include "registry.hpp"

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

namespace {
constexpr CUresult kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2, kInvalidDevice = 101,
                   kInvalidImage = 200, kInvalidHandle = 400, kNotFound = 500;

struct Module {
    std::set<std::string> entries;
};
struct Function {
    std::string name;
    tally_emu::Invoker invoke;
};
struct Event {
    std::chrono::steady_clock::time_point at;
    bool recorded = false;
};

std::mutex state;  // guards everything below
std::unordered_map<std::string, tally_emu::Invoker>& kernels() {
    static std::unordered_map<std::string, tally_emu::Invoker> k;
    return k;
}
// A live allocation: its bytes, and the mapping that holds it (pages, then a guard page).
struct Allocation {
    size_t bytes;
    void* base;
    size_t mapped;
};
std::map<CUdeviceptr, Allocation> allocations;  // by start address
std::unordered_map<std::string, Function*> functions;
int context_token, stream_token;
int profiler_depth = 0;

CUresult complain(CUresult r, const std::string& what) {
    std::fprintf(stderr, "emulated CUDA driver: %s\n", what.c_str());
    return r;
}

// Whether [p, p + n) lies inside one live allocation.
bool inside(CUdeviceptr p, size_t n) {
    std::lock_guard<std::mutex> hold(state);
    auto it = allocations.upper_bound(p);
    if (it == allocations.begin()) return false;
    --it;
    return p >= it->first && p + n <= it->first + it->second.bytes;
}

CUresult check_range(CUdeviceptr p, size_t n, const char* op) {
    if (n == 0 || inside(p, n)) return kSuccess;
    char what[160];
    std::snprintf(what, sizeof what, "%s: %zu bytes at 0x%llx are not inside one live allocation",
                  op, n, p);
    return complain(kInvalidValue, what);
}

// The kernel running now, for the fault handler.
const char* volatile running_kernel = nullptr;
struct sigaction previous_segv;

// A fault inside a kernel is a kernel touching memory outside its buffers: say which, then
// let the previous handler (Rust's) deal with the signal.
void on_fault(int sig, siginfo_t* info, void* uctx) {
    if (const char* k = running_kernel) {
        char msg[256];
        const int n = std::snprintf(msg, sizeof msg,
                                    "emulated GPU: kernel %s touched %p, outside every buffer "
                                    "(past the end of one, or unallocated)\n",
                                    k, info->si_addr);
        if (n > 0) (void)!write(2, msg, size_t(n) < sizeof msg ? size_t(n) : sizeof msg - 1);
    }
    sigaction(SIGSEGV, &previous_segv, nullptr);
    if (previous_segv.sa_flags & SA_SIGINFO) {
        if (previous_segv.sa_sigaction) previous_segv.sa_sigaction(sig, info, uctx);
    }
    // Otherwise returning re-runs the faulting access under the previous disposition.
}

void install_fault_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &previous_segv);
    });
}

int sms() {
    const char* s = std::getenv("TALLY_EMU_SMS");
    const int n = s ? std::atoi(s) : 2;
    return n > 0 ? n : 2;
}
// The codes this driver returns: (code, name, description).
struct ErrorText {
    CUresult code;
    const char *name, *text;
};
constexpr ErrorText kErrors[] = {
    {kSuccess, "CUDA_SUCCESS", "no error"},
    {kInvalidValue, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {kOutOfMemory, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {kInvalidDevice, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {kInvalidImage, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {kInvalidHandle, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {kNotFound, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
};
const ErrorText& error_text(CUresult r) {
    static constexpr ErrorText unknown{-1, "CUDA_ERROR_UNKNOWN", "unknown error"};
    for (const ErrorText& e : kErrors)
        if (e.code == r) return e;
    return unknown;
}
}  // namespace

void tally_emu::register_kernel(const char* name, Invoker invoke) { kernels()[name] = invoke; }

extern "C" {
CUresult cuInit(unsigned) { return kSuccess; }
CUresult cuDriverGetVersion(int* v) {
    *v = 12080;
    return kSuccess;
}
CUresult cuDeviceGetCount(int* n) {
    *n = 1;
    return kSuccess;
}
CUresult cuDeviceGet(CUdevice* d, int ordinal) {
    if (ordinal != 0) return kInvalidDevice;
    *d = 0;
    return kSuccess;
}
CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
    if (d != 0) return kInvalidDevice;
    std::snprintf(name, len, "Tally emulated GPU (CPU)");
    return kSuccess;
}
CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice) {
    *bytes = size_t(16) << 30;
    return kSuccess;
}
CUresult cuDeviceGetAttribute(int* v, int attribute, CUdevice d) {
    if (d != 0) return kInvalidDevice;
    switch (attribute) {
        case 1: *v = 1024; break;        // max threads per block
        case 2: *v = 1024; break;        // max block x
        case 5: *v = 2147483647; break;  // max grid x
        case 8: *v = 48 << 10; break;    // shared memory per block
        case 10: *v = 32; break;         // warp size
        case 16: *v = sms(); break;      // multiprocessors
        case 75: *v = 9; break;          // compute capability major
        case 76: *v = 0; break;          // minor
        case 97: *v = 227 << 10; break;  // opt-in shared memory per block
        default: *v = 0;                 // memory pools (115) and the rest: not supported
    }
    return kSuccess;
}
CUresult cuDevicePrimaryCtxRetain(void** ctx, CUdevice d) {
    if (d != 0) return kInvalidDevice;
    *ctx = &context_token;
    return kSuccess;
}
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return kSuccess; }
CUresult cuDevicePrimaryCtxRelease(CUdevice) { return kSuccess; }
CUresult cuCtxSetCurrent(void*) { return kSuccess; }
CUresult cuCtxGetCurrent(void** ctx) {
    *ctx = &context_token;
    return kSuccess;
}
CUresult cuCtxGetDevice(CUdevice* d) {
    *d = 0;
    return kSuccess;
}
CUresult cuCtxSynchronize() { return kSuccess; }
CUresult cuCtxPushCurrent_v2(void*) { return kSuccess; }
CUresult cuCtxPopCurrent_v2(void** ctx) {
    if (ctx) *ctx = &context_token;
    return kSuccess;
}

CUresult cuStreamCreate(void** s, unsigned) {
    *s = &stream_token;
    return kSuccess;
}
CUresult cuStreamCreateWithPriority(void** s, unsigned, int) {
    *s = &stream_token;
    return kSuccess;
}
CUresult cuStreamDestroy_v2(void*) { return kSuccess; }
CUresult cuStreamSynchronize(void*) { return kSuccess; }
CUresult cuStreamQuery(void*) { return kSuccess; }
CUresult cuStreamWaitEvent(void*, void*, unsigned) { return kSuccess; }

CUresult cuEventCreate(void** e, unsigned) {
    *e = new Event;
    return kSuccess;
}
CUresult cuEventDestroy_v2(void* e) {
    delete static_cast<Event*>(e);
    return kSuccess;
}
CUresult cuEventRecord(void* e, void*) {
    auto* ev = static_cast<Event*>(e);
    ev->at = std::chrono::steady_clock::now();
    ev->recorded = true;
    return kSuccess;
}
CUresult cuEventRecordWithFlags(void* e, void* s, unsigned) { return cuEventRecord(e, s); }
CUresult cuEventSynchronize(void*) { return kSuccess; }
CUresult cuEventQuery(void*) { return kSuccess; }
CUresult cuEventElapsedTime(float* ms, void* start, void* end) {
    auto *a = static_cast<Event*>(start), *b = static_cast<Event*>(end);
    if (!a->recorded || !b->recorded)
        return complain(kInvalidHandle, "cuEventElapsedTime: an event was never recorded");
    *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
    return kSuccess;
}
CUresult cuEventElapsedTime_v2(float* ms, void* start, void* end) {
    return cuEventElapsedTime(ms, start, end);
}

// Right-aligned against a guard page: the buffer's last byte is the last accessible one.
CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
    const size_t page = 4096, data = (bytes + page - 1) / page * page;
    void* base = mmap(nullptr, data + page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return kOutOfMemory;
    char* guard = static_cast<char*>(base) + data;
    mprotect(guard, page, PROT_NONE);
    char* start = guard - bytes;
    std::memset(start, 0xff, bytes);
    *p = reinterpret_cast<CUdeviceptr>(start);
    std::lock_guard<std::mutex> hold(state);
    allocations[*p] = Allocation{bytes, base, data + page};
    return kSuccess;
}
CUresult cuMemAllocAsync(CUdeviceptr* p, size_t bytes, void*) { return cuMemAlloc_v2(p, bytes); }
CUresult cuMemFree_v2(CUdeviceptr p) {
    Allocation a;
    {
        std::lock_guard<std::mutex> hold(state);
        auto it = allocations.find(p);
        if (it == allocations.end())
            return complain(kInvalidValue, "cuMemFree: not a live allocation");
        a = it->second;
        allocations.erase(it);
    }
    munmap(a.base, a.mapped);
    return kSuccess;
}
CUresult cuMemFreeAsync(CUdeviceptr p, void*) { return cuMemFree_v2(p); }
CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total) {
    *total = size_t(16) << 30;
    *free_bytes = *total;
    return kSuccess;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
    if (CUresult r = check_range(dst, n, "cuMemcpyHtoD")) return r;
    if (n) std::memcpy(reinterpret_cast<void*>(dst), src, n);
    return kSuccess;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void*) {
    return cuMemcpyHtoD_v2(dst, src, n);
}
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
    if (CUresult r = check_range(src, n, "cuMemcpyDtoH")) return r;
    if (n) std::memcpy(dst, reinterpret_cast<const void*>(src), n);
    return kSuccess;
}
CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, void*) {
    return cuMemcpyDtoH_v2(dst, src, n);
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
    if (CUresult r = check_range(src, n, "cuMemcpyDtoD (source)")) return r;
    if (CUresult r = check_range(dst, n, "cuMemcpyDtoD (destination)")) return r;
    if (n) std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
    return kSuccess;
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void*) {
    return cuMemcpyDtoD_v2(dst, src, n);
}
CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char v, size_t n) {
    if (CUresult r = check_range(dst, n, "cuMemsetD8")) return r;
    if (n) std::memset(reinterpret_cast<void*>(dst), v, n);
    return kSuccess;
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, void*) {
    return cuMemsetD8_v2(dst, v, n);
}
CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned v, size_t n, void*) {
    if (CUresult r = check_range(dst, n * 4, "cuMemsetD32")) return r;
    auto* p = reinterpret_cast<unsigned*>(dst);
    for (size_t i = 0; i < n; ++i) p[i] = v;
    return kSuccess;
}

// The PTX's `.entry name(` lines are the module's kernels.
CUresult cuModuleLoadData(void** module, const void* image) {
    const std::string ptx(static_cast<const char*>(image));
    auto* m = new Module;
    for (size_t at = ptx.find(".entry "); at != std::string::npos;
         at = ptx.find(".entry ", at + 7)) {
        const size_t start = at + 7, end = ptx.find_first_of("( \n", start);
        if (end == std::string::npos) break;
        m->entries.insert(ptx.substr(start, end - start));
    }
    if (m->entries.empty()) {
        delete m;
        return complain(kInvalidImage, "cuModuleLoadData: no .entry in the image");
    }
    *module = m;
    return kSuccess;
}
CUresult cuModuleUnload(void* module) {
    delete static_cast<Module*>(module);
    return kSuccess;
}
CUresult cuModuleGetFunction(void** f, void* module, const char* name) {
    auto* m = static_cast<Module*>(module);
    if (!m->entries.count(name))
        return complain(kNotFound, std::string("cuModuleGetFunction: the PTX has no entry ") + name);
    std::lock_guard<std::mutex> hold(state);
    auto it = functions.find(name);
    if (it == functions.end()) {
        auto k = kernels().find(name);
        if (k == kernels().end())
            return complain(kNotFound, std::string("cuModuleGetFunction: ") + name +
                                           " is in the PTX but was not registered");
        it = functions.emplace(name, new Function{name, k->second}).first;
    }
    *f = it->second;
    return kSuccess;
}
CUresult cuFuncSetAttribute(void*, int, int) { return kSuccess; }
CUresult cuFuncGetAttribute(int* v, int, void*) {
    *v = 0;
    return kSuccess;
}
CUresult cuFuncSetCacheConfig(void*, int) { return kSuccess; }

CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                        unsigned bz, unsigned shared, void*, void** params, void** extra) {
    auto* fn = static_cast<Function*>(f);
    if (extra != nullptr)
        return complain(kInvalidValue, fn->name + ": arguments through `extra` are not emulated");
    if (gx == 0 || gy == 0 || gz == 0 || by != 1 || bz != 1 || bx == 0 || bx > 1024 ||
        bx % 32 != 0)
        return complain(kInvalidValue, fn->name + ": grid (" + std::to_string(gx) + "," +
                                           std::to_string(gy) + "," + std::to_string(gz) +
                                           ") of blocks (" + std::to_string(bx) + "," +
                                           std::to_string(by) + "," + std::to_string(bz) +
                                           "): the emulator runs 1-D blocks of whole warps");
    if (shared > (227u << 10))
        return complain(kInvalidValue, fn->name + ": " + std::to_string(shared) +
                                           " bytes of dynamic shared memory");
    install_fault_handler();
    running_kernel = fn->name.c_str();
    fn->invoke(dim3{gx, gy, gz}, dim3{bx, by, bz}, shared, params);
    running_kernel = nullptr;
    return kSuccess;
}

CUresult cuProfilerStart() {
    ++profiler_depth;
    return kSuccess;
}
CUresult cuProfilerStop() {
    --profiler_depth;
    return kSuccess;
}

CUresult cuGetErrorString(CUresult r, const char** s) {
    *s = error_text(r).text;
    return kSuccess;
}
CUresult cuGetErrorName(CUresult r, const char** s) {
    *s = error_text(r).name;
    return kSuccess;
}
}  // extern "C"
