#include "model/trace/trace_report.h"

#include <fmt/format.h>

#include <cmath>

namespace pv::model {
namespace {

using nlohmann::json;

json num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

std::string name_of(const BisectRow& r) {
  return r.user.empty() ? std::string(stage_name(r.stage)) : r.user;
}
std::string label_of(const BisectRow& r) { return entry_label(name_of(r), r.layer); }

std::string fmt_sqnr(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.1f}", v);
}

}  // namespace

json stage_diff_json(const StageDiff& d) {
  const DiffStats& s = d.stats;
  json j;
  j["stage"] = stage_diff_name(d);
  j["layer"] = d.layer < 0 ? json(nullptr) : json(d.layer);
  j["shape"] = d.shape;
  j["n"] = s.n;
  j["cosine"] = num(s.cosine);
  j["max_abs"] = num(s.max_abs);
  j["max_abs_index"] = s.max_abs_index;
  j["rms"] = num(s.rms);
  j["nmse"] = num(s.nmse);
  j["sqnr_db"] = num(s.sqnr_db);
  j["nan_a"] = s.nan_a;
  j["inf_a"] = s.inf_a;
  j["nan_b"] = s.nan_b;
  j["inf_b"] = s.inf_b;
  j["nonfinite_mismatch"] = s.nonfinite_mismatch;
  if (d.qk_normalised) j["qk_normalised"] = true;
  if (s.argmax_agreement) {
    j["argmax_agreement"] = *s.argmax_agreement;
    j["topk_overlap"] = *s.topk_overlap;
    j["top_k"] = s.top_k;
  }
  return j;
}

json trace_diff_json(const TraceDiff& d, const std::string& a, const std::string& b) {
  json j;
  j["schema"] = "pv-diff-v1";
  j["a"] = {
      {"path", a}, {"backend", d.a.backend}, {"dtype", d.a.dtype}, {"producer", d.a.producer}};
  j["b"] = {
      {"path", b}, {"backend", d.b.backend}, {"dtype", d.b.dtype}, {"producer", d.b.producer}};
  j["tokens_equal"] = d.a.tokens == d.b.tokens;
  if (d.a.tokens != d.b.tokens) {
    j["tokens_a"] = d.a.tokens;
    j["tokens_b"] = d.b.tokens;
  }
  j["a"]["qk_rows"] = d.a.qk_rows.empty() ? json(nullptr) : json(d.a.qk_rows);
  j["b"]["qk_rows"] = d.b.qk_rows.empty() ? json(nullptr) : json(d.b.qk_rows);
  if (!d.qk_note.empty()) j["qk_normalised"] = d.qk_note;
  if (!d.a.greedy_tokens.empty() && !d.b.greedy_tokens.empty()) {
    j["greedy_tokens_equal"] = d.a.greedy_tokens == d.b.greedy_tokens;
  }
  json st = json::array();
  for (const auto& s : d.stages) st.push_back(stage_diff_json(s));
  j["stages"] = std::move(st);
  return j;
}

std::string stage_diff_line(const std::string& label, const StageDiff& d) {
  const DiffStats& s = d.stats;
  std::string logit;
  if (s.argmax_agreement) {
    logit = fmt::format("  argmax {:.0f}% top{} {:.0f}%", 100 * *s.argmax_agreement, s.top_k,
                        100 * *s.topk_overlap);
  }
  std::string nonfinite;
  if (s.nan_a + s.inf_a + s.nan_b + s.inf_b > 0) {
    nonfinite = fmt::format("  nan/inf a {}/{} b {}/{}", s.nan_a, s.inf_a, s.nan_b, s.inf_b);
  }
  return fmt::format("{:<24} {:>16} {:>12.9f} {:>10.3e} @{:<8} {:>10.3e} {:>10.3e} {:>7}{}{}",
                     label, shape_str(d.shape), s.cosine, s.max_abs, s.max_abs_index, s.rms, s.nmse,
                     fmt_sqnr(s.sqnr_db), logit, nonfinite);
}

std::string diff_table(const TraceDiff& d) {
  std::string out = fmt::format("{:<24} {:>16} {:>12} {:>10}  {:<8} {:>10} {:>10} {:>7}\n", "stage",
                                "shape", "cosine", "max|a-b|", "index", "rms", "nmse", "sqnr_dB");
  for (const auto& s : d.stages) out += stage_diff_line(stage_diff_label(s), s) + "\n";
  return out;
}

std::string bisect_table(const BisectResult& r) {
  std::string out = fmt::format("{:<24} {:>12} {:>10} {:>10} {:>10} {:>9}  {}\n", "stage", "cosine",
                                "1-cos", "nmse", "nmse_floor", "jump", "verdict");
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const BisectRow& row = r.rows[i];
    out += fmt::format("{:<24} {:>12.9f} {:>10.3e} {:>10.3e} {:>10.3e} {:>8.1f}x  {}\n",
                       label_of(row), row.cosine, std::max(0.0, 1.0 - row.cosine), row.nmse,
                       row.floor_nmse, row.jump, row.diverged ? "<-- FIRST DIVERGENCE" : "ok");
  }
  return out;
}

std::string bisect_summary(const BisectResult& r, const BisectCriterion& c) {
  std::string out;
  if (r.first) {
    const BisectRow& row = r.rows[*r.first];
    out += fmt::format("first divergence: {} ({})\n", label_of(row), r.reason);
    if (*r.first > 0) {
      out += fmt::format("drift jumps {:.1f}x across {} -> {}\n", row.jump,
                         label_of(r.rows[*r.first - 1]), label_of(row));
    }
  } else {
    out += fmt::format("no divergence: all {} stages within {}x of the noise floor ({})\n",
                       r.rows.size(), c.ratio, r.noise_source);
    if (r.max_jump) {
      const BisectRow& row = r.rows[*r.max_jump];
      out += fmt::format("largest drift jump {:.1f}x across {} -> {}\n", row.jump,
                         label_of(r.rows[*r.max_jump - 1]), label_of(row));
    }
  }
  return out;
}

json bisect_json(const TraceDiff& d, const BisectResult& r, const BisectCriterion& c,
                 const std::string& ref, const std::string& cand) {
  json j;
  j["schema"] = "pv-bisect-v1";
  j["ref"] = ref;
  j["cand"] = cand;
  if (!d.qk_note.empty()) j["qk_normalised"] = d.qk_note;
  j["criterion"] = {{"ratio", c.ratio},
                    {"abs_floor_cos", c.abs_floor_cos},
                    {"abs_floor_nmse", c.abs_floor_nmse},
                    {"prior_cos", c.prior_cos},
                    {"prior_nmse", c.prior_nmse},
                    {"noise", r.noise_source}};
  json rows = json::array();
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const BisectRow& row = r.rows[i];
    json o = stage_diff_json(d.stages[i]);
    o["floor_cos"] = num(row.floor_cos);
    o["floor_nmse"] = num(row.floor_nmse);
    o["jump"] = num(row.jump);
    o["diverged"] = row.diverged;
    rows.push_back(std::move(o));
  }
  j["stages"] = std::move(rows);
  if (r.first) {
    const BisectRow& row = r.rows[*r.first];
    json f;
    f["layer"] = row.layer < 0 ? json(nullptr) : json(row.layer);
    f["stage"] = name_of(row);
    f["cosine"] = num(row.cosine);
    f["nmse"] = num(row.nmse);
    f["floor_cos"] = num(row.floor_cos);
    f["floor_nmse"] = num(row.floor_nmse);
    f["ratio"] = c.ratio;
    f["jump"] = num(row.jump);
    f["reason"] = r.reason;
    if (*r.first > 0) {
      const BisectRow& prev = r.rows[*r.first - 1];
      f["jump_from"] = {{"layer", prev.layer < 0 ? json(nullptr) : json(prev.layer)},
                        {"stage", name_of(prev)}};
    }
    j["first_divergence"] = std::move(f);
  } else {
    j["first_divergence"] = nullptr;
  }
  return j;
}

}  // namespace pv::model
