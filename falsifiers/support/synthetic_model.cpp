#include "falsifiers/support/synthetic_model.h"

#include <random>
#include <string>

#include "kernels/quant/quant.h"

namespace pv::testing {
namespace {

using kernels::GgmlType;
using kernels::TensorView;

class Builder {
 public:
  Builder(uint64_t seed, GgmlType type, SyntheticModel& m) : rng_(seed), type_(type), m_(m) {}

  // Values ~ N(mean, std); 2-D matrices are stored as type_, 1-D tensors as F32.
  TensorView make_f32(const std::string& name, int64_t rows, int64_t cols, float mean, float std) {
    const GgmlType keep = type_;
    type_ = GgmlType::F32;
    TensorView tv = make(name, rows, cols, mean, std);
    type_ = keep;
    return tv;
  }

  TensorView make(const std::string& name, int64_t rows, int64_t cols, float mean, float std) {
    std::normal_distribution<float> nd(mean, std);
    std::vector<float> v(static_cast<size_t>(rows * cols));
    for (auto& x : v) x = nd(rng_);
    const GgmlType t = rows > 1 ? type_ : GgmlType::F32;
    const size_t row_b = kernels::row_bytes(t, cols);
    auto bytes = std::make_shared<std::vector<uint8_t>>(row_b * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      kernels::quantize_row(t, v.data() + r * cols, bytes->data() + r * row_b, cols);
    }
    m_.storage.push_back(bytes);
    TensorView tv;
    tv.name = name;
    tv.type = t;
    tv.rows = rows;
    tv.cols = cols;
    tv.data = bytes->data();
    tv.nbytes = bytes->size();
    return tv;
  }

 private:
  std::mt19937_64 rng_;
  GgmlType type_;
  SyntheticModel& m_;
};

}  // namespace

SyntheticModel make_synthetic_qwen2(uint64_t seed, GgmlType matrix_type) {
  SyntheticModel m;
  model::ModelConfig& c = m.config;
  c.architecture = "qwen2";
  c.n_layers = 2;
  c.hidden = 256;
  c.ffn = 512;
  c.n_heads = 8;
  c.n_kv_heads = 2;
  c.head_dim = 32;
  c.vocab = 384;
  c.context_length = 64;
  c.rms_eps = 1e-6f;
  c.rope_theta = 10000.0f;
  c.rope_style = kernels::RopeStyle::HalfSplit;
  c.tied_embeddings = false;
  c.qkv_bias = true;
  Builder b(seed, matrix_type, m);
  const int q_dim = c.n_heads * c.head_dim, kv_dim = c.n_kv_heads * c.head_dim;
  // Scales chosen so activations stay O(1) and attention is neither uniform nor one-hot.
  // The embedding stays F32 (as a lookup it adds no matmul noise of its own).
  m.weights.tok_embd = b.make_f32("token_embd.weight", c.vocab, c.hidden, 0.0f, 1.0f);
  for (int l = 0; l < c.n_layers; ++l) {
    model::LayerWeights L;
    const std::string p = "blk." + std::to_string(l) + ".";
    L.attn_norm = b.make(p + "attn_norm.weight", 1, c.hidden, 1.0f, 0.1f);
    L.wq = b.make(p + "attn_q.weight", q_dim, c.hidden, 0.0f, 0.12f);
    L.bq = b.make(p + "attn_q.bias", 1, q_dim, 0.0f, 0.5f);
    L.wk = b.make(p + "attn_k.weight", kv_dim, c.hidden, 0.0f, 0.12f);
    L.bk = b.make(p + "attn_k.bias", 1, kv_dim, 0.0f, 0.5f);
    L.wv = b.make(p + "attn_v.weight", kv_dim, c.hidden, 0.0f, 0.08f);
    L.bv = b.make(p + "attn_v.bias", 1, kv_dim, 0.0f, 0.1f);
    L.wo = b.make(p + "attn_output.weight", c.hidden, q_dim, 0.0f, 0.06f);
    L.ffn_norm = b.make(p + "ffn_norm.weight", 1, c.hidden, 1.0f, 0.1f);
    L.w_gate = b.make(p + "ffn_gate.weight", c.ffn, c.hidden, 0.0f, 0.08f);
    L.w_up = b.make(p + "ffn_up.weight", c.ffn, c.hidden, 0.0f, 0.08f);
    L.w_down = b.make(p + "ffn_down.weight", c.hidden, c.ffn, 0.0f, 0.05f);
    m.weights.layers.push_back(L);
  }
  m.weights.output_norm = b.make("output_norm.weight", 1, c.hidden, 1.0f, 0.1f);
  m.weights.output = b.make("output.weight", c.vocab, c.hidden, 0.0f, 0.08f);
  return m;
}

}  // namespace pv::testing
