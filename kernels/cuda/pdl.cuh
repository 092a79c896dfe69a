// Programmatic dependent launch (Hopper, sm_90): a kernel launched with the
// programmatic-stream-serialization attribute may start while the kernel before it in the
// stream is still finishing, and runs its prologue there: the matvecs issue their first
// weight loads and L2 prefetches (weights are constant), then wait for the previous grid to
// complete and flush before they read activations or write anything. The small ops
// (ops.cu, attention.cu) are launched this way too and wait first thing, so they gain the
// launch processing that overlaps the kernel in front (a decode step is ~19 launches per
// layer; H200 7B-shape decode 285 tok/s against 259). The many-block float and multi-token
// matmuls stay plain launches (their waiting blocks slowed the kernel in front). Every
// kernel calls pdl_allow_next() as it starts; every dependent must call pdl_wait_previous()
// before it touches memory another kernel wrote, on every path: a grid that completed
// without waiting would let its own dependents run ahead of its predecessor.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <utility>

#include "kernels/cuda/cuda_check.h"

namespace pv::kernels::cuda {

// The next kernel in the stream may be launched now (its blocks start as SMs free up).
__device__ __forceinline__ void pdl_allow_next() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

// Blocks until the previous grid in the stream has completed and its writes are visible;
// a no-op when this kernel was not launched as a programmatic dependent.
__device__ __forceinline__ void pdl_wait_previous() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// PV_CUDA_PDL=0 launches without the attribute (plain stream order), for A/B runs.
inline bool pdl_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("PV_CUDA_PDL");
    return e == nullptr || e[0] != '0';
  }();
  return on;
}

// kernel<<<grid, block, smem>>>(args...) on the legacy default stream, as a programmatic
// dependent of the kernel before it when pdl_enabled().
template <class... Params, class... Args>
void launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                      Args&&... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = nullptr;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = pdl_enabled() ? 1 : 0;
  cfg.attrs = &attr;
  cfg.numAttrs = 1;
  PV_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

}  // namespace pv::kernels::cuda
