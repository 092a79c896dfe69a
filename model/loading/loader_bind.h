// Shared by the GGUF and HF loaders: binds the tensors a config implies to
// TensorViews, checking presence, shape and type, with errors naming the tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kernels/tensor.h"
#include "model/config.h"
#include "model/weights.h"

namespace pv::model {

// A tensor found in a file, already in pv's orientation.
struct SourceTensor {
  kernels::TensorView view;     // rows/cols from the file's shape (1-D: rows = 1)
  std::vector<uint64_t> shape;  // outermost first
  std::string file;
  uint64_t record_offset = 0;  // where the file describes it (for errors)
};

enum class TensorRole {
  kEmbedding,
  kOutputNorm,
  kOutput,
  kAttnNorm,
  kWq,
  kBq,
  kWk,
  kBk,
  kWv,
  kBv,
  kWo,
  kFfnNorm,
  kGate,
  kUp,
  kDown,
  kQNorm,  // per-head RMSNorm weights of q and k (qwen3), [head_dim]
  kKNorm,
};

// A role's tensor name in each format (layer ignored for whole-model roles):
// "blk.<l>.attn_q.weight" in GGUF, "model.layers.<l>.self_attn.q_proj.weight" in HF.
std::string gguf_tensor_name(TensorRole role, int layer);
std::string hf_tensor_name(TensorRole role, int layer);

// The shape a config implies for a role, outermost first: [out, in] for a matrix
// (HF's orientation, pv's rows x cols), [n] for a norm or bias.
std::vector<uint64_t> role_shape(const ModelConfig& config, TensorRole role);

struct TensorSource {
  // nullptr when absent.
  std::function<const SourceTensor*(const std::string& name)> find;
  // The file's name for a role (layer ignored for whole-model roles).
  std::function<std::string(TensorRole role, int layer)> name_of;
  // Where a missing tensor is reported: the file and byte offset of its tensor table.
  std::string missing_file;
  uint64_t missing_offset = 0;
};

// Fills weights from the source per config (config.tied_embeddings and
// config.qkv_bias / config.qk_norm decide whether output / biases / q_norm and k_norm
// are bound). Throws FormatError.
ModelWeights bind_weights(const ModelConfig& config, const TensorSource& source);

// Structural checks of a config (positive sizes, heads divisible, ...); `where` and
// `offset` name the place errors point at.
void check_config(const ModelConfig& c, const std::string& where, uint64_t offset);

// Refuses, naming the architecture, a model whose family the forward cannot run yet
// (model/loading/arch.h). Separate from check_config so that such configs still parse.
void check_forward_support(const ModelConfig& c, const std::string& where, uint64_t offset);

}  // namespace pv::model
