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
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/backend_factory.h"
#include "model/forward.h"
#include "model/generate.h"
#include "model/loading/loader.h"
#include "model/tokenizer/tokenizer.h"
#include "tools/command.h"

namespace {

struct GenerateArgs {
  std::string model;
  std::string tokens;
  std::string prompt;
  int max_new = 16;
  int threads = 1;
  int max_seq = 0;
  std::string backend = "cpu";
  bool json = false;
};

std::vector<int32_t> parse_token_list(const std::string &s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception &) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v > INT32_MAX) {
      throw std::invalid_argument("--tokens: '" + item +
                                  "' is not a token id (expected e.g. 1,2,3)");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) throw std::invalid_argument("--tokens: no token ids given");
  return ids;
}

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
  std::vector<int32_t> prompt;
  if (!a.tokens.empty()) {
    prompt = parse_token_list(a.tokens);
  } else if (tok) {
    prompt = tok->encode(a.prompt);
    if (prompt.empty()) throw std::invalid_argument("--prompt: the text encodes to no tokens");
  } else {
    throw std::invalid_argument(a.model +
                                ": the model has no tokenizer, so --prompt cannot be encoded; "
                                "give token ids with --tokens");
  }
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
      sub.add_option("--model", a->model, "a .gguf file or an HF model directory")->required();
      auto *tok = sub.add_option("--tokens", a->tokens, "prompt token ids, e.g. 1,2,3");
      auto *pr = sub.add_option("--prompt", a->prompt, "prompt text (needs a tokenizer)");
      tok->excludes(pr);
      pr->excludes(tok);
      sub.add_option("--max-new", a->max_new, "tokens to generate")->check(CLI::Range(0, 1 << 20));
      sub.add_option("--threads", a->threads, "CPU threads")->check(CLI::Range(1, 1024));
      sub.add_option("--backend", a->backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
      sub.add_option("--max-seq", a->max_seq, "KV cache length (default: prompt + max-new)");
      sub.add_flag("--json", a->json, "machine-readable output");
      return [a] {
        if (a->tokens.empty() && a->prompt.empty()) {
          throw std::invalid_argument("give --tokens or --prompt");
        }
        return run_generate(*a);
      };
    });
