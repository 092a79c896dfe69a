// CUDA benchmarks (Google Benchmark, timed with CUDA events, manual time):
//   copy/d2d                device-to-device copy rate (read + write bytes): the ceiling
//   matvec/<type>/<rows>x<cols>   batch-1 matvec over weights rotated through enough
//                           copies (>= 4x L2) that none is served from L2, timed over a
//                           stream of >= 64 back-to-back matvecs as a decode issues them
//                           (so the host's latency to the first launch is not charged to
//                           each); GB/s of weight bytes and the ratio to the copy rate
//                           measured in this process (1 GiB: the ceiling), and to a
//                           stream of copies each moving as many bytes as the matrix
//                           holds, and to a plain streaming read kernel reading the same
//                           rotated weight bytes (the read ceiling at that size). x is
//                           the same for every call, so block-weight
//                           matvecs reuse its int8 codes, as Q/K/V and gate/up do.
//   matvec_rounding_x/...   the same with x changing between calls (two buffers in
//                           turn): every matvec first rounds x to int8 codes, as the
//                           attention-output and down projections do
//   decode/<model>          batch-1 decode tokens/s of a random-weight Q4_K model through
//                           the Backend ops, beside the weight-bytes-per-token roofline
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/bench/read_stream.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/quant/ggml_types.h"

namespace {

using pv::kernels::Backend;
using pv::kernels::GgmlType;
using pv::kernels::TensorView;
using pv::kernels::Weight;

// One backend per benchmark: its weights (and device memory) go with it, and no weight
// cached by host address outlives the host buffer it was keyed on.
thread_local Backend* g_backend = nullptr;
Backend& backend() { return *g_backend; }
struct ScopedBackend {
  std::unique_ptr<Backend> be = pv::kernels::make_cuda_backend(0);
  ScopedBackend() { g_backend = be.get(); }
  ~ScopedBackend() { g_backend = nullptr; }
};

// xorshift: fast enough to fill gigabytes of random weights.
struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

void put_half(uint8_t* p, float v) {
  const _Float16 h = static_cast<_Float16>(v);
  std::memcpy(p, &h, 2);
}

// Random bytes with finite, small scale fields (so no NaN/Inf reaches the arithmetic).
std::vector<uint8_t> random_weight(GgmlType type, int64_t rows, int64_t cols, uint64_t seed) {
  const size_t rb = pv::kernels::row_bytes(type, cols);
  std::vector<uint8_t> b(rb * rows);
  Rng r{seed * 0x9E3779B97F4A7C15ull + 1};
  for (size_t i = 0; i + 8 <= b.size(); i += 8) {
    const uint64_t v = r.next();
    std::memcpy(&b[i], &v, 8);
  }
  const size_t n = static_cast<size_t>(rows * cols);
  switch (type) {
    case GgmlType::F32:
      for (size_t i = 0; i < n; ++i) {
        const float v = static_cast<float>(static_cast<int32_t>(r.next())) * 4.6e-10f;
        std::memcpy(&b[4 * i], &v, 4);
      }
      break;
    case GgmlType::F16:
      for (size_t i = 0; i < n; ++i)
        put_half(&b[2 * i], static_cast<float>(static_cast<int32_t>(r.next())) * 4.6e-10f);
      break;
    case GgmlType::BF16:
      for (size_t i = 0; i < n; ++i) b[2 * i + 1] = static_cast<uint8_t>(0x3c + (b[2 * i + 1] & 1));
      break;
    case GgmlType::Q8_0:
      for (size_t k = 0; k < n / 32; ++k) put_half(&b[34 * k], 0.01f);
      break;
    case GgmlType::Q4_0:
      for (size_t k = 0; k < n / 32; ++k) put_half(&b[18 * k], 0.05f);
      break;
    case GgmlType::Q4_K:
      for (size_t k = 0; k < n / 256; ++k) {
        put_half(&b[144 * k], 0.01f);
        put_half(&b[144 * k + 2], 0.01f);
      }
      break;
    case GgmlType::Q6_K:
      for (size_t k = 0; k < n / 256; ++k) put_half(&b[210 * k + 208], 0.001f);
      break;
    // The other block types: the f16 scale (and min) fields at their offsets.
    case GgmlType::Q4_1:
    case GgmlType::Q5_1: {
      const size_t bb = type == GgmlType::Q4_1 ? 20 : 24;
      for (size_t k = 0; k < n / 32; ++k) {
        put_half(&b[bb * k], 0.05f);
        put_half(&b[bb * k + 2], -0.3f);
      }
      break;
    }
    case GgmlType::Q5_0:
      for (size_t k = 0; k < n / 32; ++k) put_half(&b[22 * k], 0.03f);
      break;
    case GgmlType::IQ4_NL:
      for (size_t k = 0; k < n / 32; ++k) put_half(&b[18 * k], 0.001f);
      break;
    case GgmlType::Q2_K:
      for (size_t k = 0; k < n / 256; ++k) {
        put_half(&b[84 * k + 80], 0.01f);
        put_half(&b[84 * k + 82], 0.01f);
      }
      break;
    case GgmlType::Q3_K:
      for (size_t k = 0; k < n / 256; ++k) put_half(&b[110 * k + 108], 0.001f);
      break;
    case GgmlType::Q5_K:
      for (size_t k = 0; k < n / 256; ++k) {
        put_half(&b[176 * k], 0.001f);
        put_half(&b[176 * k + 2], 0.001f);
      }
      break;
    case GgmlType::IQ4_XS:
      for (size_t k = 0; k < n / 256; ++k) put_half(&b[136 * k], 0.0001f);
      break;
  }
  return b;
}

// GCC 12 -O3 flags "literal" + std::string with a false -Wrestrict; build names by append.
std::string label(const char* prefix, uint64_t i) {
  std::string s(prefix);
  s.append(std::to_string(i));
  return s;
}

const Weight& prepare(std::vector<uint8_t>& bytes, GgmlType type, int64_t rows, int64_t cols,
                      const std::string& name) {
  TensorView v;
  v.name = name;
  v.type = type;
  v.rows = rows;
  v.cols = cols;
  v.data = bytes.data();
  v.nbytes = bytes.size();
  return backend().prepare_weight(v);
}

class EventTimer {
 public:
  EventTimer() {
    PV_CUDA_CHECK(cudaEventCreate(&a_));
    PV_CUDA_CHECK(cudaEventCreate(&b_));
  }
  ~EventTimer() {
    cudaEventDestroy(a_);
    cudaEventDestroy(b_);
  }
  void start() {
    PV_CUDA_CHECK(cudaEventRecord(a_));
    host_start_ = std::chrono::steady_clock::now();
  }
  // GPU seconds between start() and now; host_seconds() then says how long the host took
  // to enqueue that work (close to the GPU time: the host's launches were the bound).
  double stop_seconds() {
    host_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - host_start_).count();
    PV_CUDA_CHECK(cudaEventRecord(b_));
    PV_CUDA_CHECK(cudaEventSynchronize(b_));
    float ms = 0;
    PV_CUDA_CHECK(cudaEventElapsedTime(&ms, a_, b_));
    return ms / 1e3;
  }

  double host_seconds() const { return host_; }

 private:
  cudaEvent_t a_{}, b_{};
  std::chrono::steady_clock::time_point host_start_;
  double host_ = 0;
};

int l2_bytes() {
  int l2 = 0;
  PV_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
  return l2;
}

// Device-to-device copy rate for copies of `bytes` (read + write), median of 20 timings of
// `burst` back-to-back copies. Small copies pay the fixed cost of one operation on the
// GPU (ramp-up, drain) as a matvec of the same size does; the 1 GiB ceiling hides it. A
// burst rotates through chunks totalling >= 4x L2 (copy k reads chunk k, writes chunk
// k + n/2), so, like the rotated matvec weights, no copy is served from L2.
double copy_bandwidth_at(size_t bytes, int burst = 1) {
  const size_t n =
      burst == 1 ? 2 : std::max<size_t>(4, 2 * ((4 * size_t(l2_bytes()) + bytes - 1) / bytes));
  uint8_t* pool = nullptr;
  PV_CUDA_CHECK(cudaMalloc(&pool, n * bytes));
  PV_CUDA_CHECK(cudaMemset(pool, 1, n * bytes));
  EventTimer t;
  std::vector<double> s;
  size_t k = 0;
  for (int i = 0; i < 20; ++i) {
    t.start();
    for (int b = 0; b < burst; ++b, ++k)
      PV_CUDA_CHECK(cudaMemcpyAsync(pool + (k + n / 2) % n * bytes, pool + k % n * bytes, bytes,
                                    cudaMemcpyDeviceToDevice));
    s.push_back(t.stop_seconds() / burst);
  }
  std::sort(s.begin(), s.end());
  PV_CUDA_CHECK(cudaFree(pool));
  return 2.0 * bytes / s[s.size() / 2];
}

// The 1 GiB copy rate, measured once per process so every ratio in a run shares one
// ceiling.
double copy_bandwidth() {
  static const double bw = copy_bandwidth_at(size_t{1} << 30);
  return bw;
}

void BM_CopyD2D(benchmark::State& state) {
  const size_t bytes = size_t{1} << 30;
  void *src = nullptr, *dst = nullptr;
  PV_CUDA_CHECK(cudaMalloc(&src, bytes));
  PV_CUDA_CHECK(cudaMalloc(&dst, bytes));
  PV_CUDA_CHECK(cudaMemset(src, 1, bytes));
  EventTimer t;
  for (auto _ : state) {
    t.start();
    PV_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice));
    state.SetIterationTime(t.stop_seconds());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 2 * bytes));
  state.counters["copy_GBps"] = copy_bandwidth() / 1e9;
  PV_CUDA_CHECK(cudaFree(src));
  PV_CUDA_CHECK(cudaFree(dst));
}

constexpr int kStream = 64;  // matvecs (or copies) per timing, at least

void BM_Matvec(benchmark::State& state, GgmlType type, int64_t rows, int64_t cols,
               bool rounding_x) {
  ScopedBackend scoped;
  const size_t wbytes = pv::kernels::row_bytes(type, cols) * rows;
  const int copies =
      static_cast<int>(std::max<size_t>(2, (4 * size_t(l2_bytes()) + wbytes - 1) / wbytes));
  std::vector<std::vector<uint8_t>> host(copies);
  std::vector<const Weight*> w(copies);
  for (int i = 0; i < copies; ++i) {
    host[i] = random_weight(type, rows, cols, 1 + i);
    w[i] = &prepare(host[i], type, rows, cols, label("w", i));
  }
  Backend& be = backend();
  float* x[2] = {be.alloc(cols), be.alloc(cols)};
  float* y = be.alloc(rows);
  std::vector<float> xh(cols);
  for (int64_t c = 0; c < cols; ++c) xh[c] = 0.001f * static_cast<float>((c * 7919) % 2001 - 1000);
  be.upload(x[0], xh.data(), cols);
  be.upload(x[1], xh.data(), cols);
  const int rounds = (kStream + copies - 1) / copies;
  int turn = 0;  // which x: alternating makes every call round x again
  auto pass = [&] {
    for (int i = 0; i < copies; ++i) {
      be.matmul(*w[i], x[turn], 1, y);
      if (rounding_x) turn ^= 1;
    }
  };
  pass();  // warm-up
  EventTimer t;
  double enqueue = 0;
  for (auto _ : state) {
    t.start();
    for (int r = 0; r < rounds; ++r) pass();
    state.SetIterationTime(t.stop_seconds() / (rounds * copies));  // time of one matvec
    enqueue += t.host_seconds() / (rounds * copies);
  }
  state.counters["host_enqueue_us"] = 1e6 * enqueue / static_cast<double>(state.iterations());
  const double bw = copy_bandwidth();
  // Copies moving the weight bytes (read wbytes/2, write wbytes/2), back to back and
  // rotated out of L2: the same-size context.
  const double bw_same = copy_bandwidth_at(wbytes / 2, kStream);
  std::vector<const void*> bufs;
  for (const Weight* wi : w) bufs.push_back(wi->device_data);
  const double bw_read = pv::kernels::cuda::read_stream_bandwidth(bufs, wbytes, rounds * copies);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wbytes));
  state.counters["weight_MB"] = wbytes / 1e6;
  state.counters["rotated_copies"] = copies;
  state.counters["per_timing"] = rounds * copies;
  state.counters["weight_GBps"] = benchmark::Counter(static_cast<double>(wbytes) / 1e9,
                                                     benchmark::Counter::kIsIterationInvariantRate);
  state.counters["copy_GBps"] = bw / 1e9;
  state.counters["ratio_vs_copy"] = benchmark::Counter(
      static_cast<double>(wbytes) / bw, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["same_size_copy_GBps"] = bw_same / 1e9;
  state.counters["ratio_vs_same_size_copy"] = benchmark::Counter(
      static_cast<double>(wbytes) / bw_same, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["same_size_read_GBps"] = bw_read / 1e9;
  state.counters["ratio_vs_same_size_read"] = benchmark::Counter(
      static_cast<double>(wbytes) / bw_read, benchmark::Counter::kIsIterationInvariantRate);
  be.free(x[0]);
  be.free(x[1]);
  be.free(y);
}

struct ModelShape {
  const char* name;
  int hidden, layers, heads, kv_heads, ffn, vocab;
};

// Q4_K where a tensor's rows are multiples of 256 values; otherwise Q8_0, as llama.cpp's
// Q4_K_M falls back for such tensors (Qwen2.5-0.5B's hidden 896 is 3.5 super-blocks).
GgmlType q4k_or_fallback(int64_t cols) { return cols % 256 == 0 ? GgmlType::Q4_K : GgmlType::Q8_0; }

void BM_Decode(benchmark::State& state, ModelShape m) {
  ScopedBackend scoped;
  Backend& be = backend();
  const int D = m.hidden / m.heads, qd = m.heads * D, kvd = m.kv_heads * D, ctx = 256;
  std::vector<std::vector<uint8_t>> host;
  host.reserve(16 * m.layers + 8);
  size_t weight_bytes = 0;
  uint64_t seed = 100;
  auto W = [&](int64_t rows, int64_t cols, bool count = true) {
    const GgmlType t = q4k_or_fallback(cols);
    host.push_back(random_weight(t, rows, cols, seed++));
    if (count) weight_bytes += host.back().size();
    return &prepare(host.back(), t, rows, cols, label("w", seed));
  };
  auto F = [&](int64_t n, float value) {
    host.emplace_back(n * 4);
    for (int64_t i = 0; i < n; ++i) std::memcpy(&host.back()[4 * i], &value, 4);
    return &prepare(host.back(), GgmlType::F32, 1, n, label("f", seed++));
  };
  struct L {
    const Weight *an, *wq, *wk, *wv, *bq, *bk, *bv, *wo, *fn, *wg, *wu, *wd;
  };
  std::vector<L> layers;
  for (int l = 0; l < m.layers; ++l)
    layers.push_back({F(m.hidden, 1.f), W(qd, m.hidden), W(kvd, m.hidden), W(kvd, m.hidden),
                      F(qd, 0.01f), F(kvd, 0.01f), F(kvd, 0.01f), W(m.hidden, qd), F(m.hidden, 1.f),
                      W(m.ffn, m.hidden), W(m.ffn, m.hidden), W(m.hidden, m.ffn)});
  const Weight* embd = W(m.vocab, m.hidden);  // tied lm_head: read once per token as lm_head
  const Weight* onorm = F(m.hidden, 1.f);
  float *x = be.alloc(m.hidden), *n = be.alloc(m.hidden), *q = be.alloc(qd), *att = be.alloc(qd),
        *o = be.alloc(m.hidden), *g = be.alloc(m.ffn), *u = be.alloc(m.ffn),
        *logits = be.alloc(m.vocab);
  std::vector<float*> kc(m.layers), vc(m.layers);
  for (int l = 0; l < m.layers; ++l) {
    kc[l] = be.alloc(static_cast<size_t>(ctx) * kvd);
    vc[l] = be.alloc(static_cast<size_t>(ctx) * kvd);
  }
  int pos = 0;
  // Host seconds spent enqueueing the ops after the embedding: the embedding's copy of the
  // token from pageable host memory waits for the GPU (a stream sync), so it is left out.
  double enqueue = 0;
  auto token = [&](int32_t tok) {
    be.embed(*embd, &tok, 1, x);
    const auto t0 = std::chrono::steady_clock::now();
    for (int l = 0; l < m.layers; ++l) {
      const L& w = layers[l];
      float* kr = kc[l] + static_cast<size_t>(pos) * kvd;
      float* vr = vc[l] + static_cast<size_t>(pos) * kvd;
      be.rmsnorm(x, *w.an, 1, m.hidden, 1e-6f, n);
      be.matmul(*w.wq, n, 1, q);
      be.add_bias(q, *w.bq, 1);
      be.matmul(*w.wk, n, 1, kr);
      be.add_bias(kr, *w.bk, 1);
      be.matmul(*w.wv, n, 1, vr);
      be.add_bias(vr, *w.bv, 1);
      be.rope(q, 1, m.heads, D, pos, 1e6f, pv::kernels::RopeStyle::HalfSplit);
      be.rope(kr, 1, m.kv_heads, D, pos, 1e6f, pv::kernels::RopeStyle::HalfSplit);
      be.attention(q, kc[l], vc[l], {m.heads, m.kv_heads, D}, 1, pos, att, nullptr, nullptr);
      be.matmul(*w.wo, att, 1, o);
      be.add(x, o, m.hidden);
      be.rmsnorm(x, *w.fn, 1, m.hidden, 1e-6f, n);
      be.matmul(*w.wg, n, 1, g);
      be.matmul(*w.wu, n, 1, u);
      be.silu(g, m.ffn, g);
      be.mul(g, u, m.ffn, g);
      be.matmul(*w.wd, g, 1, o);
      be.add(x, o, m.hidden);
    }
    be.rmsnorm(x, *onorm, 1, m.hidden, 1e-6f, n);
    be.matmul(*embd, n, 1, logits);
    enqueue += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    pos = (pos + 1) % ctx;
  };
  for (int i = 0; i < 3; ++i) token(i);
  be.synchronize();
  EventTimer t;
  enqueue = 0;
  for (auto _ : state) {
    t.start();
    for (int i = 0; i < 16; ++i) token(17 + i);
    state.SetIterationTime(t.stop_seconds() / 16);
  }
  // Host time to enqueue one token's launches: when it is close to the GPU time per
  // token, decode is launch-bound (CUDA graphs, fewer launches), not bandwidth-bound.
  state.counters["host_enqueue_us"] =
      1e6 * enqueue / (16.0 * static_cast<double>(state.iterations()));
  const double bw = copy_bandwidth();
  state.counters["weight_MB_per_token"] = weight_bytes / 1e6;
  state.counters["tok_per_s"] =
      benchmark::Counter(1, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["roofline_tok_per_s"] = bw / weight_bytes;
  state.counters["weight_GBps"] =
      benchmark::Counter(weight_bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ratio_vs_roofline"] =
      benchmark::Counter(weight_bytes / bw, benchmark::Counter::kIsIterationInvariantRate);
  for (float* p : {x, n, q, att, o, g, u, logits}) be.free(p);
  for (int l = 0; l < m.layers; ++l) {
    be.free(kc[l]);
    be.free(vc[l]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string why;
  if (!pv::kernels::cuda_device_available(&why)) {
    std::printf("pv_cuda_bench: fixture-absent: cuda-device (%s)\n", why.c_str());
    return 0;
  }
  std::printf("device: %s\n", pv::kernels::make_cuda_backend(0)->device_description().c_str());
  benchmark::RegisterBenchmark("copy/d2d_1GiB", BM_CopyD2D)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
  struct Shape {
    int64_t rows, cols;
  };
  auto reg = [](GgmlType t, Shape s, bool rounding_x = false) {
    std::string name(rounding_x ? "matvec_rounding_x/" : "matvec/");
    name.append(pv::kernels::type_name(t)).append("/").append(std::to_string(s.rows));
    name.append("x").append(std::to_string(s.cols));
    benchmark::RegisterBenchmark(name.c_str(), BM_Matvec, t, s.rows, s.cols, rounding_x)
        ->UseManualTime()
        ->Iterations(20)
        ->Unit(benchmark::kMicrosecond);
  };
  for (GgmlType t :
       {GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::Q6_K, GgmlType::Q4_0, GgmlType::F16,
        GgmlType::BF16, GgmlType::F32, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
        GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q5_K, GgmlType::IQ4_XS})
    reg(t, {4096, 14336});
  // Qwen2.5-Coder-7B matvec shapes: q/o, gate/up, down, lm_head.
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0})
    for (Shape s : {Shape{3584, 3584}, Shape{18944, 3584}, Shape{3584, 18944}, Shape{152064, 3584},
                    Shape{14336, 4096}})
      reg(t, s);
  // The target shapes once more, with x rounded on every call.
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q8_0})
    for (Shape s : {Shape{4096, 14336}, Shape{18944, 3584}, Shape{3584, 18944}}) reg(t, s, true);
  benchmark::RegisterBenchmark("decode/qwen2.5-0.5B-shape-Q4_K", BM_Decode,
                               ModelShape{"0.5B", 896, 24, 14, 2, 4864, 151936})
      ->UseManualTime()
      ->Iterations(8)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("decode/qwen2.5-7B-shape-Q4_K", BM_Decode,
                               ModelShape{"7B", 3584, 28, 28, 4, 18944, 152064})
      ->UseManualTime()
      ->Iterations(4)
      ->Unit(benchmark::kMicrosecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
