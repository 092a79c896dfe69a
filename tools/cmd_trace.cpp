// pv trace: run a prefill with a stage plan and write the trace directory
// (layer-<N>/<stage>.bin APRT files + trace.json), plus a greedy continuation.
//   pv trace --model PATH (--tokens 1,2,3 | --prompt TEXT) [--stages LIST|all]
//            [--layers LIST|all] [--backend cpu|cuda] [--max-new N] --out DIR
#include <fmt/format.h>

#include <charconv>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>

#include "kernels/backend_factory.h"
#include "model/forward.h"
#include "model/loading/loader.h"
#include "model/tokenizer/tokenizer.h"
#include "model/trace/trace_run.h"
#include "tools/command.h"

namespace {

struct TraceArgs {
  std::string model, tokens, prompt, stages = "all", layers = "all", backend = "cpu", out;
  int threads = 1;
  int max_new = 8;
};

std::vector<int32_t> parse_tokens(const std::string& s) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    const std::string item = s.substr(start, end - start);
    int32_t v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v < 0) {
      throw std::invalid_argument("--tokens: '" + item + "' is not a token id (expected 1,2,3)");
    }
    ids.push_back(v);
    start = end + 1;
  }
  if (ids.empty()) throw std::invalid_argument("--tokens: no token ids given");
  return ids;
}

// The stored type holding most bytes of the model's 2-D weights: what a comparison's
// quantization noise comes from.
std::string dominant_weight_type(const pv::model::ModelWeights& w) {
  std::map<std::string, size_t> bytes;
  auto add = [&](const pv::kernels::TensorView& t) {
    if (t.data != nullptr && t.rows > 1)
      bytes[std::string(pv::kernels::type_name(t.type))] += t.nbytes;
  };
  add(w.output);
  for (const auto& l : w.layers) {
    for (const auto* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) add(*t);
  }
  std::string best;
  size_t most = 0;
  for (const auto& [type, n] : bytes) {
    if (n > most) {
      most = n;
      best = type;
    }
  }
  return best;
}

int run_trace_cmd(const TraceArgs& a) {
  pv::model::LoadedModel lm = pv::model::load_model(a.model);
  std::vector<int32_t> tokens;
  if (a.prompt.empty()) {
    tokens = parse_tokens(a.tokens);
  } else if (lm.tokenizer.present) {
    tokens = pv::model::Tokenizer(lm.tokenizer).encode(a.prompt);
    if (tokens.empty()) throw std::invalid_argument("--prompt: the text encodes to no tokens");
  } else {
    throw std::invalid_argument(a.model +
                                ": the model has no tokenizer, so --prompt cannot be encoded; "
                                "give --tokens");
  }
  const pv::model::StagePlan plan = pv::model::parse_plan(a.stages, a.layers, lm.config.n_layers);
  auto backend = pv::kernels::make_backend(a.backend, a.threads);
  pv::model::Forward forward(lm.config, lm.weights, *backend,
                             static_cast<int>(tokens.size()) + a.max_new);
  pv::model::TraceMeta meta;
  meta.producer = "pv trace";
  meta.model = a.model;
  meta.architecture = lm.config.architecture;
  meta.backend = std::string(backend->name());
  meta.dtype = "f32";
  meta.weight_type = dominant_weight_type(lm.weights);
  const auto r = pv::model::run_trace(forward, tokens, plan, a.out, meta, a.max_new);
  std::cout << fmt::format("model    {} ({}, {}, {} layers, weights {})\n", a.model, lm.format,
                           lm.config.architecture, lm.config.n_layers, meta.weight_type)
            << fmt::format("backend  {} ({})\n", backend->name(), backend->device_description())
            << fmt::format("tokens   {}\n", fmt::join(tokens, ","))
            << fmt::format("trace    {}: {} stage files, {} bytes + trace.json\n", a.out,
                           r.meta.entries.size(), r.bytes_written)
            << fmt::format("greedy   {}\n", fmt::join(r.meta.greedy_tokens, ","));
  return 0;
}

}  // namespace

PV_COMMAND(
    "trace", "Capture per-stage activations of a forward pass into a trace directory",
    [](CLI::App& sub) -> std::function<int()> {
      auto a = std::make_shared<TraceArgs>();
      sub.add_option("--model", a->model, "a .gguf file or an HF model directory")->required();
      auto* tok = sub.add_option("--tokens", a->tokens, "prompt token ids, e.g. 1,2,3");
      auto* pr = sub.add_option("--prompt", a->prompt, "prompt text (needs a tokenizer)");
      tok->excludes(pr);
      pr->excludes(tok);
      sub.add_option("--stages", a->stages, "comma list of stage names, or all (default all)");
      sub.add_option("--layers", a->layers, "comma list of layers/ranges (0,2-3), or all");
      sub.add_option("--backend", a->backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
      sub.add_option("--threads", a->threads, "CPU threads")->check(CLI::Range(1, 1024));
      sub.add_option("--max-new", a->max_new,
                     "greedy tokens recorded after the traced prefill (default 8)")
          ->check(CLI::Range(0, 4096));
      sub.add_option("--out", a->out, "trace directory to write")->required();
      sub.footer("Exit codes: 0 written, 2 bad input (unreadable model, unknown stage, ...).");
      return [a] {
        if (a->tokens.empty() && a->prompt.empty()) {
          throw std::invalid_argument("give --tokens or --prompt");
        }
        return run_trace_cmd(*a);
      };
    });
