// The CUDA side of the eight further dense GGUF block types (Q4_1, Q5_0, Q5_1, IQ4_NL,
// Q2_K, Q3_K, Q5_K, IQ4_XS), judged against ggml itself: the known-answer blocks in
// kernels/quant/testdata/ggml-blocks (or ../shared/oracle/ggml-blocks) hold random block
// bytes and the floats ggml's own decoder made of them.
//  * Decode: the device decoder (through the embedding lookup) reproduces ggml's floats bit
//    for bit, edge-case scale blocks included.
//  * Matvec (T = 1) and matmul (T > 1) over rows built from those blocks: against an f64
//    reference of ggml's decoded weights times the activations rounded to int8 per
//    activation block as the design states it (d = amax/127, codes nearbyint(x * 127/amax))
//    -- the backends sum exactly those integers, so only f32 rounding separates them -- and,
//    looser, against the f32 activations themselves. The shapes reach every form of the
//    kernels: rows not a multiple of the warps/row groups, one and several 8-token passes,
//    the column-stationary form (x rounded in the matvec, then its codes reused by a
//    second matvec of the same x), the row-streaming form (>= 8 rows per warp of a
//    132-SM GPU), and rows wider than one launch (column chunks adding into y).
// Without a device every case skips with fixture-absent: cuda-device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "falsifiers/support/op_reference.h"
#include "harness/testing/pv_test.h"

namespace pv::optest {
namespace {

struct QuantType {
  const char* file;
  GgmlType type;
};

std::string oracle_dir(const char* file) {
  const std::string src = testing::source_dir();
  for (const std::string& d :
       {src + "/kernels/quant/testdata/ggml-blocks", src + "/../shared/oracle/ggml-blocks"}) {
    if (std::ifstream(d + "/" + file + ".blocks").good()) return d;
  }
  return {};
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct Oracle {
  std::vector<uint8_t> blocks;  // 64 blocks back to back
  std::vector<float> values;    // ggml's decode of them
  size_t block_bytes = 0;
  int block_values = 0;
  int nblocks = 0;
};

// Loads the oracle of `t`; false (with the test failed) when the files are inconsistent.
bool load(const QuantType& t, Oracle* o) {
  const std::string dir = oracle_dir(t.file);
  if (dir.empty()) return false;
  const auto& tr = kernels::traits(t.type);
  o->block_bytes = tr.block_bytes;
  o->block_values = tr.block_values;
  o->blocks = read_all(dir + "/" + t.file + ".blocks");
  const auto raw = read_all(dir + "/" + t.file + ".f32");
  o->values.resize(raw.size() / 4);
  std::memcpy(o->values.data(), raw.data(), o->values.size() * 4);
  o->nblocks = static_cast<int>(o->blocks.size() / o->block_bytes);
  EXPECT_EQ(o->blocks.size() % o->block_bytes, 0u) << dir << "/" << t.file << ".blocks";
  EXPECT_EQ(o->values.size(), static_cast<size_t>(o->nblocks) * o->block_values)
      << dir << "/" << t.file << ".f32";
  return o->nblocks > 6 && o->values.size() == static_cast<size_t>(o->nblocks) * o->block_values;
}

#define PV_REQUIRE_ORACLE(t, o)                                                    \
  Oracle o;                                                                        \
  do {                                                                             \
    if (oracle_dir((t).file).empty()) PV_SKIP_FIXTURE_ABSENT("ggml-block-oracle"); \
    ASSERT_TRUE(load((t), &o)) << (t).file;                                        \
  } while (0)

size_t exact_matches(const std::vector<float>& a, const float* b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], 4) == 0 ? 1 : 0;
  return n;
}

void check_decode(const QuantType& t) {
  PV_REQUIRE_CUDA_BACKEND(be);
  PV_REQUIRE_ORACLE(t, o);
  kernels::TensorView v;
  v.name = std::string(t.file) + ".blocks";
  v.type = t.type;
  v.rows = 1;
  v.cols = static_cast<int64_t>(o.values.size());
  v.data = o.blocks.data();
  v.nbytes = o.blocks.size();
  const auto& w = be->prepare_weight(v);
  Guarded out(*be, o.values.size());
  const int32_t tok = 0;
  be->embed(w, &tok, 1, out.get());
  size_t guard = 0, unwritten = 0;
  const auto got = out.fetch(&guard, &unwritten);
  const Compare c = compare(o.values.data(), got.data(), got.size());
  const size_t exact = exact_matches(o.values, got.data());
  std::printf("%s on CUDA: %zu/%zu exact, nmse %.3g, max_abs %.3g\n", t.file, exact,
              o.values.size(), c.nmse, c.max_abs);
  for (size_t i = 0, shown = 0; i < got.size() && shown < 5; ++i) {
    if (std::memcmp(&got[i], &o.values[i], 4) != 0) {
      std::printf("  value %zu (block %zu): ggml %.9g, cuda %.9g\n", i, i / o.block_values,
                  o.values[i], got[i]);
      ++shown;
    }
  }
  testing::record_metric("exact_fraction", static_cast<double>(exact) / o.values.size());
  testing::record_metric("nmse", c.nmse);
  EXPECT_EQ(guard + unwritten, 0u) << t.file;
  EXPECT_EQ(exact, o.values.size()) << t.file << ": the device decoder is not ggml's, bit for bit";
}

// rows x (nb blocks) weight matrix cut from the oracle's random-scale blocks 6.. (the first
// six, with edge-case scales up to 65504, would drown every other block's error in the
// NMSE; the decode test covers them), cycling; with ggml's decoded values beside it.
struct Matrix {
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // rows * cols, ggml's decode
  int64_t rows = 0, cols = 0;
};

Matrix build_matrix(const Oracle& o, int64_t rows, int64_t nb, int64_t offset) {
  Matrix m;
  m.rows = rows;
  m.cols = nb * o.block_values;
  m.bytes.resize(static_cast<size_t>(rows * nb) * o.block_bytes);
  m.values.resize(static_cast<size_t>(rows * m.cols));
  const int64_t usable = o.nblocks - 6;
  for (int64_t i = 0; i < rows * nb; ++i) {
    const int64_t src = 6 + (i * 7 + offset) % usable;  // 7 is prime to 58: every block occurs
    std::memcpy(m.bytes.data() + i * o.block_bytes, o.blocks.data() + src * o.block_bytes,
                o.block_bytes);
    std::memcpy(m.values.data() + i * o.block_values, o.values.data() + src * o.block_values,
                sizeof(float) * o.block_values);
  }
  return m;
}

// x rounded to int8 per activation block of `block` values, as the design states it
// (kernels/cuda/README.md "Numerics"): d = amax/127 and codes nearbyint(x * (127/amax)) in
// f32, clamped to +-127; returns d * code.
std::vector<double> round_act(const std::vector<float>& x, int block) {
  std::vector<double> out(x.size());
  for (size_t b = 0; b < x.size(); b += block) {
    float amax = 0.f;
    for (size_t i = b; i < b + block; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.f, id = amax > 0.f ? 127.f / amax : 0.f;
    for (size_t i = b; i < b + block; ++i)
      out[i] = static_cast<double>(d) * std::clamp(std::nearbyint(x[i] * id), -127.f, 127.f);
  }
  return out;
}

struct Case {
  int64_t rows, nb;  // nb blocks per row
  int T;
  const char* what;
};

// Bounds (the same for every type; a contract binding can set its own per type): against
// the int8-x reference only f32 roundings of the block sums separate the two (H200: at most
// 1.4e-13 over the eight types), so 1e-10 leaves three orders of margin and stays far below
// any wrong level, scale or min term (>= 1e-4); against f32 x the int8 rounding of x adds
// 1e-6 .. 6e-4 (most for Q4_1, whose min term cancels much of y), bounded at 1e-2.
void check_matmul(const QuantType& t, bool multi) {
  PV_REQUIRE_CUDA_BACKEND(be);
  PV_REQUIRE_ORACLE(t, o);
  const double nmse_max = testing::threshold("nmse_max", 1e-10);
  const double nmse_f32_max = testing::threshold("nmse_f32_max", 1e-2);
  const uint64_t seed = testing::seed();
  std::mt19937_64 rng(seed);
  const bool kquant = o.block_values == 256;
  std::vector<Case> cases;
  if (!multi) {
    cases = {{37, 3, 1, "column form, R = 1"},
             {1061, 29, 1, "column form, R = 2, odd row count"},
             {34001, 2, 1, "row-streaming form"},
             {5, kquant ? 300 : 1600, 1, "column chunks"}};
  } else {
    cases = {{37, 3, 3, "one token pass"},
             {1061, 29, 11, "two token passes"},
             {5, kquant ? 300 : 1600, 17, "three token passes, long rows"}};
  }
  HostBytes keep;
  double worst = 0, worst_f32 = 0;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Case& c = cases[ci];
    const Matrix m = build_matrix(o, c.rows, c.nb, static_cast<int64_t>(ci) * 13);
    keep.push_back(m.bytes);
    kernels::TensorView v;
    v.name = std::string(t.file) + "_w" + std::to_string(ci);
    v.type = t.type;
    v.rows = m.rows;
    v.cols = m.cols;
    v.data = keep.back().data();
    v.nbytes = keep.back().size();
    const auto& w = be->prepare_weight(v);
    const std::vector<float> x = random_floats(static_cast<size_t>(c.T * m.cols), rng);
    const std::vector<double> xq = round_act(x, o.block_values);
    std::vector<double> ref(static_cast<size_t>(c.T * m.rows)), ref_f32(ref.size());
    for (int tk = 0; tk < c.T; ++tk) {
      for (int64_t r = 0; r < m.rows; ++r) {
        double s = 0, s32 = 0;
        const float* wr = m.values.data() + r * m.cols;
        const size_t x0 = static_cast<size_t>(tk * m.cols);
        for (int64_t k = 0; k < m.cols; ++k) {
          s += static_cast<double>(wr[k]) * xq[x0 + k];
          s32 += static_cast<double>(wr[k]) * x[x0 + k];
        }
        ref[tk * m.rows + r] = s;
        ref_f32[tk * m.rows + r] = s32;
      }
    }
    Guarded dx(*be, x.size(), x.data());
    // Twice with the same x: the second matmul reads the codes the first one left.
    for (int pass = 0; pass < 2; ++pass) {
      Guarded y(*be, ref.size());
      be->matmul(w, dx.get(), c.T, y.get());
      size_t guard = 0, unwritten = 0;
      const auto got = y.fetch(&guard, &unwritten);
      const Compare ci8 = compare(ref.data(), got.data(), got.size());
      const Compare cf = compare(ref_f32.data(), got.data(), got.size());
      std::printf(
          "%s %lldx%lld T=%d (%s, %s): nmse vs int8-x reference %.3g, vs f32-x %.3g, max_abs "
          "%.3g\n",
          t.file, static_cast<long long>(m.rows), static_cast<long long>(m.cols), c.T, c.what,
          pass == 0 ? "x rounded" : "codes reused", ci8.nmse, cf.nmse, ci8.max_abs);
      worst = std::max(worst, ci8.nmse);
      worst_f32 = std::max(worst_f32, cf.nmse);
      EXPECT_EQ(ci8.nonfinite + guard + unwritten, 0u) << t.file << " " << c.what;
      EXPECT_LE(ci8.nmse, nmse_max) << t.file << " " << c.what << " pass " << pass;
      EXPECT_LE(cf.nmse, nmse_f32_max) << t.file << " " << c.what << " pass " << pass;
    }
  }
  testing::record_metric("nmse_max", worst);
  testing::record_metric("nmse_f32_max", worst_f32);
}

constexpr QuantType kQ4_1{"q4_1", GgmlType::Q4_1}, kQ5_0{"q5_0", GgmlType::Q5_0},
    kQ5_1{"q5_1", GgmlType::Q5_1}, kIQ4_NL{"iq4_nl", GgmlType::IQ4_NL},
    kQ2_K{"q2_K", GgmlType::Q2_K}, kQ3_K{"q3_K", GgmlType::Q3_K}, kQ5_K{"q5_K", GgmlType::Q5_K},
    kIQ4_XS{"iq4_xs", GgmlType::IQ4_XS};

#define PV_QUANT_TYPE_CASES(T)                                    \
  TEST(CudaQuantTypes, Decode_##T) { check_decode(k##T); }        \
  TEST(CudaQuantTypes, Matvec_##T) { check_matmul(k##T, false); } \
  TEST(CudaQuantTypes, Matmul_##T) { check_matmul(k##T, true); }

PV_QUANT_TYPE_CASES(Q4_1)
PV_QUANT_TYPE_CASES(Q5_0)
PV_QUANT_TYPE_CASES(Q5_1)
PV_QUANT_TYPE_CASES(IQ4_NL)
PV_QUANT_TYPE_CASES(Q2_K)
PV_QUANT_TYPE_CASES(Q3_K)
PV_QUANT_TYPE_CASES(Q5_K)
PV_QUANT_TYPE_CASES(IQ4_XS)

}  // namespace
}  // namespace pv::optest
