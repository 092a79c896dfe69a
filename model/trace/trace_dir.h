// A trace directory (DESIGN.md "Traces"): layer-<N>/<stage>.bin for per-layer stages,
// <stage>.bin for whole-model stages, and trace.json describing them. The same layout
// is written by `pv trace` (model/trace_sink) and by tools/hf_oracle.py.
//
// trace.json, schema "pv-trace-v1":
//   { "schema": "pv-trace-v1", "producer": "pv trace" | "hf_oracle.py ...",
//     "model": "<path or name>", "architecture": "qwen2" | "llama",
//     "backend": "cpu" | "cuda" | "hf-transformers", "dtype": "f32" | "f64" | ...,
//     "weight_type": "F32" | "Q4_K" | ... (optional; bisect's quantization noise prior),
//     "n_layers": N, "tokens": [ids], "greedy_tokens": [ids] (optional),
//     "qk_rows": "hf" | "gguf-llama-permuted" (optional; see below),
//     "n_heads": H, "n_kv_heads": KV, "head_dim": D (optional; required with
//                                                   "gguf-llama-permuted"),
//     "stages": [ { "stage": "attn_norm", "layer": 0 | null, "file": "layer-0/attn_norm.bin",
//                   "shape": [T, hidden] }, ... ]   (computation order) }
// Files hold float32 whatever the producing dtype was. model/trace/FORMAT.md is the full
// description.
//
// "qk_rows" is the order of the rows within each head of the q/k stages (qkv_matmul's and
// qkv_bias's q and k columns, q_norm, k_norm, q_post_rope, k_post_rope): "hf" is the
// checkpoint order, whose RoPE pairs are (i, i + D/2); "gguf-llama-permuted" is llama.cpp's
// converter order, whose pairs are (2i, 2i+1). A trace without the key reads as "hf" only when
// tools/hf_oracle.py wrote it; otherwise its q/k row order is unknown and comparisons of those
// stages refuse.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/stages.h"

namespace pv::model {

inline constexpr const char* kTraceSchema = "pv-trace-v1";

inline constexpr const char* kQkRowsHf = "hf";
inline constexpr const char* kQkRowsGgufLlama = "gguf-llama-permuted";

struct TraceEntry {
  Stage stage = Stage::embedding;  // meaningless for a user stage
  int layer = -1;                  // -1 for whole-model stages
  // APRT directory: the file, relative to the directory. safetensors: the tensor key.
  std::string file;
  std::vector<int64_t> shape;
  // Non-empty for a user-declared stage (a name in "stage_order" that is neither a pv
  // stage nor an alias of one): compared only with the same name in the other trace.
  std::string user = {};
  // Position in the trace's own computation order; unset means pv's order
  // (computation_order) for a pv stage.
  std::optional<int64_t> order = {};
};

struct TraceMeta {
  std::string producer;
  std::string model;
  std::string architecture;
  std::string backend;
  std::string dtype = "f32";
  std::string weight_type;  // dominant stored type of the 2-D weights ("F32", "Q4_K", ...)
  int n_layers = 0;
  std::vector<int32_t> tokens;
  std::vector<int32_t> greedy_tokens;
  // kQkRowsHf, kQkRowsGgufLlama, or empty when unknown (an older pv trace, a foreign one).
  std::string qk_rows;
  bool qk_rows_inferred = false;  // not in trace.json: read as "hf" from an HF producer
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;  // 0 when trace.json does not say
  std::vector<TraceEntry> entries;                // kept in computation order
  // "stage_order": the trace's declared order of stage names (pv names, aliases resolved,
  // user stages); empty means pv's order and no user stages.
  std::vector<std::string> stage_order;
};

// What an entry is called in comparisons: the pv stage name or the user stage's name.
std::string entry_name(const TraceEntry& e);
// "L3 attn_out" / "lm_head" for any entry, user stages included.
std::string entry_label(const TraceEntry& e);
std::string entry_label(const std::string& name, int layer);
// "layer-<N>/<name>.bin" or "<name>.bin" for a user stage's (or an alias's) APRT file.
std::string stage_file(const std::string& name, int layer);

// How a stage name written in a trace resolves: a pv stage (directly, or through an
// alias another tool uses, FORMAT.md "Aliases"), or nothing (a user stage if declared).
struct StageAlias {
  const char* name;            // as the other tool writes it
  const char* tool;            // "llama.cpp" / "aprender"
  std::optional<Stage> stage;  // nullopt: refused (the meaning differs), see refusal
  const char* refusal;         // why it is not an alias of a pv stage
};
const std::vector<StageAlias>& stage_aliases();
// Resolves `name` to a pv stage (pv names, layer_output, the aliases). Throws naming
// `where` for a refused alias whose values differ from every pv stage, unless `declared`
// (a user stage of that name is then compared only with the same name).
std::optional<Stage> resolve_stage_name(const std::string& name, bool declared,
                                        const std::string& where);
// User stage names: [A-Za-z_][A-Za-z0-9_]* (they become file names and tensor keys).
bool valid_user_stage_name(const std::string& name);

// Checked token ids: integers in [0, 2^31 - 1]. `locate(i)` describes where element i
// sits in the source text (" at FILE:LINE:COL"), or "" when unknown.
class TokenLocator {
 public:
  virtual ~TokenLocator() = default;
  virtual std::string locate(const std::string& key, size_t index) const = 0;
};
// Parses the index object shared by trace.json and a safetensors trace's metadata (the
// caller builds "stages" from the tensors there). `aprt_files`: entries name APRT files
// whose names must follow the stage and layer.
TraceMeta parse_trace_index(const nlohmann::json& j, const std::string& path, bool aprt_files,
                            const TokenLocator* loc);
// Byte offset of element `index` of the JSON array `"key": [...]` in `text` (key empty:
// the first array); npos when not found. Best effort, for error positions.
size_t array_element_offset(std::string_view text, const std::string& key, size_t index);
// "LINE:COL" of a byte offset.
std::string line_col(std::string_view text, size_t offset);

// True for the stages whose rows follow "qk_rows" (the others are the same in every order:
// attention scores are dot products over a head's dimensions, whatever their order).
bool is_qk_row_stage(Stage stage);
// True when tools/hf_oracle.py wrote the trace (its producer string or backend says so).
bool is_hf_produced(const TraceMeta& meta);

// "layer-<N>/<stage>.bin" or "<stage>.bin".
std::string stage_file(Stage stage, int layer);
// Computation-order key: embedding, then layer 0's stages, layer 1's, ..., final_norm, lm_head.
int64_t computation_order(Stage stage, int layer);
void sort_entries(std::vector<TraceEntry>& entries);
// "L3 attn_scores" / "lm_head".
std::string entry_label(Stage stage, int layer);

// Throws std::runtime_error naming the file (and the JSON key or byte position).
TraceMeta read_trace_meta(const std::string& dir);
void write_trace_meta(const std::string& dir, const TraceMeta& meta);

}  // namespace pv::model
