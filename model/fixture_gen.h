// Deterministic tiny checkpoints with real structure (q/k/v bias, non-trivial norm
// weights, GQA 7:1 / 4:1 / 8:1, tied and untied lm_head, qwen2 and llama), written as an
// HF directory (config.json + model.safetensors, F32) and as GGUF files in F32 and the
// quantized types. Regeneration is byte-identical: weights come from splitmix64 mapped
// to floats by exact arithmetic (no std:: distributions, whose output differs between
// standard libraries), JSON is written by nlohmann in insertion order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/ggml_types.h"
#include "model/gguf_writer.h"
#include "model/loader.h"
#include "model/safetensors.h"

namespace pv::model {

struct FixtureSpec {
  std::string name;
  std::string architecture = "qwen2";  // "qwen2" or "llama"
  int n_layers = 2;
  int hidden = 256;
  int ffn = 512;
  int n_heads = 8;
  int n_kv_heads = 2;
  int vocab = 512;
  int context_length = 256;
  bool tied = false;
  bool qkv_bias = true;
  float rms_eps = 1e-6f;
  float rope_theta = 10000.0f;
  uint64_t seed = 1;
  bool with_tokenizer = false;  // embed the tokenizer given to generate_fixture
  bool write_hf = true;
  // GGUF files to write; 2-D weights take this type (falling back to Q8_0, then F32, for
  // a tensor whose rows are not a multiple of the block size); norms/biases stay F32.
  std::vector<kernels::GgmlType> gguf_types = {kernels::GgmlType::F32};
};

// The committed fixtures (model/fixtures/README.md lists them).
std::vector<FixtureSpec> default_fixtures();

// Reads model/fixtures/tokenizer/vocab.json (tokens, token_types, merges, bos/eos).
TokenizerData read_tokenizer_vocab(const std::string& path);

// Writes <out_dir>/<name>/hf/{config.json,model.safetensors} and
// <out_dir>/<name>/<name>-<type>.gguf; returns the paths written (relative to out_dir).
std::vector<std::string> generate_fixture(const FixtureSpec& spec, const std::string& out_dir,
                                          const TokenizerData* tokenizer);

// The pieces generate_fixture writes, in memory (tests break them on purpose).
std::string fixture_config_json(const FixtureSpec& spec, const TokenizerData* tokenizer);
SafetensorsWriter fixture_safetensors(const FixtureSpec& spec);
GgufWriter fixture_gguf(const FixtureSpec& spec, kernels::GgmlType type,
                        const TokenizerData* tokenizer);

// The llama.cpp converter's Q/K row permutation for llama GGUF files: within each head
// of `head_dim` rows, row j*head_dim/2 + i moves to 2i + j (half-split pairs become
// interleaved pairs). rows_data: [n_heads*head_dim, cols] row-major floats.
std::vector<float> permute_rope_rows(const std::vector<float>& rows_data, int n_heads, int head_dim,
                                     int64_t cols);

// Lowercase file-name tag of a type: "f32", "q8_0", "q4_k", "q6_k".
std::string type_tag(kernels::GgmlType type);

}  // namespace pv::model
