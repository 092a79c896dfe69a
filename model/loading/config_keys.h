// The explicit key tables: every key pv accepts in an HF config.json (top level and inside
// rope_scaling / rope_parameters) and in GGUF metadata, and what pv does with it. A key
// that is in no table is refused, naming the file and the key: pv never runs a model whose
// configuration it has not read in full. README.md ("Supported config dialects") is this
// table in prose; a test keeps the two in step.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "model/config.h"

namespace pv::model {

enum class KeyRule {
  kImplemented,  // read and used; values pv cannot compute are refused by name
  kIrrelevant,   // does not change the forward's numbers (training, bookkeeping, tokenizer)
  kRefused,      // pv cannot compute what it implies: its presence (non-null) is refused
};

struct ConfigKey {
  std::string_view key;  // GGUF: "<arch>." stands for the architecture prefix; "x.*" a prefix
  KeyRule rule;
  std::string_view note;
};

std::span<const ConfigKey> hf_config_keys();
// Keys inside rope_scaling (transformers 4.x) and rope_parameters (5.x).
std::span<const ConfigKey> hf_rope_keys();
std::span<const ConfigKey> gguf_metadata_keys();

// The table entry for a key (GGUF: `arch` expands "<arch>."), or nullptr when unknown.
const ConfigKey* find_config_key(std::span<const ConfigKey> table, std::string_view key,
                                 std::string_view arch = {});

const char* key_rule_name(KeyRule rule);  // "implemented", "irrelevant", "refused"

// config.json -> ModelConfig: every dialect key read, every value range-checked, errors
// naming the file, the key and its line:col. Does not require the forward to support the
// architecture (load_hf_model does), so configs of listed-but-unsupported families parse.
ModelConfig parse_hf_config_file(const std::string& path);

}  // namespace pv::model
