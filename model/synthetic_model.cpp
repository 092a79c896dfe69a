#include "model/synthetic_model.h"

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>

#include "kernels/cpu/half.h"
#include "kernels/cpu/quant.h"

namespace pv::model {
namespace {

using kernels::GgmlType;
using kernels::TensorView;

enum class Kind { Matrix, Norm, Bias };

class Builder {
 public:
  Builder(SyntheticModel* m, uint64_t seed, SyntheticFill fill) : m_(m), rng_(seed), fill_(fill) {}

  TensorView make(const std::string& name, GgmlType type, int64_t rows, int64_t cols, Kind kind) {
    if (kind == Kind::Matrix && cols % kernels::traits(type).block_values != 0) {
      type = fallback_;
    }
    const size_t row_bytes = kernels::row_bytes(type, cols);
    auto& buf = m_->storage.emplace_back(row_bytes * static_cast<size_t>(rows));
    if (fill_ == SyntheticFill::RandomBlocks && kind == Kind::Matrix) {
      fill_random_blocks(type, buf);
    } else {
      std::normal_distribution<float> nd(0.0f, 1.0f);
      const float sd = kind == Kind::Matrix ? 1.0f / std::sqrt(static_cast<float>(cols)) : 0.1f;
      std::vector<float> row(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        for (float& v : row) v = (kind == Kind::Norm ? 1.0f : 0.0f) + sd * nd(rng_);
        kernels::cpu::quantize_row(type, row.data(), buf.data() + r * row_bytes, cols);
      }
    }
    m_->weight_bytes += buf.size();
    return TensorView{name, type, rows, cols, buf.data(), buf.size()};
  }

  void set_fallback(GgmlType t) { fallback_ = t; }

 private:
  // Random bytes, then every block's f16 scale fields set to small finite values so the
  // weights decode to bounded numbers (no Inf/NaN from random exponent bits).
  void fill_random_blocks(GgmlType type, std::vector<uint8_t>& buf) {
    for (size_t i = 0; i + 8 <= buf.size(); i += 8) {
      const uint64_t r = rng_();
      std::memcpy(buf.data() + i, &r, 8);
    }
    const auto& t = kernels::traits(type);
    const uint16_t d = kernels::cpu::fp32_to_fp16(1.0f / 256.0f);
    auto put = [&](size_t off) { std::memcpy(buf.data() + off, &d, 2); };
    for (size_t b = 0; b + t.block_bytes <= buf.size(); b += t.block_bytes) {
      switch (type) {
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
          put(b);
          break;
        case GgmlType::Q4_K:
          put(b);      // d
          put(b + 2);  // dmin
          break;
        case GgmlType::Q6_K:
          put(b + 208);  // d is last
          break;
        case GgmlType::F16:
          put(b);
          break;
        case GgmlType::BF16: {
          const uint16_t h = kernels::cpu::fp32_to_bf16(1.0f / 256.0f);
          std::memcpy(buf.data() + b, &h, 2);
          break;
        }
        case GgmlType::F32: {
          const float f = 1.0f / 256.0f;
          std::memcpy(buf.data() + b, &f, 4);
          break;
        }
      }
    }
  }

  SyntheticModel* m_;
  std::mt19937_64 rng_;
  SyntheticFill fill_;
  GgmlType fallback_ = GgmlType::Q4_0;
};

}  // namespace

ModelConfig tiny_qwen2_config(int n_heads, int n_kv_heads, int head_dim, int n_layers) {
  ModelConfig c;
  c.architecture = "qwen2";
  c.n_layers = n_layers;
  c.n_heads = n_heads;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = head_dim;
  c.hidden = n_heads * head_dim;
  c.ffn = 3 * c.hidden;
  c.vocab = 64;
  c.context_length = 256;
  c.rms_eps = 1e-6f;
  c.rope_theta = 10000.0f;
  c.rope_style = kernels::RopeStyle::HalfSplit;
  c.tied_embeddings = false;
  c.qkv_bias = true;
  c.eos_token = -1;
  return c;
}

std::unique_ptr<SyntheticModel> make_synthetic_model(const ModelConfig& config, uint64_t seed,
                                                     const SyntheticTypes& types,
                                                     SyntheticFill fill) {
  auto m = std::make_unique<SyntheticModel>();
  m->config = config;
  const ModelConfig& c = config;
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim,
                kv_dim = int64_t{c.n_kv_heads} * c.head_dim;
  // Views point into storage's inner vectors; growing the outer vector moves them, and a
  // moved std::vector keeps its heap block, so the views stay valid.
  Builder b(m.get(), seed, fill);
  b.set_fallback(types.fallback);
  const GgmlType F32 = GgmlType::F32;
  ModelWeights& w = m->weights;
  w.tok_embd = b.make("token_embd.weight", types.embedding, c.vocab, c.hidden, Kind::Matrix);
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights L;
    L.attn_norm = b.make(p + "attn_norm.weight", F32, 1, c.hidden, Kind::Norm);
    L.wq = b.make(p + "attn_q.weight", types.matrix, q_dim, c.hidden, Kind::Matrix);
    L.wk = b.make(p + "attn_k.weight", types.matrix, kv_dim, c.hidden, Kind::Matrix);
    L.wv = b.make(p + "attn_v.weight", types.matrix, kv_dim, c.hidden, Kind::Matrix);
    if (c.qkv_bias) {
      L.bq = b.make(p + "attn_q.bias", F32, 1, q_dim, Kind::Bias);
      L.bk = b.make(p + "attn_k.bias", F32, 1, kv_dim, Kind::Bias);
      L.bv = b.make(p + "attn_v.bias", F32, 1, kv_dim, Kind::Bias);
    }
    L.wo = b.make(p + "attn_output.weight", types.matrix, c.hidden, q_dim, Kind::Matrix);
    L.ffn_norm = b.make(p + "ffn_norm.weight", F32, 1, c.hidden, Kind::Norm);
    L.w_gate = b.make(p + "ffn_gate.weight", types.matrix, c.ffn, c.hidden, Kind::Matrix);
    L.w_up = b.make(p + "ffn_up.weight", types.matrix, c.ffn, c.hidden, Kind::Matrix);
    L.w_down = b.make(p + "ffn_down.weight", types.matrix, c.hidden, c.ffn, Kind::Matrix);
    w.layers.push_back(L);
  }
  w.output_norm = b.make("output_norm.weight", F32, 1, c.hidden, Kind::Norm);
  w.output = c.tied_embeddings
                 ? w.tok_embd
                 : b.make("output.weight", types.output, c.vocab, c.hidden, Kind::Matrix);
  m->bytes_per_token = m->weight_bytes - w.tok_embd.nbytes +
                       (c.tied_embeddings ? w.tok_embd.nbytes : 0) +
                       w.tok_embd.nbytes / static_cast<uint64_t>(c.vocab);
  return m;
}

}  // namespace pv::model
