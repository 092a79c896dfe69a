#include "model/backends.h"

#include <stdexcept>
#include <string>

#include "kernels/cpu/cpu_backend.h"
#ifdef PV_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace pv::model {

bool cuda_available(std::string* why) {
#ifdef PV_HAVE_CUDA
  return kernels::cuda_device_available(why);
#else
  if (why != nullptr) *why = "this pv build has no CUDA backend (built without nvcc)";
  return false;
#endif
}

std::unique_ptr<kernels::Backend> make_backend(std::string_view name, int threads) {
  if (name == "cpu") return std::make_unique<kernels::CpuBackend>(threads);
  if (name == "cuda") {
    std::string why;
    if (!cuda_available(&why)) {
      throw std::runtime_error("fixture-absent: cuda-device (" + why + ")");
    }
#ifdef PV_HAVE_CUDA
    return kernels::make_cuda_backend(0);
#endif
  }
  throw std::runtime_error("unknown backend '" + std::string(name) + "' (expected cpu or cuda)");
}

}  // namespace pv::model
