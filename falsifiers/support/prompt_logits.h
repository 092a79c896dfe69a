// What the model-loader falsifiers share: the fixture prompt, its logits from a fresh CPU
// forward, and the row-by-row comparison of two models' logits (NMSE per row, and a
// different greedy token allowed only where the reference itself has a near-tie).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/loading/loader.h"

namespace pv::loader_test {

// Fixed ids inside every fixture's vocabulary (>= 512).
inline const std::vector<int32_t> kPrompt = {1, 17, 42, 99, 7, 3, 250, 11, 400, 64};

// All kPrompt rows' logits (row-major, kPrompt.size() x vocab), one thread.
std::vector<float> prompt_logits(const model::LoadedModel& m);

struct RowComparison {
  double worst_nmse = 0;              // max over rows of sum((a-b)^2) / sum(a^2)
  int argmax_differs = 0;             // rows whose greedy token differs
  int argmax_unexplained = 0;         // ... where the reference's margin exceeds 2 max|a-b|
  std::vector<std::string> failures;  // one line per row beyond `nmse_bound` or unexplained
};

// Compares `got` with the reference `ref`, both rows x vocab.
RowComparison compare_logit_rows(const std::vector<float>& ref, const std::vector<float>& got,
                                 int vocab, double nmse_bound);

}  // namespace pv::loader_test
