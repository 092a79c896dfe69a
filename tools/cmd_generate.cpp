// pv generate: greedy decoding of a GGUF file or HF model directory.
//   pv generate --model PATH (--tokens 1,2,3 | --prompt TEXT) --max-new N
//               [--threads N] [--backend cpu|cuda] [--max-seq N] [--json]
// Prints the prompt and generated token ids (and the decoded text when the
// model has a tokenizer), prefill time and decode tokens/s.
#include <fmt/format.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/backend_factory.h"
#include "model/forward.h"
#include "model/generate.h"
#include "model/loading/loader.h"
#include "model/tokenizer/tokenizer.h"
#include "tools/command.h"
#include "tools/model_run_options.h"

namespace {

struct GenerateArgs : pv::tools::ModelRunOptions {
  int max_new = 16;
  int max_seq = 0;
  bool json = false;
};

std::string join(const std::vector<int32_t> &v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

int run_generate(const GenerateArgs &a) {
  pv::model::LoadedModel lm = pv::model::load_model(a.model);
  // The tokenizer, when the file carries one: --prompt needs it, and generated ids are
  // decoded with it.
  std::unique_ptr<pv::model::Tokenizer> tok;
  if (lm.tokenizer.present) tok = std::make_unique<pv::model::Tokenizer>(lm.tokenizer);
  const std::vector<int32_t> prompt = pv::tools::prompt_ids(a, tok.get());
  auto backend = pv::kernels::make_backend(a.backend, a.threads);
  const int max_seq = a.max_seq > 0 ? a.max_seq : static_cast<int>(prompt.size()) + a.max_new;
  pv::model::Forward forward(lm.config, lm.weights, *backend, max_seq);

  pv::model::GenerateOptions opt;
  opt.max_new = a.max_new;
  opt.eos = lm.config.eos_token;
  const pv::model::GenerateResult r = pv::model::generate_greedy(forward, prompt, opt);
  const double decode_steps = r.tokens.size() > 1 ? static_cast<double>(r.tokens.size() - 1) : 0;
  const double tok_s = r.decode_seconds > 0 ? decode_steps / r.decode_seconds : 0.0;

  if (a.json) {
    nlohmann::json j;
    j["model"] = a.model;
    j["format"] = lm.format;
    j["architecture"] = lm.config.architecture;
    j["backend"] = std::string(backend->name());
    j["device"] = backend->device_description();
    j["prompt_tokens"] = prompt;
    j["tokens"] = r.tokens;
    if (tok) {
      j["prompt_text"] = tok->decode(prompt);
      j["text"] = tok->decode(r.tokens);
    }
    j["stopped_at_eos"] = r.stopped_at_eos;
    j["prefill_ms"] = r.prefill_seconds * 1e3;
    j["decode_tokens_per_s"] = tok_s;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << fmt::format("model    {} ({}, {}, {} layers)\n", a.model, lm.format,
                             lm.config.architecture, lm.config.n_layers);
    std::cout << fmt::format("backend  {} ({})\n", backend->name(), backend->device_description());
    std::cout << fmt::format("prompt   {}\n", join(prompt));
    std::cout << fmt::format("tokens   {}{}\n", join(r.tokens), r.stopped_at_eos ? " (eos)" : "");
    if (tok) {
      std::cout << fmt::format("text     {:?}\n", tok->decode(r.tokens));
    } else {
      std::cout << "text     (the model file has no tokenizer)\n";
    }
    std::cout << fmt::format("prefill  {:.2f} ms for {} tokens; decode {:.1f} tokens/s\n",
                             r.prefill_seconds * 1e3, prompt.size(), tok_s);
  }
  return 0;
}

}  // namespace

PV_COMMAND(
    "generate", "Greedy generation from a GGUF file or HF model directory",
    [](CLI::App &sub) -> std::function<int()> {
      auto a = std::make_shared<GenerateArgs>();
      pv::tools::add_model_run_options(sub, *a);
      sub.add_option("--max-new", a->max_new, "tokens to generate")->check(CLI::Range(0, 1 << 20));
      sub.add_option("--max-seq", a->max_seq, "KV cache length (default: prompt + max-new)");
      sub.add_flag("--json", a->json, "machine-readable output");
      return [a] {
        pv::tools::require_prompt(*a);
        return run_generate(*a);
      };
    });
