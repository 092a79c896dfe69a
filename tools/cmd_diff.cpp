// pv diff A B: compare two APRT files, or two traces stage by stage (each an APRT trace
// directory or a safetensors trace file, in any combination).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "model/trace/aprt.h"
#include "model/trace/trace_compare.h"
#include "model/trace/trace_report.h"
#include "tools/command.h"

namespace {

struct DiffOpts {
  std::string a, b;
  bool json = false;
  int top_k = 5;
  bool common = false;
  bool qk_as_is = false;
};

// A single stage file (magic "APRT"), as opposed to a trace (directory or safetensors).
bool is_aprt_file(const std::string& path) {
  if (std::filesystem::is_directory(path)) return false;
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  return f.read(magic, 4) && std::equal(magic, magic + 4, pv::model::kAprtMagic);
}

int run_diff(const DiffOpts& o) {
  namespace fs = std::filesystem;
  const bool file_a = is_aprt_file(o.a), file_b = is_aprt_file(o.b);
  if (file_a != file_b) {
    throw std::runtime_error((file_a ? o.a : o.b) + " is a single APRT stage file but " +
                             (file_a ? o.b : o.a) +
                             " is not; compare two APRT files, or two traces (directories or "
                             ".safetensors files)");
  }
  if (file_a) {
    pv::model::StageDiff d = pv::model::diff_aprt_files(o.a, o.b);
    const std::string label = fs::path(o.a).filename().string();
    if (o.json) {
      nlohmann::json j = pv::model::stage_diff_json(d);
      j.erase("stage");
      j["a"] = o.a;
      j["b"] = o.b;
      std::cout << j.dump(1) << "\n";
    } else {
      std::cout << pv::model::stage_diff_line(label, d) << "\n";
    }
    return 0;
  }
  const pv::model::TraceDiff d = pv::model::diff_trace_dirs(
      o.a, o.b, o.top_k, !o.common,
      o.qk_as_is ? pv::model::QkRows::AsIs : pv::model::QkRows::Normalise);
  // diff still compares different inputs (it is a look at two tensors, not a verdict, and
  // the JSON says tokens_equal: false), but never quietly: bisect refuses outright.
  const bool tokens_differ = d.a.tokens != d.b.tokens;
  if (tokens_differ) {
    std::cerr << "WARNING: the two traces ran different tokens (" << o.a << " ran "
              << pv::model::tokens_str(d.a.tokens) << ", " << o.b << " ran "
              << pv::model::tokens_str(d.b.tokens)
              << "); every difference below may come from the inputs, not the engines\n";
  }
  if (o.json) {
    std::cout << pv::model::trace_diff_json(d, o.a, o.b).dump(1) << "\n";
    return 0;
  }
  std::cout << "a: " << o.a << " (" << d.a.backend << ", " << d.a.dtype << ")\n"
            << "b: " << o.b << " (" << d.b.backend << ", " << d.b.dtype << ")\n";
  if (tokens_differ) {
    std::cout << "WARNING: different tokens: a ran " << pv::model::tokens_str(d.a.tokens)
              << ", b ran " << pv::model::tokens_str(d.b.tokens) << "\n";
  }
  if (!d.qk_note.empty()) std::cout << d.qk_note << "\n";
  if (o.qk_as_is) std::cout << "q/k rows compared as stored (--qk-rows-as-is)\n";
  std::cout << pv::model::diff_table(d);
  if (!d.a.greedy_tokens.empty() && !d.b.greedy_tokens.empty()) {
    std::cout << "greedy tokens "
              << (d.a.greedy_tokens == d.b.greedy_tokens ? "identical" : "DIFFER") << "\n";
  }
  return 0;
}

}  // namespace

PV_COMMAND("diff",
           "Compare two APRT files or two traces (directories or .safetensors) stage by stage",
           [](CLI::App& sub) {
             auto o = std::make_shared<DiffOpts>();
             sub.add_option("A", o->a,
                            "reference: APRT file, trace directory or .safetensors trace")
                 ->required();
             sub.add_option("B", o->b,
                            "candidate: APRT file, trace directory or .safetensors trace")
                 ->required();
             sub.add_flag("--json", o->json, "machine-readable output (schema pv-diff-v1)");
             sub.add_option("--top", o->top_k, "k of the lm_head top-k overlap (default 5)")
                 ->check(CLI::Range(1, 1000));
             sub.add_flag("--common", o->common,
                          "compare only the stages both traces hold (default: refuse when the "
                          "stage sets differ)");
             sub.add_flag("--qk-rows-as-is", o->qk_as_is,
                          "compare q/k stages in their stored row order even when the traces' "
                          "qk_rows differ or are unknown (default: put llama GGUF rows in HF "
                          "order, refuse an unknown order)");
             sub.footer(
                 "Exit codes: 0 compared (traces of different tokens are compared with a "
                 "warning on stderr), 2 unreadable or mismatched inputs.");
             return [o] { return run_diff(*o); };
           });
