// Greedy generation: one prefill of the prompt, then one incremental step per new token.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/forward.h"

namespace pv::model {

struct GenerateOptions {
  int max_new = 16;
  // Stop after emitting any of these ids (empty: never); usually config.eos_tokens, since
  // instruct models end turns with one of several ids (Llama 3: <|end_of_text|>, <|eot_id|>).
  std::vector<int32_t> eos;
  bool reset_first = true;  // start from an empty KV cache
  // Called with each new token as soon as it is chosen (streaming output); may be empty.
  std::function<void(int32_t)> on_token;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated ids only (eos included when it stopped there)
  bool stopped_at_eos = false;
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;  // all incremental steps together
};

// Index of the largest logit; ties go to the lowest index (as torch.argmax).
int32_t argmax(const float* logits, int n);

GenerateResult generate_greedy(Forward& forward, const std::vector<int32_t>& prompt,
                               const GenerateOptions& options);

}  // namespace pv::model
