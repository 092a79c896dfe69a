// pv trace: run a prefill with a stage plan and write the trace, plus a greedy
// continuation: an APRT directory (layer-<N>/<stage>.bin + trace.json) or one safetensors
// file (model/trace/FORMAT.md).
//   pv trace --model PATH (--tokens 1,2,3 | --prompt TEXT) [--stages LIST|all]
//            [--layers LIST|all] [--backend cpu|cuda] [--max-new N]
//            [--format auto|aprt|safetensors] --out DIR|FILE.safetensors
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>

#include "kernels/backend_factory.h"
#include "model/forward.h"
#include "model/loading/loader.h"
#include "model/tokenizer/tokenizer.h"
#include "model/trace/trace_run.h"
#include "model/trace/trace_store.h"
#include "tools/command.h"
#include "tools/model_run_options.h"

namespace {

struct TraceArgs : pv::tools::ModelRunOptions {
  std::string stages = "all", layers = "all", out, format = "auto";
  int max_new = 8;
};

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
  std::unique_ptr<pv::model::Tokenizer> tok;
  if (!a.prompt.empty() && lm.tokenizer.present) {
    tok = std::make_unique<pv::model::Tokenizer>(lm.tokenizer);
  }
  const std::vector<int32_t> tokens = pv::tools::prompt_ids(a, tok.get());
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
  const bool st =
      pv::model::format_for_output(a.out, a.format) == pv::model::TraceFormat::Safetensors;
  // A safetensors trace is the APRT capture repacked: one capture path for both forms.
  const std::string dir = st ? a.out + ".aprt-tmp" : a.out;
  if (st) std::filesystem::remove_all(dir);
  auto r = pv::model::run_trace(forward, tokens, plan, dir, meta, a.max_new);
  if (st) {
    pv::model::write_safetensors_trace(pv::model::open_trace(dir), a.out);
    std::filesystem::remove_all(dir);
    r.bytes_written = std::filesystem::file_size(a.out);
  }
  std::cout << fmt::format("model    {} ({}, {}, {} layers, weights {})\n", a.model, lm.format,
                           lm.config.architecture, lm.config.n_layers, meta.weight_type)
            << fmt::format("backend  {} ({})\n", backend->name(), backend->device_description())
            << fmt::format("tokens   {}\n", fmt::join(tokens, ","))
            << (st ? fmt::format("trace    {}: safetensors, {} stage tensors, {} bytes\n", a.out,
                                 r.meta.entries.size(), r.bytes_written)
                   : fmt::format("trace    {}: {} stage files, {} bytes + trace.json\n", a.out,
                                 r.meta.entries.size(), r.bytes_written))
            << fmt::format("greedy   {}\n", fmt::join(r.meta.greedy_tokens, ","));
  return 0;
}

}  // namespace

PV_COMMAND(
    "trace", "Capture per-stage activations of a forward pass into a trace directory",
    [](CLI::App& sub) -> std::function<int()> {
      auto a = std::make_shared<TraceArgs>();
      pv::tools::add_model_run_options(sub, *a);
      sub.add_option("--stages", a->stages, "comma list of stage names, or all (default all)");
      sub.add_option("--layers", a->layers, "comma list of layers/ranges (0,2-3), or all");
      sub.add_option("--max-new", a->max_new,
                     "greedy tokens recorded after the traced prefill (default 8)")
          ->check(CLI::Range(0, 4096));
      sub.add_option("--format", a->format,
                     "aprt (a directory), safetensors (one file), or auto: safetensors "
                     "when --out ends in .safetensors (default auto)")
          ->check(CLI::IsMember({"auto", "aprt", "safetensors"}));
      sub.add_option("--out", a->out, "trace directory or .safetensors file to write")->required();
      sub.footer("Exit codes: 0 written, 2 bad input (unreadable model, unknown stage, ...).");
      return [a] {
        pv::tools::require_prompt(*a);
        return run_trace_cmd(*a);
      };
    });
