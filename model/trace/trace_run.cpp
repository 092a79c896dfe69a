#include "model/trace/trace_run.h"

#include <fmt/format.h>

#include <charconv>
#include <filesystem>
#include <stdexcept>

#include "model/generate.h"
#include "model/trace/trace_sink.h"

namespace pv::model {
namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

int parse_int(const std::string& s, const std::string& what) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    throw std::invalid_argument(fmt::format("{}: \"{}\" is not an integer", what, s));
  }
  return v;
}

}  // namespace

std::array<bool, kStageCount> parse_stage_list(const std::string& list) {
  std::array<bool, kStageCount> on{};
  if (list == "all") {
    on.fill(true);
    return on;
  }
  const auto items = split(list);
  if (items.empty()) throw std::invalid_argument("--stages: empty list");
  for (const auto& name : items) {
    auto st = stage_from_name(name);
    if (!st) {
      std::string valid;
      for (int i = 0; i < kStageCount; ++i) {
        valid += (i ? ", " : "") + std::string(stage_name(static_cast<Stage>(i)));
      }
      throw std::invalid_argument(fmt::format(
          "--stages: unknown stage \"{}\" (valid: all, {}, layer_output)", name, valid));
    }
    on[static_cast<int>(*st)] = true;
  }
  return on;
}

StagePlan parse_plan(const std::string& stages, const std::string& layers, int n_layers) {
  StagePlan plan;
  plan.stages = parse_stage_list(stages);
  if (layers == "all") {
    plan.all_layers = true;
    return plan;
  }
  plan.all_layers = false;
  const auto items = split(layers);
  if (items.empty()) throw std::invalid_argument("--layers: empty list");
  for (const auto& item : items) {
    const size_t dash = item.find('-', 1);
    const int lo = parse_int(item.substr(0, dash), "--layers");
    const int hi = dash == std::string::npos ? lo : parse_int(item.substr(dash + 1), "--layers");
    if (lo < 0 || hi >= n_layers || lo > hi) {
      throw std::invalid_argument(
          fmt::format("--layers: \"{}\" is outside the model's layers 0-{}", item, n_layers - 1));
    }
    for (int l = lo; l <= hi; ++l) plan.layers.insert(l);
  }
  return plan;
}

TraceRunResult run_trace(Forward& forward, const std::vector<int32_t>& tokens,
                         const StagePlan& plan, const std::string& out_dir, TraceMeta meta,
                         int max_new) {
  if (tokens.empty()) throw std::invalid_argument("trace: no tokens");
  const ModelConfig& c = forward.config();
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab) {
      throw std::invalid_argument(
          fmt::format("token #{} = {} is outside the vocabulary [0, {})", i, tokens[i], c.vocab));
    }
  }
  meta.tokens = tokens;
  meta.n_layers = c.n_layers;
  if (meta.architecture.empty()) meta.architecture = c.architecture;
  if (meta.backend.empty()) meta.backend = std::string(forward.backend().name());
  TraceDirSink sink(out_dir, meta, c);
  TraceRunResult r;
  const int T = static_cast<int>(tokens.size());
  r.logits.resize(static_cast<size_t>(T) * c.vocab);
  forward.reset();
  forward.eval(tokens.data(), T, r.logits.data(), &plan, &sink, LogitRows::All);
  if (max_new > 0) {
    GenerateOptions g;
    g.max_new = max_new;
    g.eos.clear();  // the oracle generates a fixed count too
    g.reset_first = true;
    sink.meta().greedy_tokens = generate_greedy(forward, tokens, g).tokens;
  }
  forward.reset();
  sink.finish();
  r.meta = sink.meta();
  for (const auto& e : r.meta.entries) {
    std::error_code ec;
    r.bytes_written += std::filesystem::file_size(std::filesystem::path(out_dir) / e.file, ec);
  }
  return r;
}

}  // namespace pv::model
