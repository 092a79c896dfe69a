// The options of the subcommands that run a model on a prompt (pv generate, pv trace):
// the model, its prompt as token ids or text, the backend and its threads.
#pragma once

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/tokenizer/tokenizer.h"

namespace pv::tools {

struct ModelRunOptions {
  std::string model, tokens, prompt, backend = "cpu";
  int threads = 1;
};

// Adds --model, --tokens / --prompt (one or the other), --backend and --threads.
inline void add_model_run_options(CLI::App& sub, ModelRunOptions& o) {
  sub.add_option("--model", o.model, "a .gguf file or an HF model directory")->required();
  auto* tok = sub.add_option("--tokens", o.tokens, "prompt token ids, e.g. 1,2,3");
  auto* pr = sub.add_option("--prompt", o.prompt, "prompt text (needs a tokenizer)");
  tok->excludes(pr);
  pr->excludes(tok);
  sub.add_option("--backend", o.backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub.add_option("--threads", o.threads, "CPU threads")->check(CLI::Range(1, 1024));
}

// Checked before the model is loaded: a run needs --tokens or --prompt.
inline void require_prompt(const ModelRunOptions& o) {
  if (o.tokens.empty() && o.prompt.empty()) {
    throw std::invalid_argument("give --tokens or --prompt");
  }
}

// The prompt's token ids: --tokens parsed, or --prompt encoded by `tokenizer` (null when
// the model has none).
inline std::vector<int32_t> prompt_ids(const ModelRunOptions& o,
                                       const model::Tokenizer* tokenizer) {
  std::vector<int32_t> ids;
  if (!o.prompt.empty()) {
    if (tokenizer == nullptr) {
      throw std::invalid_argument(o.model +
                                  ": the model has no tokenizer, so --prompt cannot be encoded; "
                                  "give token ids with --tokens");
    }
    ids = tokenizer->encode(o.prompt);
    if (ids.empty()) throw std::invalid_argument("--prompt: the text encodes to no tokens");
    return ids;
  }
  size_t start = 0;
  while (start < o.tokens.size()) {
    size_t end = o.tokens.find(',', start);
    if (end == std::string::npos) end = o.tokens.size();
    const std::string item = o.tokens.substr(start, end - start);
    int32_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v < 0) {
      throw std::invalid_argument("--tokens: '" + item +
                                  "' is not a token id (expected e.g. 1,2,3)");
    }
    ids.push_back(v);
    start = end + 1;
  }
  if (ids.empty()) throw std::invalid_argument("--tokens: no token ids given");
  return ids;
}

}  // namespace pv::tools
