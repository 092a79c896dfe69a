// Decode throughput of a Qwen2.5-0.5B-shaped model with random weights (hidden 896, 24
// layers, 14 heads, 2 KV heads, head_dim 64, ffn 4864, vocab 151936, tied embeddings),
// at 1 and 2 threads, next to a memory-copy benchmark in the same run.
//
// Weight types, as llama.cpp's Q4_K_M does for this model: Q4_K needs rows that are a
// multiple of 256, and 896 is not, so every 896-wide matrix (q/k/v/o, gate, up) falls
// back to Q4_0 — the same 4.5 bits per weight as Q4_K — while ffn_down (4864 = 19*256
// wide) is Q4_K. The tied embedding / lm_head is Q8_0 (llama.cpp keeps output at higher
// precision; Q6_K is not legal at 896 either). The model is the model builder's
// (model/fixtures/synthetic_model.h) with random block bytes (valid blocks, small scales),
// not trained values: only the bytes read per token matter here.
//
// Counters: tokens_per_s, weight_GBps = weight bytes read per decode step x tokens/s, and
// for BM_MemcpyBandwidth copy_GBps = bytes copied per second (each byte read once and
// written once), over a 512 MiB buffer so neither side fits in the last-level cache.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/thread_pool.h"
#include "model/fixtures/synthetic_model.h"
#include "model/forward.h"
#include "model/generate.h"

namespace {

using pv::kernels::GgmlType;

pv::model::ModelConfig qwen25_05b_config() {
  pv::model::ModelConfig c;
  c.architecture = "qwen2";
  c.n_layers = 24;
  c.hidden = 896;
  c.n_heads = 14;
  c.n_kv_heads = 2;
  c.head_dim = 64;
  c.ffn = 4864;
  c.vocab = 151936;
  c.context_length = 32768;
  c.rms_eps = 1e-6f;
  c.rope_theta = 1000000.0f;
  c.tied_embeddings = true;
  c.qkv_bias = true;
  return c;
}

const pv::model::SyntheticModel& model_05b() {
  static const std::unique_ptr<pv::model::SyntheticModel> m = [] {
    pv::model::SyntheticTypes types;
    types.matrix = GgmlType::Q4_K;
    types.fallback = GgmlType::Q4_0;
    types.embedding = GgmlType::Q8_0;  // also the tied lm_head
    return pv::model::make_synthetic_model(qwen25_05b_config(), 20261122, types,
                                           pv::model::SyntheticFill::RandomBlocks);
  }();
  return *m;
}

// One decode step per iteration at positions 16 .. 16+kSteps (after a 16-token prefill),
// restarting the sequence when the window is used up (outside the timed region).
void BM_DecodeQwen25_05B_Q4K(benchmark::State& state) {
  const auto& m = model_05b();
  const int threads = static_cast<int>(state.range(0));
  constexpr int kPrompt = 16, kSteps = 64;
  pv::kernels::CpuBackend be(threads);
  pv::model::Forward f(m.config, m.weights, be, kPrompt + kSteps + 1);
  std::vector<int32_t> prompt(kPrompt);
  for (int i = 0; i < kPrompt; ++i) prompt[i] = 1000 + 37 * i;
  std::vector<float> logits(static_cast<size_t>(m.config.vocab));
  int32_t tok = 0;
  for (auto _ : state) {
    if (f.position() == 0 || f.position() >= kPrompt + kSteps) {
      state.PauseTiming();
      f.reset();
      f.eval(prompt.data(), kPrompt, logits.data(), nullptr, nullptr, pv::model::LogitRows::Last);
      tok = pv::model::argmax(logits.data(), m.config.vocab);
      state.ResumeTiming();
    }
    f.eval(&tok, 1, logits.data(), nullptr, nullptr, pv::model::LogitRows::Last);
    tok = pv::model::argmax(logits.data(), m.config.vocab);
    benchmark::DoNotOptimize(tok);
  }
  const double tokens = static_cast<double>(state.iterations());
  state.counters["tokens_per_s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  state.counters["weight_GBps"] = benchmark::Counter(
      tokens * static_cast<double>(m.bytes_per_token) / 1e9, benchmark::Counter::kIsRate);
  state.counters["weight_MB_per_token"] = static_cast<double>(m.bytes_per_token) / 1e6;
  state.counters["threads"] = threads;
}
BENCHMARK(BM_DecodeQwen25_05B_Q4K)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The copy baseline, split across the same thread pool as the model's matmuls.
void BM_MemcpyBandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  constexpr size_t kBytes = size_t{512} << 20;
  std::vector<char> src(kBytes, 1), dst(kBytes, 0);
  pv::kernels::cpu::ThreadPool pool(threads);
  constexpr int64_t kChunk = int64_t{1} << 20;
  const int64_t chunks = static_cast<int64_t>(kBytes) / kChunk;
  for (auto _ : state) {
    pool.parallel_for(chunks, [&](int64_t c0, int64_t c1) {
      std::memcpy(dst.data() + c0 * kChunk, src.data() + c0 * kChunk,
                  static_cast<size_t>(c1 - c0) * kChunk);
    });
    benchmark::ClobberMemory();
  }
  state.counters["copy_GBps"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kBytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["threads"] = threads;
}
BENCHMARK(BM_MemcpyBandwidth)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
