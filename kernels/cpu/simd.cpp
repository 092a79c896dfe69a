#include "kernels/cpu/simd.h"

#include <atomic>
#include <cstdlib>
#include <string>

namespace pv::kernels::cpu {
namespace {

// -1: not forced; otherwise a SimdLevel value.
std::atomic<int> g_forced{-1};

SimdLevel from_env() {
  const char* env = std::getenv("PV_CPU_SIMD");
  if (env != nullptr && std::string(env) == "scalar") return SimdLevel::Scalar;
  return detected_simd();
}

}  // namespace

SimdLevel detected_simd() {
#if defined(__x86_64__) || defined(__i386__)
  static const SimdLevel level = [] {
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                      __builtin_cpu_supports("f16c");
    return avx2 ? SimdLevel::Avx2 : SimdLevel::Scalar;
  }();
  return level;
#else
  return SimdLevel::Scalar;
#endif
}

SimdLevel active_simd() {
  const int forced = g_forced.load(std::memory_order_relaxed);
  if (forced >= 0) {
    const auto level = static_cast<SimdLevel>(forced);
    return level <= detected_simd() ? level : detected_simd();
  }
  static const SimdLevel env_level = from_env();
  return env_level;
}

void force_simd(std::optional<SimdLevel> level) {
  g_forced.store(level ? static_cast<int>(*level) : -1, std::memory_order_relaxed);
}

std::string_view simd_name(SimdLevel level) { return level == SimdLevel::Avx2 ? "avx2" : "scalar"; }

}  // namespace pv::kernels::cpu
