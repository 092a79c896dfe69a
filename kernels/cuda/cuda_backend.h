// The CUDA backend: every op of kernels/backend.h as CUDA kernels over device-resident
// activations. Weights are copied to the device in their stored GGUF block layout and
// decoded there block by block (never dequantized whole), so CPU and CUDA consume the
// very same bytes and a parity failure points at a kernel, not at a conversion.
//
// This header has no CUDA includes: a build without nvcc links a fallback whose
// cuda_device_available() says why, so callers (tests, the CLI) compile unchanged and
// skip with "fixture-absent: cuda-device" instead of failing to build.
#pragma once

#include <memory>
#include <string>

#include "kernels/backend.h"

namespace pv::kernels {

// True when this build has CUDA and a device can be used; otherwise false and *why
// (when non-null) says what is missing (no nvcc at build time, no driver, no device).
bool cuda_device_available(std::string* why);

// A backend on CUDA device `device`. Throws std::runtime_error naming the CUDA error
// when the device cannot be initialised.
std::unique_ptr<Backend> make_cuda_backend(int device = 0);

}  // namespace pv::kernels
