// Every CUDA runtime call and every kernel launch goes through these macros: a failure
// throws std::runtime_error with the call site (file:line), the expression and
// cudaGetErrorString, instead of being ignored until a later call trips over it.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace pv::kernels::cuda {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* expr, const char* file,
                                          int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": CUDA error " +
                           cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ") in " + expr);
}

}  // namespace pv::kernels::cuda

#define PV_CUDA_CHECK(expr)                                                           \
  do {                                                                                \
    const cudaError_t pv_cuda_err_ = (expr);                                          \
    if (pv_cuda_err_ != cudaSuccess)                                                  \
      ::pv::kernels::cuda::throw_cuda_error(pv_cuda_err_, #expr, __FILE__, __LINE__); \
  } while (0)

// After a <<<...>>> launch: configuration errors surface from cudaGetLastError at once;
// asynchronous faults surface at the next synchronising call, which is checked too.
#define PV_CUDA_LAUNCH_CHECK(what) PV_CUDA_CHECK((static_cast<void>(what), cudaGetLastError()))
