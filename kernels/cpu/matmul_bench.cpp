// Matvec (T = 1) throughput per weight type at the 7B FFN shapes, next to memory-copy and
// memory-read baselines measured in the same run. Weights are rotated over enough distinct
// matrices that their total exceeds the last-level cache several times over, so every
// iteration streams its weights from DRAM the way a decode step does.
//
// Counters: weight_GBps = weight bytes / s (the matvec's memory traffic; activations are
// ~16-56 KB and stay in cache); copy benchmarks report bytes copied / s and read benchmarks
// bytes read / s. CPU time is the whole process's (all pool threads), so bytes / CPU time is
// a per-core efficiency that a machine shared with other jobs distorts less than wall time.
// kernels/cpu/matmul_bench_report.py turns a JSON run into the ratio table.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/quant/ggml_types.h"
#include "kernels/quant/half.h"
#include "kernels/quant/quant_blocks.h"

namespace {

using pv::kernels::GgmlType;
using pv::kernels::TensorView;
using pv::kernels::cpu::ThreadPool;

size_t llc_bytes() {
  size_t best = 0;
  for (int idx = 0; idx < 8; ++idx) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(idx) + "/size");
    std::string s;
    if (!(f >> s) || s.empty()) continue;
    size_t v = std::stoull(s);
    if (s.back() == 'K') v <<= 10;
    if (s.back() == 'M') v <<= 20;
    best = std::max(best, v);
  }
  return best > 0 ? best : size_t{32} << 20;
}

// Total bytes the rotated buffers of one benchmark must exceed: 3x the LLC (>= 96 MB).
size_t rotation_bytes() { return std::max<size_t>(3 * llc_bytes(), size_t{96} << 20); }

ThreadPool& pool(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& p = pools[threads];
  if (!p) p = std::make_unique<ThreadPool>(threads);
  return *p;
}

// Plausible block contents: random quant bytes, scale fields set to small normal halves,
// float weights drawn from N(0, 0.02). The speed of the kernels does not depend on values;
// these keep them finite (no NaN/denormal slow paths in the float types).
void fill_weights(GgmlType type, uint8_t* p, size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    const uint64_t v = rng();
    std::memcpy(p + i, &v, 8);
  }
  using namespace pv::kernels;
  const uint16_t small = fp32_to_fp16(0.01f);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  switch (type) {
    case GgmlType::F32:
      for (size_t i = 0; i < bytes / 4; ++i) reinterpret_cast<float*>(p)[i] = nd(rng);
      break;
    case GgmlType::F16:
      for (size_t i = 0; i < bytes / 2; ++i)
        reinterpret_cast<uint16_t*>(p)[i] = fp32_to_fp16(nd(rng));
      break;
    case GgmlType::BF16:
      for (size_t i = 0; i < bytes / 2; ++i)
        reinterpret_cast<uint16_t*>(p)[i] = fp32_to_bf16(nd(rng));
      break;
    case GgmlType::Q8_0:
      for (size_t i = 0; i < bytes / 34; ++i) reinterpret_cast<BlockQ8_0*>(p)[i].d = small;
      break;
    case GgmlType::Q4_0:
      for (size_t i = 0; i < bytes / 18; ++i) reinterpret_cast<BlockQ4_0*>(p)[i].d = small;
      break;
    case GgmlType::Q4_K:
      for (size_t i = 0; i < bytes / 144; ++i) {
        reinterpret_cast<BlockQ4_K*>(p)[i].d = small;
        reinterpret_cast<BlockQ4_K*>(p)[i].dmin = small;
      }
      break;
    case GgmlType::Q6_K:
      for (size_t i = 0; i < bytes / 210; ++i) reinterpret_cast<BlockQ6_K*>(p)[i].d = small;
      break;
    default:
      throw std::invalid_argument("matmul bench: no random weights for type " +
                                  std::string(type_name(type)));
  }
}

struct Rotation {
  std::vector<std::unique_ptr<uint8_t[]>> buffers;
  size_t bytes = 0;
};

// One set of rotated matrices per (type, shape), built on first use and kept for the run.
const Rotation& weights(GgmlType type, int64_t rows, int64_t cols) {
  static std::map<std::tuple<int, int64_t, int64_t>, Rotation> cache;
  auto& r = cache[{static_cast<int>(type), rows, cols}];
  if (r.buffers.empty()) {
    r.bytes = static_cast<size_t>(rows) * pv::kernels::row_bytes(type, cols);
    const size_t count = std::max<size_t>(2, (rotation_bytes() + r.bytes - 1) / r.bytes);
    for (size_t i = 0; i < count; ++i) {
      r.buffers.emplace_back(new uint8_t[r.bytes]);
      fill_weights(type, r.buffers.back().get(), r.bytes, 1234 + i);
    }
  }
  return r;
}

void BM_Matvec(benchmark::State& state, GgmlType type, int64_t in, int64_t out, int T) {
  const int threads = static_cast<int>(state.range(0));
  const Rotation& rot = weights(type, out, in);
  std::vector<float> x(static_cast<size_t>(in) * T), y(static_cast<size_t>(out) * T);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  ThreadPool& tp = pool(threads);
  size_t next = 0;
  for (auto _ : state) {
    TensorView w{"bench", type, out, in, rot.buffers[next].get(), rot.bytes};
    pv::kernels::cpu::matmul(w, x.data(), T, y.data(), &tp);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = (next + 1) % rot.buffers.size();
  }
  state.counters["weight_GBps"] = benchmark::Counter(static_cast<double>(rot.bytes),
                                                     benchmark::Counter::kIsIterationInvariantRate,
                                                     benchmark::Counter::kIs1000);
  state.counters["matrices"] = static_cast<double>(rot.buffers.size());
  if (T > 1) {
    state.counters["tokens_per_s"] = benchmark::Counter(
        T, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  }
}

struct Buffers {
  std::unique_ptr<uint8_t[]> src, dst;
  size_t bytes;
};

const Buffers& copy_buffers() {
  static Buffers b = [] {
    const size_t bytes = rotation_bytes();
    Buffers r{std::unique_ptr<uint8_t[]>(new uint8_t[bytes]),
              std::unique_ptr<uint8_t[]>(new uint8_t[bytes]), bytes};
    std::memset(r.src.get(), 1, bytes);
    std::memset(r.dst.get(), 2, bytes);
    return r;
  }();
  return b;
}

// memcpy of 3x LLC split over the threads: bytes copied / s (each byte is read once and
// written once, so DRAM traffic is 2-3x this).
void BM_Memcpy(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const Buffers& b = copy_buffers();
  ThreadPool& tp = pool(threads);
  const int64_t chunks = 64;
  const size_t chunk = b.bytes / chunks;
  for (auto _ : state) {
    tp.parallel_for(chunks, [&](int64_t c0, int64_t c1) {
      std::memcpy(b.dst.get() + c0 * chunk, b.src.get() + c0 * chunk, (c1 - c0) * chunk);
    });
    benchmark::ClobberMemory();
  }
  state.counters["copy_GBps"] = benchmark::Counter(static_cast<double>(chunks * chunk),
                                                   benchmark::Counter::kIsIterationInvariantRate,
                                                   benchmark::Counter::kIs1000);
}

// Streaming read of 3x LLC (sum of 64-bit words): the read-bandwidth roofline of a matvec.
void BM_MemRead(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const Buffers& b = copy_buffers();
  ThreadPool& tp = pool(threads);
  const int64_t chunks = 64;
  const size_t words = b.bytes / chunks / 8;
  std::vector<uint64_t> sums(chunks);
  for (auto _ : state) {
    tp.parallel_for(chunks, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const auto* p = reinterpret_cast<const uint64_t*>(b.src.get()) + c * words;
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i < words; i += 4) {
          s0 += p[i];
          s1 += p[i + 1];
          s2 += p[i + 2];
          s3 += p[i + 3];
        }
        sums[c] = s0 + s1 + s2 + s3;
      }
    });
    benchmark::DoNotOptimize(sums.data());
  }
  state.counters["read_GBps"] = benchmark::Counter(static_cast<double>(chunks * words * 8),
                                                   benchmark::Counter::kIsIterationInvariantRate,
                                                   benchmark::Counter::kIs1000);
}

int register_benchmarks() {
  benchmark::RegisterBenchmark("Memcpy", BM_Memcpy)
      ->Arg(1)
      ->Arg(2)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("MemRead", BM_MemRead)
      ->Arg(1)
      ->Arg(2)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                            GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K};
  const std::pair<int64_t, int64_t> shapes[] = {{4096, 14336}, {14336, 4096}};  // (in, out)
  auto add = [](const std::string& prefix, GgmlType t, int64_t in, int64_t out, int T) {
    const std::string name = prefix + "/" + std::string(pv::kernels::type_name(t)) + "/in" +
                             std::to_string(in) + "_out" + std::to_string(out);
    benchmark::RegisterBenchmark(name.c_str(), BM_Matvec, t, in, out, T)
        ->ArgName("threads")
        ->Arg(1)
        ->Arg(2)
        ->UseRealTime()
        ->MeasureProcessCPUTime()
        ->Unit(benchmark::kMillisecond);
  };
  for (const auto& [in, out] : shapes) {
    for (GgmlType t : types) add("Matvec", t, in, out, 1);
  }
  // Qwen2.5-0.5B decode shapes (hidden 896, ffn 4864): small enough that thread hand-off
  // latency, not bandwidth, can dominate. 896 is not a multiple of 256, so the K-quants only
  // fit ffn_down (in 4864); the in-896 matrices use the 32-value types (as llama.cpp's
  // Q4_K_M files fall back for such rows).
  for (const auto& [in, out] : {std::pair<int64_t, int64_t>{896, 896}, {896, 4864}}) {
    for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0}) add("MatvecSmall", t, in, out, 1);
  }
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    add("MatvecSmall", t, 4864, 896, 1);
  }
  // Prefill: 16 tokens per call over the same weights (tokens_per_s counter).
  for (GgmlType t : {GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    add("Matmul16", t, 4096, 14336, 16);
  }
  return 0;
}

const int registered = register_benchmarks();

}  // namespace
