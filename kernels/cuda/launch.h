// Host-side launchers of the CUDA kernels (implemented in the .cu files beside this).
// Pointers are device pointers; every launcher checks its launch (cuda_check.h) and runs
// on the legacy default stream, so the backend's synchronous copies order with them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/backend.h"
#include "kernels/quant/ggml_types.h"

namespace pv::kernels::cuda {

// A weight on the device in its stored GGUF layout: `rows` rows of `row_bytes` bytes.
struct DeviceMatrix {
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
};

// y[t, r] = sum_c w[r, c] * x[t, c] for t < T. x must be 16-byte aligned (the backend
// stages a misaligned x into an aligned scratch buffer first). Over block weights x is
// rounded to int8 per activation block of act_block_values(w.type) values first, as on
// the CPU, into `scratch` (act_int8_scratch_bytes(w, T) device bytes); codes_ready says
// the scratch already holds the codes of this very x (same values, T and activation
// block: the caller vouches for it), so they are not rounded again.
void launch_matmul(const DeviceMatrix& w, const float* x, int T, void* scratch, bool codes_ready,
                   float* y);
size_t act_int8_scratch_bytes(const DeviceMatrix& w, int T);
// Values per activation block x is rounded in for weights of this type; 0 for float types.
int act_block_values(GgmlType type);
// The block-weight half of launch_matmul (matmul_act_int8.cu); false, launching nothing,
// for float weights.
bool launch_matmul_act_int8(const DeviceMatrix& w, const float* x, int T, void* scratch,
                            bool codes_ready, float* y);

// out[t, :] = row tokens[t] of w, dequantized; tokens are device int32.
void launch_embed(const DeviceMatrix& w, const int32_t* tokens, int T, float* out);
// y[t, c] += bias[c]   (bias: 1 x n weight in any supported type).
void launch_add_bias(float* y, const DeviceMatrix& bias, int T);
// y = x * rsqrt(mean(x^2) + eps) * w, row by row.
void launch_rmsnorm(const float* x, const DeviceMatrix& w, int T, int n, float eps, float* y);
void launch_rope(float* x, int T, int n_heads, int head_dim, int pos0, float theta,
                 RopeStyle style);
// Backend::rope_table; inv_freq is host memory (head_dim / 2 floats).
void launch_rope_table(float* x, int T, int n_heads, int head_dim, int pos0, const float* inv_freq,
                       float attention_factor, RopeStyle style);
void launch_attention(const float* q, const float* k_cache, const float* v_cache,
                      const AttentionShape& shape, int T, int pos0, float* out, float* scores,
                      float* probs);
void launch_add(float* x, const float* y, size_t n);
void launch_silu(const float* x, size_t n, float* y);
void launch_mul(const float* a, const float* b, size_t n, float* y);
void launch_softmax(float* x, int rows, int n);

}  // namespace pv::kernels::cuda
