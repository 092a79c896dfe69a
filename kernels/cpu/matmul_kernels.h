// Internal: the per-type row-dot kernels behind matmul(), in a scalar and an AVX2 set.
// Block weights are dotted with activations quantized once per token to int8 (Q8A for the
// 32-value types, Q8K for the K-quants), as ggml does; float weights are dotted with the f32
// activations directly. The scalar and AVX2 sets compute the same integer block sums and the
// same activation codes; they differ only in the order of the f32 accumulation.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/simd.h"
#include "kernels/quant/ggml_types.h"

namespace pv::kernels::cpu {

enum class ActFormat { F32, Q8A, Q8K };

// The kernels' signatures; each SIMD set below declares its kernels by them.
using VecDot = float(int64_t n, const void* w_row, const void* act_row);
using ActQuant = void(const float* x, void* dst, int64_t n);
// One weight row against nt (1..4) tokens' activation rows, `stride` bytes apart: out[t].
// Bit-identical to nt calls of the matching VecDot.
using MultiDot = void(int64_t n, const void* w_row, const uint8_t* act, size_t stride, int nt,
                      float* out);
using VecDotFn = VecDot*;
using ActQuantFn = ActQuant*;
using MultiDotFn = MultiDot*;

struct RowKernels {
  ActFormat act;
  ActQuantFn quantize_act;  // null for ActFormat::F32
  VecDotFn dot;
  MultiDotFn dot_multi = nullptr;  // null: matmul calls dot per token
};

// Kernels for a weight type at a SIMD level (the level must be supported by this CPU).
const RowKernels& row_kernels(GgmlType type, SimdLevel level);
size_t act_row_bytes(ActFormat act, int64_t n);  // n already validated for the block size

namespace scalar {
ActQuant quantize_act_q8a, quantize_act_q8k;
VecDot dot_f32, dot_f16, dot_bf16, dot_q8_0, dot_q4_0, dot_q4_K, dot_q6_K;
// matmul_scalar_ext.cpp
VecDot dot_q4_1, dot_q5_0, dot_q5_1, dot_iq4_nl, dot_q2_K, dot_q3_K, dot_q5_K, dot_iq4_xs;
}  // namespace scalar

namespace avx2 {
ActQuant quantize_act_q8a, quantize_act_q8k;
VecDot dot_f32, dot_f16, dot_bf16, dot_q8_0, dot_q4_0, dot_q4_K, dot_q6_K;
MultiDot dot_q8_0_x4, dot_q4_K_x4, dot_q6_K_x4;
// matmul_avx2_ext.cpp
VecDot dot_q4_1, dot_q5_0, dot_q5_1, dot_iq4_nl, dot_q2_K, dot_q3_K, dot_q5_K, dot_iq4_xs;
}  // namespace avx2

}  // namespace pv::kernels::cpu
