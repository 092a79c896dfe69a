#include "model/loading/config_keys.h"

namespace pv::model {
namespace {

using enum KeyRule;

constexpr ConfigKey kHf[] = {
    {"model_type", kImplemented, "qwen2, llama, qwen3, mistral (read as llama)"},
    {"hidden_size", kImplemented, "required"},
    {"intermediate_size", kImplemented, "required"},
    {"num_hidden_layers", kImplemented, "required"},
    {"num_attention_heads", kImplemented, "required"},
    {"num_key_value_heads", kImplemented, "absent: num_attention_heads (transformers' rule)"},
    {"head_dim", kImplemented, "absent: hidden_size / num_attention_heads; may differ (Qwen3)"},
    {"vocab_size", kImplemented, "required"},
    {"max_position_embeddings", kImplemented, "required: the context pv may run"},
    {"rms_norm_eps", kImplemented, "required, in (0, 1)"},
    {"rope_theta", kImplemented, "4.x rope base; > 1; must agree with rope_parameters.rope_theta"},
    {"rope_scaling", kImplemented, "4.x scaling: default, linear, llama3, yarn; others refused"},
    {"rope_parameters", kImplemented, "5.x rope base and scaling, same kinds as rope_scaling"},
    {"tie_word_embeddings", kImplemented, "absent: false; no lm_head tensor also ties"},
    {"attention_bias", kImplemented, "false only: true adds an o_proj bias pv does not compute"},
    {"mlp_bias", kImplemented, "false only"},
    {"hidden_act", kImplemented, "silu only"},
    {"sliding_window", kImplemented,
     "refused when a layer uses a window < max_position_embeddings"},
    {"use_sliding_window", kImplemented, "qwen: false disables sliding_window"},
    {"max_window_layers", kImplemented, "qwen: layers >= it use the window (4.x)"},
    {"layer_types", kImplemented, "full_attention / sliding_attention per layer"},
    {"bos_token_id", kImplemented, "int or list (first used)"},
    {"eos_token_id", kImplemented, "int or list (all kept); ids must be < vocab_size"},
    {"partial_rotary_factor", kImplemented, "1.0 only"},
    {"use_mrope", kImplemented, "false only"},
    {"pad_token_id", kIrrelevant, "padding id: generation/batching, not the forward"},
    {"architectures", kIrrelevant, "class names; model_type decides"},
    {"_name_or_path", kIrrelevant, "bookkeeping"},
    {"transformers_version", kIrrelevant, "bookkeeping (the dialect is read from the keys)"},
    {"torch_dtype", kIrrelevant, "4.x storage dtype; tensors carry their own"},
    {"dtype", kIrrelevant, "5.x storage dtype; tensors carry their own"},
    {"initializer_range", kIrrelevant, "training"},
    {"use_cache", kIrrelevant, "HF generation switch"},
    {"attention_dropout", kIrrelevant, "training (inference runs without dropout)"},
    {"pretraining_tp", kIrrelevant, "slices a matmul; same math"},
    {"quantization_config", kRefused, "pre-quantized HF checkpoints are not supported"},
};

constexpr ConfigKey kRope[] = {
    {"rope_type", kImplemented, "default, linear, llama3, yarn; others refused"},
    {"type", kImplemented, "older spelling of rope_type"},
    {"rope_theta", kImplemented, "5.x rope base, > 1"},
    {"factor", kImplemented, "linear, llama3, yarn: >= 1"},
    {"low_freq_factor", kImplemented, "llama3"},
    {"high_freq_factor", kImplemented, "llama3, > low_freq_factor"},
    {"original_max_position_embeddings", kImplemented,
     "llama3; yarn only when max_position_embeddings / it == factor"},
    {"beta_fast", kImplemented, "yarn (absent: 32)"},
    {"beta_slow", kImplemented, "yarn (absent: 1)"},
    {"mscale", kImplemented, "yarn"},
    {"mscale_all_dim", kImplemented, "yarn"},
    {"attention_factor", kImplemented, "yarn: scales cos/sin"},
    {"truncate", kImplemented, "yarn (absent: true)"},
    {"partial_rotary_factor", kImplemented, "1.0 only"},
};

constexpr ConfigKey kGguf[] = {
    {"general.architecture", kImplemented, "qwen2, llama, qwen3"},
    {"general.alignment", kImplemented, "read by the GGUF reader"},
    {"general.*", kIrrelevant, "names, licence, file_type, quantization_version: bookkeeping"},
    {"tokenizer.*", kIrrelevant, "read by the tokenizer, not the forward"},
    {"quantize.*", kIrrelevant, "llama-quantize's imatrix notes"},
    {"<arch>.block_count", kImplemented, "required"},
    {"<arch>.embedding_length", kImplemented, "required"},
    {"<arch>.feed_forward_length", kImplemented, "required"},
    {"<arch>.context_length", kImplemented, "required: the context pv may run"},
    {"<arch>.vocab_size", kImplemented, "must equal token_embd rows"},
    {"<arch>.attention.head_count", kImplemented, "required"},
    {"<arch>.attention.head_count_kv", kImplemented, "absent: head_count"},
    {"<arch>.attention.key_length", kImplemented, "head_dim (absent: embedding / heads)"},
    {"<arch>.attention.value_length", kImplemented, "must equal key_length"},
    {"<arch>.attention.layer_norm_rms_epsilon", kImplemented, "required, in (0, 1)"},
    {"<arch>.rope.freq_base", kImplemented, "> 1; absent: 10000, as llama.cpp"},
    {"<arch>.rope.dimension_count", kImplemented, "must equal head_dim (no partial rotary)"},
    {"<arch>.rope.scaling.type", kImplemented, "none, linear, yarn; others refused"},
    {"<arch>.rope.scaling.factor", kImplemented, "linear and yarn factor, >= 1"},
    {"<arch>.rope.scale_linear", kImplemented, "older spelling of a linear factor"},
    {"<arch>.rope.scaling.original_context_length", kImplemented,
     "yarn: required, the correction range's context; unused by linear"},
    {"<arch>.rope.scaling.finetuned", kIrrelevant, "bookkeeping"},
    {"<arch>.rope.scaling.attn_factor", kImplemented,
     "yarn: cos/sin x it x (0.1 ln factor + 1), as llama.cpp; 1.0 only otherwise"},
    {"<arch>.rope.scaling.yarn_ext_factor", kImplemented, "yarn, 1 only (llama.cpp's value)"},
    {"<arch>.rope.scaling.yarn_attn_factor", kImplemented,
     "yarn, 0.1 ln factor + 1 only (llama.cpp ignores it here, transformers does not)"},
    {"<arch>.rope.scaling.yarn_beta_fast", kImplemented, "yarn, 32 only (llama.cpp's value)"},
    {"<arch>.rope.scaling.yarn_beta_slow", kImplemented, "yarn, 1 only (llama.cpp's value)"},
    {"<arch>.rope.scaling.yarn_log_multiplier", kImplemented, "yarn, 0 only (llama.cpp's value)"},
    {"<arch>.attention.sliding_window", kImplemented, "refused when < context_length"},
    {"<arch>.expert_count", kRefused, "mixture of experts"},
    {"<arch>.expert_used_count", kRefused, "mixture of experts"},
    {"<arch>.attention.layer_norm_epsilon", kRefused, "LayerNorm, not RMSNorm"},
    {"<arch>.attention.clamp_kqv", kRefused, "clamped QKV"},
};

bool matches(std::string_view pattern, std::string_view key, std::string_view arch) {
  std::string p(pattern);
  if (p.rfind("<arch>.", 0) == 0) {
    if (arch.empty()) return false;
    p = std::string(arch) + p.substr(6);
  }
  if (p.size() >= 2 && p.ends_with(".*")) return key.starts_with(p.substr(0, p.size() - 1));
  return key == p;
}

}  // namespace

std::span<const ConfigKey> hf_config_keys() { return kHf; }
std::span<const ConfigKey> hf_rope_keys() { return kRope; }
std::span<const ConfigKey> gguf_metadata_keys() { return kGguf; }

const ConfigKey* find_config_key(std::span<const ConfigKey> table, std::string_view key,
                                 std::string_view arch) {
  for (const ConfigKey& k : table) {
    if (matches(k.key, key, arch)) return &k;
  }
  return nullptr;
}

const char* key_rule_name(KeyRule rule) {
  switch (rule) {
    case kImplemented:
      return "implemented";
    case kIrrelevant:
      return "irrelevant";
    case kRefused:
      return "refused";
  }
  return "?";
}

}  // namespace pv::model
