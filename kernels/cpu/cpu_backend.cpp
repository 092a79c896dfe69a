#include "kernels/cpu/cpu_backend.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/thread_pool.h"
#include "mutants/mutant.h"

namespace pv::kernels {

CpuBackend::CpuBackend(int threads)
    : threads_(threads < 1 ? 1 : threads), pool_(std::make_unique<cpu::ThreadPool>(threads_)) {}
CpuBackend::~CpuBackend() = default;

std::string CpuBackend::device_description() const {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) model = line.substr(colon + 2);
      break;
    }
  }
  return model + ", " + std::to_string(threads_) + " thread(s)";
}

float* CpuBackend::alloc(size_t n) {
  // 64-byte aligned for the SIMD kernels; aligned_alloc needs a multiple of the alignment.
  const size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes == 0 ? 64 : bytes);
  return static_cast<float*>(p);
}

void CpuBackend::free(float* p) { std::free(p); }

void CpuBackend::upload(float* dst, const float* host, size_t n) {
  std::memcpy(dst, host, n * sizeof(float));
}
void CpuBackend::download(float* host, const float* src, size_t n) {
  std::memcpy(host, src, n * sizeof(float));
}
void CpuBackend::copy(float* dst, const float* src, size_t n) {
  std::memmove(dst, src, n * sizeof(float));
}

const Weight& CpuBackend::prepare_weight(const TensorView& view) {
  if (auto it = index_.find(view.data); it != index_.end() && view.data != nullptr) {
    return weights_[it->second];
  }
  Weight w{view, nullptr};
  // Norm weights and biases are read as plain f32 vectors by the elementwise ops; an
  // F16/BF16 copy (safetensors half checkpoints) is converted once here. A one-row block
  // weight keeps its type: matmul over it rounds x to int8 like any other block weight.
  if (view.rows == 1 && (view.type == GgmlType::F16 || view.type == GgmlType::BF16) &&
      view.data != nullptr) {
    auto& buf = converted_.emplace_back(static_cast<size_t>(view.cols));
    cpu::dequantize_view_row(view, 0, buf.data());
    w.view.type = GgmlType::F32;
    w.view.data = buf.data();
    w.view.nbytes = buf.size() * sizeof(float);
  }
  weights_.push_back(w);
  if (view.data != nullptr) index_[view.data] = weights_.size() - 1;
  return weights_.back();
}

const float* CpuBackend::vector_f32(const Weight& w, int64_t expected, const char* op) const {
  if (w.view.type != GgmlType::F32 || w.view.numel() != expected) {
    throw std::invalid_argument(std::string(op) + ": weight '" + w.view.name + "' has " +
                                std::to_string(w.view.numel()) + " " +
                                std::string(type_name(w.view.type)) + " values, expected " +
                                std::to_string(expected) + " F32");
  }
  return static_cast<const float*>(w.view.data);
}

void CpuBackend::embed(const Weight& w, const int32_t* tokens, int T, float* out) {
  cpu::embed(w.view, tokens, T, out);
}

void CpuBackend::matmul(const Weight& w, const float* x, int T, float* y) {
  cpu::matmul(w.view, x, T, y, pool_.get());
}

void CpuBackend::add_bias(float* y, const Weight& bias, int T) {
  const int n = static_cast<int>(bias.view.numel());
  cpu::add_bias(y, vector_f32(bias, n, "add_bias"), T, n);
}

void CpuBackend::rmsnorm(const float* x, const Weight& w, int T, int n, float eps, float* y) {
  cpu::rmsnorm(x, vector_f32(w, n, "rmsnorm"), T, n, eps, y);
}

void CpuBackend::rope(float* x, int T, int n_heads, int head_dim, int pos0, float theta,
                      RopeStyle style) {
  cpu::rope(x, T, n_heads, head_dim, pos0, theta, style);
}

void CpuBackend::rope_table(float* x, int T, int n_heads, int head_dim, int pos0,
                            const float* inv_freq, float attention_factor, RopeStyle style) {
  cpu::rope(x, T, n_heads, head_dim, pos0, inv_freq, attention_factor, style);
}

void CpuBackend::attention(const float* q, const float* k_cache, const float* v_cache,
                           const AttentionShape& shape, int T, int pos0, float* out, float* scores,
                           float* probs) {
  if (shape.n_heads <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 ||
      shape.n_heads % shape.n_kv_heads != 0 || pos0 < 0 || T < 0) {
    throw std::invalid_argument(
        "cpu attention: invalid shape (n_heads " + std::to_string(shape.n_heads) + ", n_kv_heads " +
        std::to_string(shape.n_kv_heads) + ", head_dim " + std::to_string(shape.head_dim) + ", T " +
        std::to_string(T) + ", pos0 " + std::to_string(pos0) + ")");
  }
  // Heads are independent: one head per chunk keeps the split even for 2..16 threads.
  // A single-token decode at short context is too small to pay for the hand-off.
  const int64_t work = static_cast<int64_t>(shape.n_heads) * T * (pos0 + T) * shape.head_dim;
  if (threads_ == 1 || work < 32768) {
    cpu::attention(q, k_cache, v_cache, shape, T, pos0, out, scores, probs);
    return;
  }
  const bool kv_split = mutant::planted(mutant::Bug::AttnThreadSplitKv);
  pool_->parallel_for(kv_split ? shape.n_kv_heads : shape.n_heads, [&](int64_t h0, int64_t h1) {
    cpu::attention_heads(q, k_cache, v_cache, shape, T, pos0, static_cast<int>(h0),
                         static_cast<int>(h1), out, scores, probs);
  });
}

void CpuBackend::add(float* x, const float* y, size_t n) { cpu::add(x, y, n); }
void CpuBackend::silu(const float* x, size_t n, float* y) { cpu::silu(x, n, y); }
void CpuBackend::mul(const float* a, const float* b, size_t n, float* y) { cpu::mul(a, b, n, y); }
void CpuBackend::softmax(float* x, int rows, int n) { cpu::softmax(x, rows, n); }

}  // namespace pv::kernels
