#include "falsifiers/support/prompt_logits.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_backend.h"
#include "model/forward.h"
#include "model/generate.h"

namespace pv::loader_test {

std::vector<float> prompt_logits(const model::LoadedModel& m) {
  kernels::CpuBackend be(1);
  model::Forward f(m.config, m.weights, be, 64);
  std::vector<float> logits(kPrompt.size() * m.config.vocab);
  f.eval(kPrompt.data(), static_cast<int>(kPrompt.size()), logits.data());
  return logits;
}

RowComparison compare_logit_rows(const std::vector<float>& ref, const std::vector<float>& got,
                                 int vocab, double nmse_bound) {
  RowComparison c;
  const size_t rows = ref.size() / static_cast<size_t>(vocab);
  for (size_t t = 0; t < rows; ++t) {
    const float* ra = ref.data() + t * vocab;
    const float* rb = got.data() + t * vocab;
    double num = 0, den = 0, max_abs = 0;
    for (int i = 0; i < vocab; ++i) {
      const double d = double(ra[i]) - rb[i];
      num += d * d;
      den += double(ra[i]) * ra[i];
      max_abs = std::max(max_abs, std::fabs(d));
    }
    const double nmse = den > 0 ? num / den : num;
    c.worst_nmse = std::max(c.worst_nmse, nmse);
    if (!(nmse <= nmse_bound)) {
      c.failures.push_back("row " + std::to_string(t) + ": nmse " + std::to_string(nmse) +
                           " > bound " + std::to_string(nmse_bound));
    }
    // A different greedy token is explained only by a near-tie in the reference: the two
    // tokens' reference logits closer than twice this row's largest logit error.
    const int ta = model::argmax(ra, vocab), tb = model::argmax(rb, vocab);
    if (ta != tb) {
      ++c.argmax_differs;
      const double margin = double(ra[ta]) - ra[tb];
      if (margin > 2 * max_abs) {
        ++c.argmax_unexplained;
        c.failures.push_back("row " + std::to_string(t) + ": greedy token " + std::to_string(tb) +
                             " vs the reference's " + std::to_string(ta) + ", margin " +
                             std::to_string(margin) + " > 2 * max|a-b| " + std::to_string(max_abs));
      }
    }
  }
  return c;
}

}  // namespace pv::loader_test
