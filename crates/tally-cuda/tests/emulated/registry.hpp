// registry.hpp: how the emulated driver (driver.cpp) finds a kernel by name and calls it with
// a launch's `void** kernelParams`. Each generated registry file includes one kernels/*.cu
// inside its own namespace, then registers every entry its PTX names:
//     namespace tally_file_binary {
//     #include "binary.cu"
//     }
//     TALLY_REGISTER(tally_file_binary, add_f32)
// The parameter types come from the kernel's own declaration, so each argument is read from
// kernelParams[i] as the type the kernel takes, as the real driver does from the PTX.
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

namespace tally_emu {
// Runs a registered kernel: grid, block, dynamic shared bytes, the launch's argument slots.
using Invoker = void (*)(dim3, dim3, size_t, void**);

// Defined in driver.cpp: makes `name` launchable.
void register_kernel(const char* name, Invoker invoke);

template <auto K>
struct Entry;

template <typename... P, void (*K)(P...)>
struct Entry<K> {
    template <size_t... I>
    static void call(dim3 grid, dim3 block, size_t shared, void** params,
                     std::index_sequence<I...>) {
        tally_launch(grid, block, shared, K,
                     *static_cast<std::remove_cv_t<std::remove_reference_t<P>>*>(params[I])...);
    }
    static void invoke(dim3 grid, dim3 block, size_t shared, void** params) {
        call(grid, block, shared, params, std::index_sequence_for<P...>{});
    }
};
}  // namespace tally_emu

#define TALLY_REGISTER(SPACE, NAME)                                                  \
    static const bool tally_registered_##NAME =                                      \
        (tally_emu::register_kernel(#NAME, &tally_emu::Entry<&SPACE::NAME>::invoke), \
         true);
