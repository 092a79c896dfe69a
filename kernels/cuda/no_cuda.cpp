// Fallback linked when the build has no CUDA compiler: callers compile unchanged, and the
// CUDA falsifiers skip with "fixture-absent: cuda-device" instead of vanishing.
#include <stdexcept>

#include "kernels/cuda/cuda_backend.h"

namespace pv::kernels {

bool cuda_device_available(std::string* why) {
  if (why != nullptr) *why = "pv was built without CUDA (no nvcc found at configure time)";
  return false;
}

std::unique_ptr<Backend> make_cuda_backend(int /*device*/) {
  throw std::runtime_error("pv was built without CUDA: rebuild with nvcc and -DPV_CUDA=ON");
}

}  // namespace pv::kernels
