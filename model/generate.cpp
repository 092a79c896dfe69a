#include "model/generate.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace pv::model {

int32_t argmax(const float* logits, int n) {
  int32_t best = 0;
  for (int i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

GenerateResult generate_greedy(Forward& forward, const std::vector<int32_t>& prompt,
                               const GenerateOptions& options) {
  if (prompt.empty()) throw std::invalid_argument("generate: the prompt has no tokens");
  using clock = std::chrono::steady_clock;
  const int vocab = forward.config().vocab;
  std::vector<float> logits(static_cast<size_t>(vocab));
  GenerateResult r;
  if (options.reset_first) forward.reset();
  if (options.max_new <= 0) return r;

  auto t0 = clock::now();
  forward.eval(prompt.data(), static_cast<int>(prompt.size()), logits.data(), nullptr, nullptr,
               LogitRows::Last);
  r.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();

  t0 = clock::now();
  for (int i = 0; i < options.max_new; ++i) {
    const int32_t next = argmax(logits.data(), vocab);
    r.tokens.push_back(next);
    if (options.on_token) options.on_token(next);
    if (std::find(options.eos.begin(), options.eos.end(), next) != options.eos.end()) {
      r.stopped_at_eos = true;
      break;
    }
    // No step after the last token: its logits would be unused, and the cache may be
    // exactly full.
    if (i + 1 == options.max_new) break;
    forward.eval(&next, 1, logits.data(), nullptr, nullptr, LogitRows::Last);
  }
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return r;
}

}  // namespace pv::model
