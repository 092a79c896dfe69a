// Backend factory: the one place that knows which backends this build has.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "kernels/backend.h"

namespace pv::kernels {

// "cpu" (threads >= 1) or "cuda" (device 0). Throws std::runtime_error for an unknown
// name, and for "cuda" when this build has no CUDA or no device is usable; that
// message contains "fixture-absent: cuda-device" so callers (tests, pv) can tell an
// absent device from a failure.
std::unique_ptr<Backend> make_backend(std::string_view name, int threads = 1);

}  // namespace pv::kernels
