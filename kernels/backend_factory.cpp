#include "kernels/backend_factory.h"

#include <stdexcept>
#include <string>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_backend.h"  // or cuda/no_cuda.cpp's fallback, which says why not

namespace pv::kernels {

std::unique_ptr<Backend> make_backend(std::string_view name, int threads) {
  if (name == "cpu") return std::make_unique<CpuBackend>(threads);
  if (name == "cuda") {
    std::string why;
    if (!cuda_device_available(&why)) {
      throw std::runtime_error("fixture-absent: cuda-device (" + why + ")");
    }
    return make_cuda_backend(0);
  }
  throw std::runtime_error("unknown backend '" + std::string(name) + "' (expected cpu or cuda)");
}

}  // namespace pv::kernels
