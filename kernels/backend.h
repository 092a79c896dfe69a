// The one interface every numeric backend (cpu/, cuda/) implements. model/forward.cpp
// is written once against it, so the CPU and CUDA paths run the same forward and the
// same stage plan; a parity failure is then a kernel failure, not a forward mismatch.
//
// Activations are float32 buffers that live where the backend computes (host memory
// for CPU, device memory for CUDA). Shapes are row-major with tokens outermost.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "kernels/tensor.h"

namespace pv::kernels {

// RoPE pairing. HalfSplit (NEOX, HF Qwen2/Llama): element i pairs with i + d/2.
// Interleaved (llama GGUF after the converter's Q/K permutation): pairs (2i, 2i+1).
enum class RopeStyle { HalfSplit, Interleaved };

// The largest head_dim rope_table takes (its inv_freq travels by value to CUDA kernels).
inline constexpr int kMaxRopeHeadDim = 512;

struct AttentionShape {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
};

// GQA: query head h reads KV head h / (n_heads / n_kv_heads).
inline int kv_head_of(int h, int n_heads, int n_kv_heads) { return h / (n_heads / n_kv_heads); }

// A weight prepared for a backend: the host view plus, where the backend needs its
// own copy (CUDA), a pointer to it. Owned by the backend that prepared it.
struct Weight {
  TensorView view;
  const void* device_data = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const = 0;           // "cpu", "cuda"
  virtual std::string device_description() const = 0;  // CPU model / GPU name + driver

  // ---- memory -------------------------------------------------------------
  virtual float* alloc(size_t n) = 0;  // n floats, zero-initialised
  virtual void free(float* p) = 0;
  virtual void upload(float* dst, const float* host, size_t n) = 0;
  virtual void download(float* host, const float* src, size_t n) = 0;
  virtual void copy(float* dst, const float* src, size_t n) = 0;  // within the backend
  virtual void synchronize() = 0;

  // The backend keeps the returned Weight alive until it is destroyed. On CPU the
  // view's bytes must outlive the backend (they are used in place).
  virtual const Weight& prepare_weight(const TensorView& view) = 0;

  // ---- ops ----------------------------------------------------------------
  // out[t, :] = dequantize(w row tokens[t]); tokens are host memory.
  virtual void embed(const Weight& w, const int32_t* tokens, int T, float* out) = 0;
  // y[t, r] = sum_c w[r, c] * x[t, c];  x: [T, w.cols], y: [T, w.rows].
  // Quantized weights are consumed block-wise, never dequantized whole.
  virtual void matmul(const Weight& w, const float* x, int T, float* y) = 0;
  // y[t, :] += bias (1-D weight of y's row length).
  virtual void add_bias(float* y, const Weight& bias, int T) = 0;
  // y[t, :] = x[t, :] * rsqrt(mean(x[t, :]^2) + eps) * w   (x: [T, n]).
  virtual void rmsnorm(const float* x, const Weight& w, int T, int n, float eps, float* y) = 0;
  // In place on x: [T, n_heads * head_dim], token t at position pos0 + t.
  virtual void rope(float* x, int T, int n_heads, int head_dim, int pos0, float theta,
                    RopeStyle style) = 0;
  // The same rotation with the frequencies given: pair i of token t turns by the angle
  // f32(f32(pos0 + t) * inv_freq[i]), and its cos/sin (evaluated in double, rounded to f32)
  // are multiplied in f32 by attention_factor, as transformers scales them for yarn.
  // inv_freq: head_dim / 2 host floats, head_dim <= kMaxRopeHeadDim. The forward builds the
  // table once (model/rope.h) so that every backend turns by bit-identical angles.
  virtual void rope_table(float* x, int T, int n_heads, int head_dim, int pos0,
                          const float* inv_freq, float attention_factor, RopeStyle style) = 0;
  // Causal GQA attention for T new queries at positions pos0 .. pos0+T-1 over cache
  // rows [0, pos0 + T) (the new K/V rows already stored). q, out: [T, n_heads*head_dim];
  // k_cache, v_cache: [>= pos0+T, n_kv_heads*head_dim]. Scale 1/sqrt(head_dim),
  // softmax in f32. When non-null, scores receives Q·Kᵀ·scale before the mask and
  // probs the post-mask softmax, both [n_heads, T, pos0 + T].
  virtual void attention(const float* q, const float* k_cache, const float* v_cache,
                         const AttentionShape& shape, int T, int pos0, float* out, float* scores,
                         float* probs) = 0;
  virtual void add(float* x, const float* y, size_t n) = 0;                  // x += y
  virtual void silu(const float* x, size_t n, float* y) = 0;                 // y = x*sigmoid(x)
  virtual void mul(const float* a, const float* b, size_t n, float* y) = 0;  // y = a*b
  // Row-wise softmax of x: [rows, n] in place (f32, max-subtracted).
  virtual void softmax(float* x, int rows, int n) = 0;
};

}  // namespace pv::kernels
