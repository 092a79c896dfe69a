// Plain CPU implementations of the non-matmul ops of the forward pass. They are free
// functions over host float buffers so kernel-level falsifiers can call them directly,
// without a Backend; CpuBackend (cpu_backend.h) is a thin, threaded wrapper over them.
// Matmul lives with the quantized block code (matmul.h), not here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/backend.h"

namespace pv::kernels::cpu {

// y[t, :] = x[t, :] * rsqrt(mean(x[t, :]^2) + eps) * w   (x, y: [T, n]; y may alias x).
// The sum of squares is accumulated in double so the norm does not depend on n's size.
void rmsnorm(const float* x, const float* w, int T, int n, float eps, float* y);

// RoPE angle tables for positions pos0 .. pos0+T-1: cos/sin [T, head_dim/2].
// Computed as HF transformers does (see rope_tables in ops.cpp for the rounding).
void rope_tables(int T, int head_dim, int pos0, float theta, std::vector<float>* cos_tab,
                 std::vector<float>* sin_tab);

// In place on x: [T, n_heads * head_dim]; token t sits at position pos0 + t.
void rope(float* x, int T, int n_heads, int head_dim, int pos0, float theta, RopeStyle style);
// The tables and rotation from given frequencies (Backend::rope_table).
void rope_tables(int T, int head_dim, int pos0, const float* inv_freq, float attention_factor,
                 std::vector<float>* cos_tab, std::vector<float>* sin_tab);
void rope(float* x, int T, int n_heads, int head_dim, int pos0, const float* inv_freq,
          float attention_factor, RopeStyle style);

// Causal GQA attention for query heads [h_begin, h_end) (the backend splits heads across
// threads; a single caller passes 0, n_heads). Semantics as Backend::attention: T new
// queries at positions pos0 .. pos0+T-1 over cache rows [0, pos0+T); query head h reads
// KV head kv_head_of(h, ...). scores/probs, when non-null, are [n_heads, T, pos0+T]:
// scores is Q·Kᵀ·scale for every (i, j) before the mask, probs the softmax after it
// (masked entries exactly 0).
void attention_heads(const float* q, const float* k_cache, const float* v_cache,
                     const AttentionShape& shape, int T, int pos0, int h_begin, int h_end,
                     float* out, float* scores, float* probs);

inline void attention(const float* q, const float* k_cache, const float* v_cache,
                      const AttentionShape& shape, int T, int pos0, float* out, float* scores,
                      float* probs) {
  attention_heads(q, k_cache, v_cache, shape, T, pos0, 0, shape.n_heads, out, scores, probs);
}

void add(float* x, const float* y, size_t n);                  // x += y
void silu(const float* x, size_t n, float* y);                 // y = x * sigmoid(x)
void mul(const float* a, const float* b, size_t n, float* y);  // y = a * b
// y[t, :] += bias[:]  (y: [T, n]).
void add_bias(float* y, const float* bias, int T, int n);
// Row-wise softmax of x: [rows, n] in place (max-subtracted, sum in double).
void softmax(float* x, int rows, int n);

// out[t, :] = row tokens[t] of the embedding table, dequantized to f32. Throws
// std::out_of_range naming the token and the table when a token id is outside [0, rows).
void embed(const TensorView& table, const int32_t* tokens, int T, float* out);

// One row of any supported stored type, dequantized to f32 (n = view.cols values).
void dequantize_view_row(const TensorView& view, int64_t row, float* out);

}  // namespace pv::kernels::cpu
