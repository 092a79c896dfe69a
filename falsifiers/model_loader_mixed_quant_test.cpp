// FALSIFY-LOADER-009: GGUF files whose tensors mix weight types the way llama.cpp's
// Q4_K_M and Q5_K_M write them load, and every prompt row's logits stay within an NMSE
// bound of the F32 copy's. llama-quantize picks a type per tensor (llama-quant.cpp):
// the mix's base K type, Q6_K for output.weight and for attn_v / ffn_down in the layers
// that get more bits (the first eighth of the layers, among others), and, for a tensor
// whose rows are not a multiple of 256 values, a 32-block fallback (Q4_K -> Q5_0,
// Q5_K -> Q5_1, Q6_K -> Q8_0). A Qwen2.5-0.5B-shaped model (896-wide rows) is therefore
// mostly fallback types. The model here has 256-wide rows and 352-wide ffn_down rows, so
// one file holds K types and fallbacks side by side, as those files do.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "falsifiers/support/prompt_logits.h"
#include "harness/testing/pv_test.h"
#include "kernels/quant/quant.h"
#include "model/fixtures/fixture_gen.h"
#include "model/formats/gguf.h"
#include "model/loading/loader.h"

namespace {

using namespace pv::loader_test;
using pv::kernels::GgmlType;

pv::model::FixtureSpec mixed_spec() {
  pv::model::FixtureSpec s;
  s.name = "mixed-quant";
  s.architecture = "qwen2";
  s.n_layers = 8;  // use_more_bits picks layers 0, 4, 7 of 8 (see more_bits)
  s.hidden = 256;
  s.ffn = 352;  // ffn_down rows: 11 blocks of 32, not a multiple of 256
  s.n_heads = 8;
  s.n_kv_heads = 2;
  s.vocab = 512;
  s.seed = 9;
  return s;
}

// llama.cpp's use_more_bits(i, n): the first and last eighth of the layers and every
// third layer in between.
bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// The 32-block type llama-quantize falls back to when a row is not a multiple of 256.
GgmlType fallback(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_K:
      return GgmlType::Q5_0;
    case GgmlType::Q5_K:
      return GgmlType::Q5_1;
    case GgmlType::Q6_K:
      return GgmlType::Q8_0;
    default:
      return t;
  }
}

int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::stoi(name.substr(4));
}

GgmlType mix_type(const std::string& name, uint64_t cols, int n_layers, GgmlType base) {
  GgmlType t = base;
  const int layer = layer_of(name);
  if (name == "output.weight") {
    t = GgmlType::Q6_K;
  } else if ((name.find("attn_v.weight") != std::string::npos ||
              name.find("ffn_down.weight") != std::string::npos) &&
             more_bits(layer, n_layers)) {
    t = GgmlType::Q6_K;
  }
  return cols % 256 == 0 ? t : fallback(t);
}

// The F32 fixture re-encoded tensor by tensor: 2-D weights in their mix type through pv's
// quantizers, everything else (norms, biases, metadata) as it is.
std::vector<uint8_t> mixed_gguf(const pv::model::GgufFile& f32, int n_layers, GgmlType base,
                                std::map<GgmlType, int>* types_used) {
  pv::model::GgufWriter w;
  for (const auto& kv : f32.kvs) {
    if (kv.key != "general.alignment") w.add(kv.key, kv.value);
  }
  for (const auto& t : f32.tensors) {
    if (t.dims.size() != 2) {
      w.add_tensor(t.name, t.dims, t.type, std::vector<uint8_t>(t.data, t.data + t.nbytes));
      continue;
    }
    const uint64_t cols = t.dims[0], rows = t.dims[1];
    const GgmlType type = mix_type(t.name, cols, n_layers, base);
    ++(*types_used)[type];
    const size_t rb = pv::kernels::row_bytes(type, static_cast<int64_t>(cols));
    std::vector<uint8_t> out(rb * rows);
    std::vector<float> row(cols);
    for (uint64_t r = 0; r < rows; ++r) {
      std::memcpy(row.data(), t.data + r * cols * 4, cols * 4);
      pv::kernels::quantize_row(type, row.data(), out.data() + r * rb, static_cast<int64_t>(cols));
    }
    w.add_tensor(t.name, t.dims, type, std::move(out));
  }
  return w.serialize();
}

TEST(ModelLoader, MixedQuantLayoutsTrackF32) {
  const auto spec = mixed_spec();
  const std::vector<uint8_t> f32_bytes =
      pv::model::fixture_gguf(spec, GgmlType::F32, nullptr).serialize();
  const auto f32_file = pv::model::MappedFile::from_bytes("mixed-f32.gguf", f32_bytes);
  const pv::model::GgufFile f32 = pv::model::read_gguf(f32_file);
  const auto ref = prompt_logits(pv::model::load_gguf_model(f32_file));
  const int V = spec.vocab;

  struct Mix {
    const char* name;
    GgmlType base;
    std::set<GgmlType> expect;  // every type the layout must use
    double nmse_fallback;
  };
  const Mix mixes[] = {
      {"q4_k_m",
       GgmlType::Q4_K,
       {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_0, GgmlType::Q8_0},
       0.06},
      {"q5_k_m",
       GgmlType::Q5_K,
       {GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q5_1, GgmlType::Q8_0},
       0.02},
  };
  for (const Mix& mix : mixes) {
    std::map<GgmlType, int> used;
    const std::vector<uint8_t> bytes = mixed_gguf(f32, spec.n_layers, mix.base, &used);
    std::string types;
    for (const auto& [t, n] : used) {
      types += std::string(pv::kernels::type_name(t)) + "x" + std::to_string(n) + " ";
    }
    std::printf("%s: %s\n", mix.name, types.c_str());
    for (GgmlType t : mix.expect) {
      EXPECT_TRUE(used.count(t)) << mix.name << " layout lacks " << pv::kernels::type_name(t);
    }
    const auto m = pv::model::load_gguf_model(
        pv::model::MappedFile::from_bytes(std::string("mixed-") + mix.name + ".gguf", bytes));
    const auto got = prompt_logits(m);
    const double bound =
        pv::testing::threshold(std::string("nmse_max_") + mix.name, mix.nmse_fallback);
    const auto c = compare_logit_rows(ref, got, V, bound);
    for (const auto& f : c.failures) ADD_FAILURE() << mix.name << " " << f;
    const double worst = c.worst_nmse;
    const int argmax_unexplained = c.argmax_unexplained;
    std::printf("%s: worst row nmse %.3g (bound %.3g)\n", mix.name, worst, bound);
    pv::testing::record_metric(std::string("nmse_max.") + mix.name, worst);
    pv::testing::record_metric(std::string("argmax_unexplained.") + mix.name, argmax_unexplained);
    pv::testing::record_metric(std::string("types.") + mix.name, static_cast<double>(used.size()));
  }
}

}  // namespace
