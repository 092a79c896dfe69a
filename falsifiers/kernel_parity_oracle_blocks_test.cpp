// Anchors the CUDA parity sweep to ggml itself: the known-answer blocks that ggml's own
// decoder produced (kernels/quant/testdata/ggml-blocks, part of the repository: a missing
// file fails the test) must come out of (1) the test's host reference decoder -- runs everywhere,
// so CI checks the reference the GPU is judged against -- and (2) the CUDA decoder, through the
// embedding lookup, on a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "falsifiers/support/op_reference.h"
#include "harness/testing/pv_test.h"

namespace pv::optest {
namespace {

struct OracleType {
  const char* file;
  GgmlType type;
  int values;
};
constexpr OracleType kOracle[] = {
    {"q4_0", GgmlType::Q4_0, 32},     {"q8_0", GgmlType::Q8_0, 32},
    {"q4_K", GgmlType::Q4_K, 256},    {"q6_K", GgmlType::Q6_K, 256},
    {"q4_1", GgmlType::Q4_1, 32},     {"q5_0", GgmlType::Q5_0, 32},
    {"q5_1", GgmlType::Q5_1, 32},     {"q2_K", GgmlType::Q2_K, 256},
    {"q3_K", GgmlType::Q3_K, 256},    {"q5_K", GgmlType::Q5_K, 256},
    {"iq4_nl", GgmlType::IQ4_NL, 32}, {"iq4_xs", GgmlType::IQ4_XS, 256}};

std::string oracle_dir() { return testing::source_dir() + "/kernels/quant/testdata/ggml-blocks"; }

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path + " (part of the repository)");
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct Oracle {
  std::vector<uint8_t> blocks;
  std::vector<float> values;
  int64_t cols = 0;
};

Oracle load(const std::string& dir, const OracleType& t) {
  Oracle o;
  o.blocks = read_all(dir + "/" + t.file + ".blocks");
  const auto raw = read_all(dir + "/" + t.file + ".f32");
  o.values.resize(raw.size() / 4);
  std::memcpy(o.values.data(), raw.data(), o.values.size() * 4);
  o.cols = static_cast<int64_t>(o.blocks.size() / kernels::traits(t.type).block_bytes) * t.values;
  return o;
}

size_t exact_matches(const std::vector<float>& a, const float* b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], 4) == 0 ? 1 : 0;
  return n;
}

TEST(CudaOracleBlocks, HostReferenceDecoderMatchesGgml) {
  const std::string dir = oracle_dir();
  double worst = 0;
  for (const auto& t : kOracle) {
    const Oracle o = load(dir, t);
    ASSERT_EQ(static_cast<int64_t>(o.values.size()), o.cols) << t.file;
    const auto ref = dequant_row(t.type, o.blocks.data(), o.cols);
    std::vector<float> ref32(ref.begin(), ref.end());
    const Compare c = compare(o.values.data(), ref32.data(), ref32.size());
    const size_t exact = exact_matches(o.values, ref32.data());
    std::printf("%s: %zu/%zu exact, nmse %.3g\n", t.file, exact, o.values.size(), c.nmse);
    testing::record_metric(std::string(t.file) + "_exact_fraction",
                           static_cast<double>(exact) / o.values.size());
    worst = std::max(worst, c.nmse);
    EXPECT_EQ(c.nonfinite, 0u) << t.file;
    EXPECT_LE(c.nmse, 1e-14) << t.file;
  }
  testing::record_metric("nmse_max", worst);
}

TEST(CudaOracleBlocks, CudaDecoderMatchesGgml) {
  PV_REQUIRE_CUDA_BACKEND(be);
  const std::string dir = oracle_dir();
  double worst = 0;
  for (const auto& t : kOracle) {
    const Oracle o = load(dir, t);
    kernels::TensorView v;
    v.name = std::string(t.file) + ".blocks";
    v.type = t.type;
    v.rows = 1;
    v.cols = o.cols;
    v.data = o.blocks.data();
    v.nbytes = o.blocks.size();
    const auto& w = be->prepare_weight(v);
    Guarded out(*be, static_cast<size_t>(o.cols));
    const int32_t tok = 0;
    be->embed(w, &tok, 1, out.get());
    size_t guard = 0, unwritten = 0;
    const auto got = out.fetch(&guard, &unwritten);
    const Compare c = compare(o.values.data(), got.data(), got.size());
    const size_t exact = exact_matches(o.values, got.data());
    std::printf("%s on CUDA: %zu/%zu exact, nmse %.3g, max_abs %.3g\n", t.file, exact,
                o.values.size(), c.nmse, c.max_abs);
    testing::record_metric(std::string(t.file) + "_exact_fraction",
                           static_cast<double>(exact) / o.values.size());
    worst = std::max(worst, c.nmse);
    EXPECT_EQ(c.nonfinite + guard + unwritten, 0u) << t.file;
    EXPECT_LE(c.nmse, 1e-14) << t.file;
  }
  testing::record_metric("nmse_max", worst);
}

}  // namespace
}  // namespace pv::optest
