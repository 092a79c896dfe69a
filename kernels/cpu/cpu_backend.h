// The CPU implementation of kernels::Backend: activations in host memory, weights used
// in place (in their stored type), matmul through the block-wise quantized kernels and
// their thread pool, attention split over query heads across the same pool.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/backend.h"

namespace pv::kernels {

namespace cpu {
class ThreadPool;
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads = 1);
  ~CpuBackend() override;

  std::string_view name() const override { return "cpu"; }
  std::string device_description() const override;
  int threads() const { return threads_; }

  float* alloc(size_t n) override;
  void free(float* p) override;
  void upload(float* dst, const float* host, size_t n) override;
  void download(float* host, const float* src, size_t n) override;
  void copy(float* dst, const float* src, size_t n) override;
  void synchronize() override {}

  const Weight& prepare_weight(const TensorView& view) override;

  void embed(const Weight& w, const int32_t* tokens, int T, float* out) override;
  void matmul(const Weight& w, const float* x, int T, float* y) override;
  void add_bias(float* y, const Weight& bias, int T) override;
  void rmsnorm(const float* x, const Weight& w, int T, int n, float eps, float* y) override;
  void rope(float* x, int T, int n_heads, int head_dim, int pos0, float theta,
            RopeStyle style) override;
  void rope_table(float* x, int T, int n_heads, int head_dim, int pos0, const float* inv_freq,
                  float attention_factor, RopeStyle style) override;
  void attention(const float* q, const float* k_cache, const float* v_cache,
                 const AttentionShape& shape, int T, int pos0, float* out, float* scores,
                 float* probs) override;
  void add(float* x, const float* y, size_t n) override;
  void silu(const float* x, size_t n, float* y) override;
  void mul(const float* a, const float* b, size_t n, float* y) override;
  void softmax(float* x, int rows, int n) override;

 private:
  // A 1-D weight's values as f32 (converted once at prepare time when stored as F16/BF16).
  const float* vector_f32(const Weight& w, int64_t expected, const char* op) const;

  int threads_;
  std::unique_ptr<cpu::ThreadPool> pool_;
  std::deque<Weight> weights_;                     // stable addresses for returned references
  std::deque<std::vector<float>> converted_;       // f32 copies of F16/BF16 1-D weights
  std::unordered_map<const void*, size_t> index_;  // data pointer -> weights_ slot
};

}  // namespace pv::kernels
