// Runtime SIMD dispatch for the CPU kernels. The project is compiled without -march flags, so
// the AVX2 kernels are built per function with target attributes and chosen here at run time.
// The portable scalar kernels can be forced (PV_CPU_SIMD=scalar in the environment, or
// force_simd() in tests) so the fallback is exercised on machines that have AVX2.
#pragma once

#include <optional>
#include <string_view>

namespace pv::kernels::cpu {

enum class SimdLevel { Scalar, Avx2 };  // Avx2 means AVX2 + FMA + F16C

SimdLevel detected_simd();  // the best level this CPU supports
// The level the kernels use: a forced level when set, else PV_CPU_SIMD (scalar|avx2) when set,
// else detected_simd(). Asking for more than the CPU supports falls back to detected_simd().
SimdLevel active_simd();
void force_simd(std::optional<SimdLevel> level);  // nullopt: back to the default
std::string_view simd_name(SimdLevel level);

}  // namespace pv::kernels::cpu
