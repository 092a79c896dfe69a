#include "model/trace/trace_compare.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>

#include "model/trace/aprt.h"
#include "model/trace/trace_store.h"

namespace pv::model {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<size_t> top_k_indices(const float* row, size_t vocab, int k) {
  std::vector<size_t> idx(vocab);
  std::iota(idx.begin(), idx.end(), size_t{0});
  const size_t kk = std::min<size_t>(static_cast<size_t>(k), vocab);
  // Ties broken by the lower index so both sides rank equal values the same way.
  std::partial_sort(
      idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(kk), idx.end(),
      [row](size_t x, size_t y) { return row[x] > row[y] || (row[x] == row[y] && x < y); });
  idx.resize(kk);
  return idx;
}

std::string join_labels(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > 8) s += fmt::format(", ... ({} in all)", v.size());
  return s.empty() ? std::string("none") : s;
}

// The q and k column blocks of a q/k stage, as (first column, heads).
std::vector<std::pair<int64_t, int>> qk_blocks(Stage stage, const TraceMeta& m) {
  switch (stage) {
    case Stage::qkv_matmul:
    case Stage::qkv_bias:  // [T, q | k | v]; v is not permuted
      return {{0, m.n_heads}, {int64_t{m.n_heads} * m.head_dim, m.n_kv_heads}};
    case Stage::q_norm:
    case Stage::q_post_rope:
      return {{0, m.n_heads}};
    case Stage::k_norm:
    case Stage::k_post_rope:
      return {{0, m.n_kv_heads}};
    default:
      return {};
  }
}

int64_t qk_width(Stage stage, const TraceMeta& m) {
  const int64_t d = m.head_dim;
  switch (stage) {
    case Stage::qkv_matmul:
    case Stage::qkv_bias:
      return (int64_t{m.n_heads} + 2 * int64_t{m.n_kv_heads}) * d;
    case Stage::q_norm:
    case Stage::q_post_rope:
      return int64_t{m.n_heads} * d;
    case Stage::k_norm:
    case Stage::k_post_rope:
      return int64_t{m.n_kv_heads} * d;
    default:
      return 0;
  }
}

std::string layout_desc(const TraceMeta& m) {
  if (m.qk_rows.empty()) return "unknown";
  return m.qk_rows_inferred ? fmt::format("\"{}\", from its HF producer", m.qk_rows)
                            : fmt::format("\"{}\"", m.qk_rows);
}

}  // namespace

std::string tokens_str(const std::vector<int32_t>& tokens) {
  return fmt::format("[{}]", fmt::join(tokens, ","));
}

void unpermute_gguf_llama_qk(float* data, int64_t rows, int64_t width, int64_t col0, int n_heads,
                             int head_dim) {
  if (head_dim <= 0 || head_dim % 2 != 0 || n_heads < 0 ||
      col0 + int64_t{n_heads} * head_dim > width) {
    throw std::invalid_argument(fmt::format(
        "q/k unpermute: {} heads of {} from column {} do not fit a row of {} (head_dim must be "
        "even)",
        n_heads, head_dim, col0, width));
  }
  const int half = head_dim / 2;
  std::vector<float> head(static_cast<size_t>(head_dim));
  for (int64_t r = 0; r < rows; ++r) {
    for (int h = 0; h < n_heads; ++h) {
      float* p = data + r * width + col0 + int64_t{h} * head_dim;
      for (int j = 0; j < half; ++j) {
        head[static_cast<size_t>(j)] = p[2 * j];
        head[static_cast<size_t>(half + j)] = p[2 * j + 1];
      }
      std::copy(head.begin(), head.end(), p);
    }
  }
}

void require_same_tokens(const TraceMeta& a, const TraceMeta& b, const std::string& dir_a,
                         const std::string& dir_b) {
  if (a.tokens == b.tokens) return;
  throw std::runtime_error(
      fmt::format("the two traces ran different tokens: {} ran {}, {} ran {}; their stages are not "
                  "comparable (re-trace one with the other's tokens)",
                  dir_a, tokens_str(a.tokens), dir_b, tokens_str(b.tokens)));
}

std::string stage_diff_name(const StageDiff& d) {
  return d.user.empty() ? std::string(stage_name(d.stage)) : d.user;
}

std::string stage_diff_label(const StageDiff& d) {
  return entry_label(stage_diff_name(d), d.layer);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

DiffStats compare_tensors(const float* a, const float* b, size_t n) {
  DiffStats s;
  s.n = n;
  double dot = 0, aa = 0, bb = 0, dd = 0;
  for (size_t i = 0; i < n; ++i) {
    const double x = a[i], y = b[i];
    const bool fx = std::isfinite(x), fy = std::isfinite(y);
    if (std::isnan(x)) ++s.nan_a;
    if (std::isinf(x)) ++s.inf_a;
    if (std::isnan(y)) ++s.nan_b;
    if (std::isinf(y)) ++s.inf_b;
    if (fx != fy) s.nonfinite_mismatch = true;
    if (!fx || !fy) continue;
    const double d = x - y;
    dot += x * y;
    aa += x * x;
    bb += y * y;
    dd += d * d;
    if (std::fabs(d) > s.max_abs) {
      s.max_abs = std::fabs(d);
      s.max_abs_index = i;
    }
  }
  if (aa == 0 && bb == 0) {
    s.cosine = 1.0;
  } else if (aa == 0 || bb == 0) {
    s.cosine = 0.0;
  } else {
    s.cosine = dot / (std::sqrt(aa) * std::sqrt(bb));
  }
  s.rms = n ? std::sqrt(dd / static_cast<double>(n)) : 0.0;
  if (dd == 0) {
    s.nmse = 0.0;
    s.sqnr_db = kInf;
  } else if (aa == 0) {
    s.nmse = kInf;
    s.sqnr_db = -kInf;
  } else {
    s.nmse = dd / aa;
    s.sqnr_db = 10.0 * std::log10(aa / dd);
  }
  return s;
}

void add_logit_stats(DiffStats& s, const float* a, const float* b, size_t rows, size_t vocab,
                     int k) {
  if (rows == 0 || vocab == 0) return;
  size_t agree = 0;
  double overlap = 0;
  for (size_t r = 0; r < rows; ++r) {
    const float* ra = a + r * vocab;
    const float* rb = b + r * vocab;
    const auto ta = top_k_indices(ra, vocab, std::max(k, 1));
    const auto tb = top_k_indices(rb, vocab, std::max(k, 1));
    if (ta[0] == tb[0]) ++agree;
    size_t common = 0;
    for (size_t x : ta) common += std::count(tb.begin(), tb.end(), x);
    overlap += static_cast<double>(common) / static_cast<double>(ta.size());
  }
  s.argmax_agreement = static_cast<double>(agree) / static_cast<double>(rows);
  s.topk_overlap = overlap / static_cast<double>(rows);
  s.top_k = std::max(k, 1);
}

TraceDiff diff_trace_dirs(const std::string& dir_a, const std::string& dir_b, int top_k,
                          bool require_same_stages, QkRows qk) {
  TraceDiff out;
  const OpenTrace ta_src = open_trace(dir_a);
  const OpenTrace tb_src = open_trace(dir_b);
  out.a = ta_src.meta;
  out.b = tb_src.meta;
  if (out.a.n_layers != out.b.n_layers) {
    throw std::runtime_error(fmt::format("layer counts differ: {} has {} layers, {} has {}", dir_a,
                                         out.a.n_layers, dir_b, out.b.n_layers));
  }
  std::map<std::pair<std::string, int>, const TraceEntry*> in_b;
  for (const auto& e : out.b.entries) in_b[{entry_name(e), e.layer}] = &e;
  auto is_qk = [](const TraceEntry& e) { return e.user.empty() && is_qk_row_stage(e.stage); };
  // Which side, if any, gets its q/k rows put back in HF order.
  std::vector<std::string> shared_qk;
  for (const auto& ea : out.a.entries) {
    if (is_qk(ea) && in_b.count({entry_name(ea), ea.layer})) shared_qk.push_back(entry_label(ea));
  }
  const TraceMeta* permuted = nullptr;  // &out.a or &out.b
  if (qk == QkRows::Normalise && !shared_qk.empty()) {
    for (const auto* side : {&out.a, &out.b}) {
      if (!side->qk_rows.empty()) continue;
      const std::string& dir = side == &out.a ? dir_a : dir_b;
      throw std::runtime_error(fmt::format(
          "{}: the trace has no \"qk_rows\" and tools/hf_oracle.py did not write it, so the "
          "row order of its q/k stages ({}) is unknown (HF order, or llama.cpp's per-head "
          "permutation of a llama GGUF); re-trace it with pv trace, which records it, or compare "
          "the rows as stored with --qk-rows-as-is",
          dir, join_labels(shared_qk)));
    }
    if (out.a.qk_rows != out.b.qk_rows) {
      permuted = out.a.qk_rows == kQkRowsGgufLlama ? &out.a : &out.b;
      out.qk_note = fmt::format(
          "normalised llama GGUF q/k rows to HF order: {} ({}) vs {} ({}); undid the per-head "
          "permutation of {} in the q and k columns of qkv_matmul/qkv_bias (v untouched) and in "
          "q_norm/k_norm and q_post_rope/k_post_rope ({} stages); attention scores and later "
          "stages are order-free",
          dir_a, layout_desc(out.a), dir_b, layout_desc(out.b), permuted == &out.a ? dir_a : dir_b,
          shared_qk.size());
    }
  }
  auto where = [](const OpenTrace& t, const TraceEntry& e) {
    return t.format == TraceFormat::AprtDir ? (std::filesystem::path(t.path) / e.file).string()
                                            : fmt::format("{} tensor \"{}\"", t.path, e.file);
  };
  std::vector<std::string> only_a, only_b;
  for (const auto& ea : out.a.entries) {
    auto it = in_b.find({entry_name(ea), ea.layer});
    if (it == in_b.end()) {
      only_a.push_back(entry_label(ea));
      continue;
    }
    const TraceEntry& eb = *it->second;
    in_b.erase(it);
    const std::string fa = where(ta_src, ea);
    const std::string fb = where(tb_src, eb);
    if (ea.shape != eb.shape) {
      throw std::runtime_error(fmt::format("shape mismatch for {}: {} is {}, {} is {}",
                                           entry_label(ea), fa, shape_str(ea.shape), fb,
                                           shape_str(eb.shape)));
    }
    struct Values {
      std::vector<float> data;
    } ta{read_stage(ta_src, ea)}, tb{read_stage(tb_src, eb)};
    const bool normalise = permuted != nullptr && is_qk(ea);
    if (normalise) {
      const std::string& pf = permuted == &out.a ? fa : fb;
      const int64_t width = qk_width(ea.stage, *permuted);
      if (ea.shape.size() != 2 || ea.shape[1] != width) {
        throw std::runtime_error(fmt::format(
            "{}: shape {} does not match trace.json's heads (n_heads {}, n_kv_heads {}, head_dim "
            "{} give {} columns), so its q/k rows cannot be put in HF order",
            pf, shape_str(ea.shape), permuted->n_heads, permuted->n_kv_heads, permuted->head_dim,
            width));
      }
      Values& t = permuted == &out.a ? ta : tb;
      for (const auto& [col0, heads] : qk_blocks(ea.stage, *permuted)) {
        unpermute_gguf_llama_qk(t.data.data(), ea.shape[0], width, col0, heads, permuted->head_dim);
      }
    }
    StageDiff sd{ea.stage,  ea.layer,
                 ea.shape,  compare_tensors(ta.data.data(), tb.data.data(), ta.data.size()),
                 normalise, ea.user};
    if (ea.user.empty() && ea.stage == Stage::lm_head && ea.shape.size() == 2) {
      add_logit_stats(sd.stats, ta.data.data(), tb.data.data(), static_cast<size_t>(ea.shape[0]),
                      static_cast<size_t>(ea.shape[1]), top_k);
    }
    out.stages.push_back(std::move(sd));
  }
  for (const auto& [k, e] : in_b) only_b.push_back(entry_label(*e));
  if (require_same_stages && (!only_a.empty() || !only_b.empty())) {
    throw std::runtime_error(fmt::format("stage sets differ: only in {}: {}; only in {}: {}", dir_a,
                                         join_labels(only_a), dir_b, join_labels(only_b)));
  }
  if (out.stages.empty()) {
    throw std::runtime_error(fmt::format("{} and {} share no stage to compare", dir_a, dir_b));
  }
  return out;
}

StageDiff diff_aprt_files(const std::string& file_a, const std::string& file_b) {
  const AprtTensor ta = read_aprt(file_a);
  const AprtTensor tb = read_aprt(file_b);
  if (ta.layer != tb.layer) {
    throw std::runtime_error(fmt::format("layer mismatch: {} is layer {}, {} is layer {}", file_a,
                                         ta.layer, file_b, tb.layer));
  }
  if (ta.data.size() != tb.data.size()) {
    throw std::runtime_error(fmt::format("shape mismatch: {} is [{}], {} is [{}]", file_a,
                                         ta.data.size(), file_b, tb.data.size()));
  }
  // The stage is unknown for a bare file; the caller labels it from the file name.
  const int layer = ta.layer == kWholeModelLayer ? -1 : static_cast<int>(ta.layer);
  return StageDiff{Stage::embedding,
                   layer,
                   {static_cast<int64_t>(ta.data.size())},
                   compare_tensors(ta.data.data(), tb.data.data(), ta.data.size())};
}

}  // namespace pv::model
