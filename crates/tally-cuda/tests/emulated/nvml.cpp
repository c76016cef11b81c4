// nvml.cpp: a stand-in for NVML (libnvidia-ml.so.1) beside the emulated driver, so that
// Tally's GPU energy path (tally-energy's NVML meter, the CLI's joules for `--device cuda`)
// runs on the emulated GPU. Its "total energy" is not measured: it is a constant 50 W times
// the wall time since the library was loaded, so a region's reading is 50 W × its length.
// What it checks is the plumbing (loading, the device handle, reading the counter around a
// region, apportioning), never an energy figure.
#include <chrono>
#include <cstdio>

namespace {
typedef int Return;
constexpr Return kSuccess = 0, kInvalidArgument = 2;
constexpr double kWatts = 50.0;
const auto loaded = std::chrono::steady_clock::now();
int device_token;
}  // namespace

extern "C" {
Return nvmlInit_v2() { return kSuccess; }
Return nvmlInitWithFlags(unsigned) { return kSuccess; }
Return nvmlShutdown() { return kSuccess; }
Return nvmlDeviceGetCount_v2(unsigned* n) {
    *n = 1;
    return kSuccess;
}
Return nvmlDeviceGetHandleByIndex_v2(unsigned index, void** device) {
    if (index != 0) return kInvalidArgument;
    *device = &device_token;
    return kSuccess;
}
Return nvmlDeviceGetName(void* device, char* name, unsigned length) {
    if (device != &device_token) return kInvalidArgument;
    std::snprintf(name, length, "Tally emulated GPU (CPU)");
    return kSuccess;
}
// Millijoules: 50 W over the time since load (50 mJ per millisecond).
Return nvmlDeviceGetTotalEnergyConsumption(void* device, unsigned long long* mj) {
    if (device != &device_token) return kInvalidArgument;
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - loaded)
            .count();
    *mj = (unsigned long long)(kWatts * ms);
    return kSuccess;
}
const char* nvmlErrorString(Return r) {
    return r == kSuccess ? "Success" : r == kInvalidArgument ? "Invalid Argument" : "Unknown Error";
}
}  // extern "C"
