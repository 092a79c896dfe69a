// Load a Qwen2/Llama-family checkpoint from a GGUF file or an HF model directory
// (config.json + model.safetensors, or sharded via model.safetensors.index.json) into
// ModelConfig + ModelWeights. Weights stay in their stored types, as views into the
// memory-mapped files, which the LoadedModel owns.
//
// RoPE: qwen2 is half-split in both formats. A llama GGUF is Interleaved — the llama.cpp
// converter permutes Q/K rows so that HF's half-split pairs (i, i + d/2) become adjacent
// pairs (2i, 2i+1) — while a llama HF directory is HalfSplit; config.rope_style says which.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/formats/mapped_file.h"
#include "model/weights.h"

namespace pv::model {

// Tokenizer facts as the file states them (GGUF tokenizer.ggml.* keys, or an HF
// tokenizer.json). Plain data: the tokenizer (model/tokenizer*) builds its BPE on it.
struct TokenizerData {
  bool present = false;
  std::string model;  // "gpt2" = byte-level BPE
  std::string pre;    // pre-tokenizer name, e.g. "qwen2"
  std::vector<std::string> tokens;
  std::vector<int32_t> token_types;  // empty when the file has none
  std::vector<std::string> merges;   // "left right"
  int bos = -1;
  int eos = -1;
  bool add_bos = false;
  // What tokenizer.json states and GGUF does not: the Unicode normalization forms applied
  // before pre-tokenization ("NFC", "NFKC", "NFD", "NFKD", in order) and BPE's ignore_merges
  // (a pre-token that is itself in the vocabulary is one token). Unset (a GGUF file), the
  // tokenizer derives them from `pre` (model/tokenizer/tokenizer.h).
  std::optional<std::vector<std::string>> normalizers;
  std::optional<bool> ignore_merges;
};

// One stored tensor, as the file describes it (pv inspect prints these).
struct TensorRecord {
  std::string name;
  std::string type;             // "F32", "Q4_K", "BF16", ...
  std::vector<uint64_t> shape;  // outermost first ([out, in] for a Linear), both formats
  uint64_t nbytes = 0;
  uint64_t offset = 0;  // absolute byte offset of the data in `file`
  std::string file;
};

struct LoadedModel {
  ModelConfig config;
  ModelWeights weights;
  TokenizerData tokenizer;
  std::string source_path;
  std::string format;                                         // "gguf" or "safetensors"
  std::vector<TensorRecord> tensors;                          // file order
  std::vector<std::pair<std::string, std::string>> metadata;  // key -> rendered value
  std::vector<std::shared_ptr<const MappedFile>> mappings;    // keep the views alive
};

// path: a .gguf file (any file starting with "GGUF") or an HF model directory.
// Throws FormatError naming the file, byte offset and tensor/key on any problem.
LoadedModel load_model(const std::string& path);

// The GGUF path on an already-mapped file (tests load in-memory, deliberately broken
// files through it).
LoadedModel load_gguf_model(std::shared_ptr<const MappedFile> file);
// The HF directory path.
LoadedModel load_hf_model(const std::string& dir);

}  // namespace pv::model
