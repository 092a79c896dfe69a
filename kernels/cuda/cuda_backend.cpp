// CudaBackend: the Backend interface over device memory. Activations are cudaMalloc'd
// f32 buffers; weights are copied once to the device in their stored bytes; ops launch
// the kernels in launch.h on the legacy default stream, so the synchronous copies in
// upload/download order with them without extra events.
//
// Matmuls over block weights round x to int8 codes into a scratch buffer first. The
// backend remembers whose codes the scratch holds and skips the rounding when the next
// matmul reads the same x, unchanged (the forward's Q/K/V share one input, gate/up
// another): every op records the device range it writes (wrote()), and a write that
// overlaps the remembered x, an alloc, a free or a reallocated scratch forgets it.
#include "kernels/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.h"
#include "mutants/mutant.h"

namespace pv::kernels {
namespace {

using cuda::DeviceMatrix;

// A 64-bit hash of a weight's host bytes (four independent multiply-xorshift lanes over
// 8-byte words, so it runs near memory speed): weights are prepared once per Forward, and
// the cost is a fraction of the upload it can save.
uint64_t bytes_hash(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h[4] = {n, n ^ 0xFF51AFD7ED558CCDull, n ^ 0xC4CEB9FE1A85EC53ull, ~n};
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      h[l] = (h[l] ^ w) * kMul;
      h[l] ^= h[l] >> 29;
    }
  }
  uint64_t r = h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7);
  for (; i < n; ++i) r = (r ^ p[i]) * kMul;
  return r ^ (r >> 31);
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device) {
    PV_CUDA_CHECK(cudaSetDevice(device_));
    PV_CUDA_CHECK(cudaFree(nullptr));  // create the context now, not inside the first op
  }

  ~CudaBackend() override {
    // Destructors must not throw: release what we own and ignore late errors.
    for (auto& [key, w] : weights_) cudaFree(const_cast<void*>(w.device_data));
    for (void* p : buffers_) cudaFree(p);
    cudaFree(tokens_);
    cudaFree(scratch_);
    cudaFree(act_scratch_);
  }

  std::string_view name() const override { return "cuda"; }

  std::string device_description() const override {
    cudaDeviceProp prop{};
    int driver = 0, runtime = 0;
    PV_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    PV_CUDA_CHECK(cudaDriverGetVersion(&driver));
    PV_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    auto ver = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
    return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
           std::to_string(prop.minor) + ", " + std::to_string(prop.totalGlobalMem >> 20) +
           " MiB, driver CUDA " + ver(driver) + ", runtime " + ver(runtime) + ")";
  }

  float* alloc(size_t n) override {
    forget_codes();  // the zero fill writes device memory the codes may have come from
    void* p = nullptr;
    PV_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(float)));
    PV_CUDA_CHECK(cudaMemset(p, 0, std::max<size_t>(n, 1) * sizeof(float)));
    buffers_.push_back(p);
    return static_cast<float*>(p);
  }

  void free(float* p) override {
    if (p == nullptr) return;
    forget_codes();
    for (size_t i = 0; i < buffers_.size(); ++i) {
      if (buffers_[i] == p) {
        buffers_[i] = buffers_.back();
        buffers_.pop_back();
        PV_CUDA_CHECK(cudaFree(p));
        return;
      }
    }
    throw std::invalid_argument("cuda backend: free() of a pointer this backend did not allocate");
  }

  void upload(float* dst, const float* host, size_t n) override {
    wrote(dst, n);
    PV_CUDA_CHECK(cudaMemcpy(dst, host, n * sizeof(float), cudaMemcpyHostToDevice));
  }
  void download(float* host, const float* src, size_t n) override {
    PV_CUDA_CHECK(cudaMemcpy(host, src, n * sizeof(float), cudaMemcpyDeviceToHost));
  }
  void copy(float* dst, const float* src, size_t n) override {
    wrote(dst, n);
    PV_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice));
  }
  void synchronize() override { PV_CUDA_CHECK(cudaDeviceSynchronize()); }

  const Weight& prepare_weight(const TensorView& view) override {
    // The device copy is found by the host bytes it mirrors, not by their address alone:
    // a model freed and the next one mapped at the same address with tensors of the same
    // sizes (an F32 GGUF and its HF directory) must not be served the first one's weights.
    const uint64_t hash = mutant::planted(mutant::Bug::CudaWeightCacheByAddress)
                              ? 0
                              : bytes_hash(view.data, view.nbytes);
    const auto key = std::make_tuple(view.data, view.nbytes, hash);
    if (auto it = weights_.find(key); it != weights_.end()) return it->second;
    if (view.rows < 0 || view.cols < 0 || view.data == nullptr)
      throw std::invalid_argument("cuda backend: weight '" + view.name + "' has no data");
    const size_t expect = row_bytes(view.type, view.cols) * static_cast<size_t>(view.rows);
    if (view.nbytes < expect)
      throw std::invalid_argument("cuda backend: weight '" + view.name + "' holds " +
                                  std::to_string(view.nbytes) + " bytes, its shape needs " +
                                  std::to_string(expect));
    void* d = nullptr;
    PV_CUDA_CHECK(cudaMalloc(&d, std::max<size_t>(expect, 1)));
    PV_CUDA_CHECK(cudaMemcpy(d, view.data, expect, cudaMemcpyHostToDevice));
    Weight w;
    w.view = view;
    w.device_data = d;
    return weights_.emplace(key, std::move(w)).first->second;
  }

  void embed(const Weight& w, const int32_t* tokens, int T, float* out) override {
    for (int t = 0; t < T; ++t)
      if (tokens[t] < 0 || tokens[t] >= w.view.rows)
        throw std::out_of_range("cuda embed: token id " + std::to_string(tokens[t]) +
                                " at position " + std::to_string(t) + " outside [0, " +
                                std::to_string(w.view.rows) + ") of '" + w.view.name + "'");
    ensure(&tokens_, &tokens_cap_, static_cast<size_t>(T) * sizeof(int32_t));
    PV_CUDA_CHECK(cudaMemcpy(tokens_, tokens, static_cast<size_t>(T) * sizeof(int32_t),
                             cudaMemcpyHostToDevice));
    wrote(out, static_cast<size_t>(T) * static_cast<size_t>(w.view.cols));
    cuda::launch_embed(dev(w), static_cast<const int32_t*>(tokens_), T, out);
  }

  void matmul(const Weight& w, const float* x, int T, float* y) override {
    const size_t x_count = static_cast<size_t>(T) * static_cast<size_t>(w.view.cols);
    if (reinterpret_cast<uintptr_t>(x) % 16 != 0) {
      // Activations sliced at odd offsets (e.g. one head of q) are staged to keep the
      // kernels' 16-byte vector loads legal.
      wrote(static_cast<const float*>(scratch_), scratch_cap_ / sizeof(float));
      ensure(&scratch_, &scratch_cap_, x_count * sizeof(float));
      PV_CUDA_CHECK(cudaMemcpy(scratch_, x, x_count * sizeof(float), cudaMemcpyDeviceToDevice));
      x = static_cast<const float*>(scratch_);
    }
    const DeviceMatrix& m = dev(w);
    const size_t y_count = static_cast<size_t>(T) * static_cast<size_t>(w.view.rows);
    wrote(y, y_count);  // before: if the launch fails part way, y may be half written
    const CodesOf want{x, x_count, T, cuda::act_block_values(m.type)};
    if (want.block > 0 &&
        !ensure(&act_scratch_, &act_scratch_cap_, cuda::act_int8_scratch_bytes(m, T)))
      forget_codes();  // reallocated: it holds nobody's codes
    const bool ready = want.block > 0 && codes_of_ == want;
    // Float weights leave the scratch alone; a block-weight matmul rounds x into it.
    if (want.block > 0 && !ready) forget_codes();  // until the rounding has been launched
    cuda::launch_matmul(m, x, T, act_scratch_, ready, y);
    if (want.block > 0 && m.rows > 0 && m.cols > 0 && T > 0) codes_of_ = want;  // it ran
    wrote(y, y_count);  // after: the codes of an x this matmul wrote over are stale
  }

  void add_bias(float* y, const Weight& bias, int T) override {
    wrote(y, static_cast<size_t>(T) * static_cast<size_t>(bias.view.numel()));
    cuda::launch_add_bias(y, dev(bias), T);
  }
  void rmsnorm(const float* x, const Weight& w, int T, int n, float eps, float* y) override {
    if (w.view.numel() != n)
      throw std::invalid_argument("cuda rmsnorm: weight '" + w.view.name + "' has " +
                                  std::to_string(w.view.numel()) + " values, rows have " +
                                  std::to_string(n));
    wrote(y, static_cast<size_t>(T) * static_cast<size_t>(n));
    cuda::launch_rmsnorm(x, dev(w), T, n, eps, y);
  }
  void rope(float* x, int T, int n_heads, int head_dim, int pos0, float theta,
            RopeStyle style) override {
    wrote(x, static_cast<size_t>(T) * n_heads * head_dim);
    if (mutant::planted(mutant::Bug::CudaRopePairing))
      style = style == RopeStyle::HalfSplit ? RopeStyle::Interleaved : RopeStyle::HalfSplit;
    cuda::launch_rope(x, T, n_heads, head_dim, pos0, theta, style);
  }
  void rope_table(float* x, int T, int n_heads, int head_dim, int pos0, const float* inv_freq,
                  float attention_factor, RopeStyle style) override {
    wrote(x, static_cast<size_t>(T) * n_heads * head_dim);
    if (mutant::planted(mutant::Bug::CudaRopePairing))
      style = style == RopeStyle::HalfSplit ? RopeStyle::Interleaved : RopeStyle::HalfSplit;
    cuda::launch_rope_table(x, T, n_heads, head_dim, pos0, inv_freq, attention_factor, style);
  }
  void attention(const float* q, const float* k_cache, const float* v_cache,
                 const AttentionShape& shape, int T, int pos0, float* out, float* scores,
                 float* probs) override {
    const size_t per_head = static_cast<size_t>(T) * static_cast<size_t>(pos0 + T);
    wrote(out, static_cast<size_t>(T) * shape.n_heads * shape.head_dim);
    wrote(scores, per_head * shape.n_heads);
    wrote(probs, per_head * shape.n_heads);
    cuda::launch_attention(q, k_cache, v_cache, shape, T, pos0, out, scores, probs);
  }
  void add(float* x, const float* y, size_t n) override {
    wrote(x, n);
    cuda::launch_add(x, y, n);
  }
  void silu(const float* x, size_t n, float* y) override {
    wrote(y, n);
    cuda::launch_silu(x, n, y);
  }
  void mul(const float* a, const float* b, size_t n, float* y) override {
    wrote(y, n);
    cuda::launch_mul(a, b, n, y);
  }
  void softmax(float* x, int rows, int n) override {
    wrote(x, static_cast<size_t>(rows) * static_cast<size_t>(n));
    cuda::launch_softmax(x, rows, n);
  }

 private:
  static DeviceMatrix dev(const Weight& w) {
    if (w.device_data == nullptr)
      throw std::invalid_argument("cuda backend: weight '" + w.view.name +
                                  "' was not prepared by this backend");
    DeviceMatrix m;
    m.type = w.view.type;
    m.data = static_cast<const uint8_t*>(w.device_data);
    m.rows = w.view.rows;
    m.cols = w.view.cols;
    m.row_bytes = row_bytes(w.view.type, w.view.cols);
    return m;
  }

  // Grows *p to at least `bytes`; false when it had to reallocate (contents lost).
  static bool ensure(void** p, size_t* cap, size_t bytes) {
    if (*cap >= bytes) return true;
    if (*p != nullptr) PV_CUDA_CHECK(cudaFree(*p));
    *p = nullptr;
    *cap = 0;
    PV_CUDA_CHECK(cudaMalloc(p, bytes));
    *cap = bytes;
    return false;
  }

  // Whose int8 codes act_scratch_ holds: x's first `count` floats (T rows), rounded in
  // activation blocks of `block` values. block == 0: nobody's.
  struct CodesOf {
    const float* x = nullptr;
    size_t count = 0;
    int T = 0;
    int block = 0;
    bool operator==(const CodesOf& o) const {
      return x == o.x && count == o.count && T == o.T && block == o.block;
    }
  };
  void forget_codes() { codes_of_ = CodesOf{}; }
  // An op is about to write floats [p, p + n): the codes of an x it overlaps are stale.
  void wrote(const float* p, size_t n) {
    if (p == nullptr || n == 0 || codes_of_.block == 0) return;
    const auto lo = reinterpret_cast<uintptr_t>(p), hi = lo + n * sizeof(float);
    const auto x_lo = reinterpret_cast<uintptr_t>(codes_of_.x);
    const auto x_hi = x_lo + codes_of_.count * sizeof(float);
    if (lo < x_hi && x_lo < hi) forget_codes();
  }

  int device_;
  // (host address, bytes, bytes_hash) -> device copy. A stale entry whose host bytes
  // changed is kept until the backend goes (a Forward built on it may still hold it).
  std::map<std::tuple<const void*, size_t, uint64_t>, Weight> weights_;
  std::vector<void*> buffers_;
  void* tokens_ = nullptr;
  size_t tokens_cap_ = 0;
  void* scratch_ = nullptr;
  size_t scratch_cap_ = 0;
  void* act_scratch_ = nullptr;  // int8 activation codes + scales for block-weight matmuls
  size_t act_scratch_cap_ = 0;
  CodesOf codes_of_;
};

}  // namespace

bool cuda_device_available(std::string* why) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (why != nullptr)
      *why = std::string("no usable CUDA device: ") + cudaGetErrorName(err) + " (" +
             cudaGetErrorString(err) + ")";
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return false;
  }
  if (count == 0) {
    if (why != nullptr) *why = "no CUDA device found";
    return false;
  }
  return true;
}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  return std::make_unique<CudaBackend>(device);
}

}  // namespace pv::kernels
