// Falsifiers of contracts/quant-blocks-v1.yaml: the block decoders against ggml's own floats,
// the quantizers' error bounds, the block dot products (AVX2 and scalar) against the
// dequantized reference, and the rejection of rows that are not whole blocks.
#include "kernels/quant/quant_blocks.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "falsifiers/support/op_reference_ext.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/simd.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/quant/half.h"
#include "kernels/quant/quant.h"

namespace {

namespace cpu = pv::kernels::cpu;
namespace kernels = pv::kernels;
using pv::kernels::GgmlType;
using pv::kernels::TensorView;
using pv::testing::record_metric;

// The known answers are part of the repository (kernels/quant/testdata): a missing file is a
// broken checkout, so read_bytes fails the test rather than skipping it.
std::string oracle_dir() {
  return pv::testing::source_dir() + "/kernels/quant/testdata/ggml-blocks";
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

uint32_t bits_of(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

// ---- known answers -------------------------------------------------------------------

void check_known_answer(GgmlType type, const std::string& file) {
  const std::string dir = oracle_dir();
  const auto blocks = read_bytes(dir + "/" + file + ".blocks");
  const auto want_bytes = read_bytes(dir + "/" + file + ".f32");
  const auto& tr = pv::kernels::traits(type);
  ASSERT_EQ(blocks.size() % tr.block_bytes, 0u) << file << ".blocks is not whole blocks";
  const int64_t n = static_cast<int64_t>(blocks.size() / tr.block_bytes) * tr.block_values;
  ASSERT_EQ(want_bytes.size(), static_cast<size_t>(n) * 4) << file << ".f32 size";
  std::vector<float> got(static_cast<size_t>(n));
  kernels::dequantize_row(type, blocks.data(), got.data(), n);
  int64_t mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t want;
    std::memcpy(&want, want_bytes.data() + 4 * i, 4);
    if (bits_of(got[i]) != want) {
      if (mismatches == 0) {
        float w;
        std::memcpy(&w, &want, 4);
        const std::string where = file + " value " + std::to_string(i) + " (block " +
                                  std::to_string(i / tr.block_values) + "): got " +
                                  std::to_string(got[i]) + ", ggml " + std::to_string(w);
        pv::testing::record_counterexample(where);
        ADD_FAILURE() << where;
      }
      ++mismatches;
    }
  }
  record_metric("values", static_cast<double>(n));
  record_metric("bit_mismatches", static_cast<double>(mismatches));
  EXPECT_EQ(mismatches, 0);
}

TEST(QuantBlocks, KnownAnswerQ8_0) { check_known_answer(GgmlType::Q8_0, "q8_0"); }
TEST(QuantBlocks, KnownAnswerQ4_0) { check_known_answer(GgmlType::Q4_0, "q4_0"); }
TEST(QuantBlocks, KnownAnswerQ4_K) { check_known_answer(GgmlType::Q4_K, "q4_K"); }
TEST(QuantBlocks, KnownAnswerQ6_K) { check_known_answer(GgmlType::Q6_K, "q6_K"); }
TEST(QuantBlocks, KnownAnswerQ4_1) { check_known_answer(GgmlType::Q4_1, "q4_1"); }
TEST(QuantBlocks, KnownAnswerQ5_0) { check_known_answer(GgmlType::Q5_0, "q5_0"); }
TEST(QuantBlocks, KnownAnswerQ5_1) { check_known_answer(GgmlType::Q5_1, "q5_1"); }
TEST(QuantBlocks, KnownAnswerQ2_K) { check_known_answer(GgmlType::Q2_K, "q2_K"); }
TEST(QuantBlocks, KnownAnswerQ3_K) { check_known_answer(GgmlType::Q3_K, "q3_K"); }
TEST(QuantBlocks, KnownAnswerQ5_K) { check_known_answer(GgmlType::Q5_K, "q5_K"); }
TEST(QuantBlocks, KnownAnswerIQ4_NL) { check_known_answer(GgmlType::IQ4_NL, "iq4_nl"); }
TEST(QuantBlocks, KnownAnswerIQ4_XS) { check_known_answer(GgmlType::IQ4_XS, "iq4_xs"); }

// fp16/bf16: every half decodes and re-encodes to itself; f32 -> half/bf16 is the nearest
// value with ties to even (checked against neighbours in double) on edge cases and on random
// floats; and the F16/BF16 row codecs are these conversions.
TEST(QuantBlocks, HalfConversionsRoundToNearestEven) {
  int64_t failures = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = kernels::fp16_to_fp32(static_cast<uint16_t>(h));
    const bool nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
    if (nan ? !std::isnan(f) : kernels::fp32_to_fp16(f) != h) ++failures;
    const float b = kernels::bf16_to_fp32(static_cast<uint16_t>(h));
    const bool bnan = (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0;
    if (bnan ? !std::isnan(b) : kernels::fp32_to_bf16(b) != h) ++failures;
  }
  EXPECT_EQ(failures, 0) << "half/bf16 values that do not round-trip";

  struct Edge {
    float in;
    uint16_t half;
  };
  const Edge edges[] = {{65504.0f, 0x7bff},
                        {65519.99f, 0x7bff},
                        {65520.0f, 0x7c00},
                        {0x1p-24f, 0x0001},
                        {0x1p-25f, 0x0000},
                        {0x3p-25f, 0x0002},
                        {1.0f + 0x1p-11f, 0x3c00},
                        {1.0f + 0x3p-11f, 0x3c02},
                        {-0.0f, 0x8000},
                        {0x1p-14f, 0x0400},
                        {-2.0f, 0xc000}};
  for (const auto& e : edges) EXPECT_EQ(kernels::fp32_to_fp16(e.in), e.half) << e.in;
  EXPECT_EQ(kernels::fp32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
  EXPECT_EQ(kernels::fp32_to_bf16(1.0f + 0x3p-8f), 0x3f82);
  EXPECT_EQ(kernels::fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_TRUE(std::isnan(kernels::bf16_to_fp32(kernels::fp32_to_bf16(std::nanf("")))));
  EXPECT_TRUE(std::isnan(kernels::fp16_to_fp32(kernels::fp32_to_fp16(std::nanf("")))));

  std::mt19937_64 rng(pv::testing::seed());
  int64_t wrong = 0;
  auto nearest_even_ok = [](double x, double got, double lo, double hi, bool got_even) {
    const double e = std::fabs(got - x);
    return e <= std::fabs(lo - x) && e <= std::fabs(hi - x) &&
           (e != std::fabs(lo - x) || got == lo || got_even) &&
           (e != std::fabs(hi - x) || got == hi || got_even);
  };
  for (int i = 0; i < 200000; ++i) {
    // Floats over the whole finite half range and beyond into the subnormals.
    const float x = std::ldexp(std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng),
                               std::uniform_int_distribution<int>(-26, 16)(rng));
    const uint16_t h = kernels::fp32_to_fp16(x);
    if ((h & 0x7fffu) < 0x7bffu && (h & 0x7fffu) > 0) {
      const double got = kernels::fp16_to_fp32(h);
      const double lo = kernels::fp16_to_fp32(static_cast<uint16_t>(h - 1));
      const double hi = kernels::fp16_to_fp32(static_cast<uint16_t>(h + 1));
      if (!nearest_even_ok(x, got, lo, hi, (h & 1u) == 0)) ++wrong;
    }
    const uint16_t b = kernels::fp32_to_bf16(x);
    if ((b & 0x7fffu) < 0x7f7fu && (b & 0x7fffu) > 0) {
      const double got = kernels::bf16_to_fp32(b);
      const double lo = kernels::bf16_to_fp32(static_cast<uint16_t>(b - 1));
      const double hi = kernels::bf16_to_fp32(static_cast<uint16_t>(b + 1));
      if (!nearest_even_ok(x, got, lo, hi, (b & 1u) == 0)) ++wrong;
    }
  }
  record_metric("not_nearest_even", static_cast<double>(wrong));
  EXPECT_EQ(wrong, 0);

  std::vector<float> row(1000), back(1000);
  std::vector<uint16_t> enc(1000);
  for (auto& v : row) v = std::normal_distribution<float>()(rng);
  for (GgmlType t : {GgmlType::F16, GgmlType::BF16}) {
    kernels::quantize_row(t, row.data(), enc.data(), 1000);
    kernels::dequantize_row(t, enc.data(), back.data(), 1000);
    for (int i = 0; i < 1000; ++i) {
      const float want = t == GgmlType::F16 ? kernels::fp16_to_fp32(kernels::fp32_to_fp16(row[i]))
                                            : kernels::bf16_to_fp32(kernels::fp32_to_bf16(row[i]));
      ASSERT_EQ(bits_of(back[i]), bits_of(want)) << pv::kernels::type_name(t) << " value " << i;
    }
  }
}

// ---- quantize -> dequantize error bounds ---------------------------------------------

// Q8_0 and Q4_0 have hard per-value bounds in terms of the stored block scale d, and d itself
// is pinned to the block's amax (rounded up to fp16). f32 slack: x*(1/d) and d*q are each
// one f32 rounding, worth 2e-5 of d and 2^-22 of |x| at most.
struct BlockBounds {
  double max_err_over_d = 0;  // worst |err| / |d| seen
};

void check_q8_0_block(const std::vector<float>& x) {
  kernels::BlockQ8_0 b;
  std::vector<float> y(32);
  kernels::quantize_row(GgmlType::Q8_0, x.data(), &b, 32);
  kernels::dequantize_row(GgmlType::Q8_0, &b, y.data(), 32);
  float amax = 0.0f;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const double d = kernels::fp16_to_fp32(b.d);
  const double want_d = amax / 127.0f;
  RC_ASSERT(d >= want_d);                            // rounded up: nothing clamps
  RC_ASSERT(d <= want_d * (1 + 0x1p-10) + 0x1p-24);  // by at most one fp16 ulp
  for (int i = 0; i < 32; ++i) {
    RC_ASSERT(std::fabs(y[i] - x[i]) <= 0.50002 * d + 0x1p-22 * std::fabs(x[i]));
  }
}

void check_q4_0_block(const std::vector<float>& x) {
  kernels::BlockQ4_0 b;
  std::vector<float> y(32);
  kernels::quantize_row(GgmlType::Q4_0, x.data(), &b, 32);
  kernels::dequantize_row(GgmlType::Q4_0, &b, y.data(), 32);
  float amax = 0.0f, xmax = 0.0f;
  for (float v : x) {
    if (std::fabs(v) > amax) {
      amax = std::fabs(v);
      xmax = v;
    }
  }
  const double d = std::fabs(kernels::fp16_to_fp32(b.d));
  RC_ASSERT(d >= amax / 8.0);
  RC_ASSERT(d <= amax / 8.0 * (1 + 0x1p-10) + 0x1p-24);
  for (int i = 0; i < 32; ++i) {
    const double err = std::fabs(y[i] - x[i]), slack = 0x1p-22 * std::fabs(x[i]);
    RC_ASSERT(err <= 1.00002 * d + slack);  // the side opposite the extreme clamps at +7
    if (x[i] * xmax >= 0 || std::fabs(x[i]) <= 7.5 * d) RC_ASSERT(err <= 0.50002 * d + slack);
  }
}

// A block of 32 values: integers of up to 21 bits scaled by 2^e, e spanning the fp16 normal
// and subnormal scale ranges (d = amax/127 down to ~1e-9), plus a few exact zeros.
rc::Gen<std::vector<float>> gen_block() {
  return rc::gen::apply(
      [](std::vector<int> v, int e) {
        std::vector<float> x(v.size());
        for (size_t i = 0; i < v.size(); ++i) x[i] = std::ldexp(static_cast<float>(v[i]), e - 20);
        return x;
      },
      rc::gen::container<std::vector<int>>(
          32, rc::gen::oneOf(rc::gen::just(0), rc::gen::inRange(-(1 << 20), 1 << 20))),
      rc::gen::inRange(-22, 9));
}

// Records the Gaussian-row error metrics of a 32-value type and checks its NMSE bound.
void gaussian_metrics(GgmlType type, uint64_t seed, double nmse_bound);

TEST(QuantBlocks, QuantErrorQ8_0) {
  const uint64_t seed = pv::testing::seed();  // RC_PARAMS carries it when the harness runs this
  EXPECT_TRUE(rc::check("Q8_0: |x - x^| <= d/2, d = amax/127 rounded up",
                        [] { check_q8_0_block(*gen_block()); }));
  gaussian_metrics(GgmlType::Q8_0, seed, 3.5e-5);
}

TEST(QuantBlocks, QuantErrorQ4_0) {
  const uint64_t seed = pv::testing::seed();
  EXPECT_TRUE(rc::check("Q4_0: |x - x^| <= |d| (d/2 on the extreme's side), |d| = amax/8",
                        [] { check_q4_0_block(*gen_block()); }));
  gaussian_metrics(GgmlType::Q4_0, seed, 8.5e-3);
}

enum class Dist { Gauss, Uniform, Laplace, Outliers, Positive, Tiny, Huge };
constexpr Dist kDists[] = {Dist::Gauss,    Dist::Uniform, Dist::Laplace, Dist::Outliers,
                           Dist::Positive, Dist::Tiny,    Dist::Huge};
const char* dist_name(Dist d) {
  const char* names[] = {"gauss", "uniform", "laplace", "outliers", "positive", "tiny", "huge"};
  return names[static_cast<int>(d)];
}

std::vector<float> random_row(Dist dist, int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> nd;
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  std::exponential_distribution<float> ed(1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) {
    switch (dist) {
      case Dist::Gauss:
        v = nd(rng);
        break;
      case Dist::Uniform:
        v = ud(rng);
        break;
      case Dist::Laplace:
        v = ed(rng) * (ud(rng) < 0 ? -1.0f : 1.0f);
        break;
      case Dist::Outliers:
        v = nd(rng) * (ud(rng) > 0.99f ? 20.0f : 1.0f);
        break;
      case Dist::Positive:
        v = std::fabs(nd(rng)) + 0.5f;
        break;
      case Dist::Tiny:
        v = nd(rng) * 1e-3f;
        break;  // sub-block scales go subnormal in fp16
      case Dist::Huge:
        v = nd(rng) * 1e3f;
        break;
    }
  }
  return x;
}

struct ErrStats {
  double nmse = 0, rmse = 0, max_abs = 0;
  double max_over_sub = 0;  // worst |err| / (sub-block amax)
};

ErrStats roundtrip(GgmlType type, const std::vector<float>& x, int sub) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(pv::kernels::row_bytes(type, n));
  std::vector<float> y(x.size());
  kernels::quantize_row(type, x.data(), q.data(), n);
  kernels::dequantize_row(type, q.data(), y.data(), n);
  ErrStats s;
  double se = 0, ss = 0;
  for (int64_t b = 0; b < n; b += sub) {
    double amax = 0;
    for (int i = 0; i < sub; ++i) amax = std::max(amax, std::fabs(double{x[b + i]}));
    for (int i = 0; i < sub; ++i) {
      const double e = std::fabs(double{y[b + i]} - x[b + i]);
      se += e * e;
      ss += double{x[b + i]} * x[b + i];
      s.max_abs = std::max(s.max_abs, e);
      if (amax > 0) s.max_over_sub = std::max(s.max_over_sub, e / amax);
    }
  }
  s.nmse = se / ss;
  s.rmse = std::sqrt(se / static_cast<double>(n));
  return s;
}

void gaussian_metrics(GgmlType type, uint64_t seed, double nmse_bound) {
  std::mt19937_64 rng(seed);
  const ErrStats s = roundtrip(type, random_row(Dist::Gauss, 256 * 128, rng), 32);
  record_metric("nmse", s.nmse);
  record_metric("rmse", s.rmse);
  record_metric("max_abs_err", s.max_abs);
  EXPECT_LE(s.nmse, nmse_bound) << pv::kernels::type_name(type) << " on N(0,1) rows";
}

// Statistical bounds of the K-quants (no hard per-value bound exists: the least-squares
// search may clip an outlier to lower the block's total error). Per distribution: NMSE
// bound, then the bound on max |err| / sub-block amax. Measured values are ~10-20% below.
struct KBound {
  double nmse;
  double max_over_sub;
};

void check_k_quant(GgmlType type, int sub, const KBound (&bounds)[7]) {
  std::mt19937_64 rng(pv::testing::seed());
  const std::string tn(pv::kernels::type_name(type));
  double worst_nmse_ratio = 0;
  for (Dist d : kDists) {
    const auto x = random_row(d, 256 * 128, rng);
    const ErrStats s = roundtrip(type, x, sub);
    const KBound& b = bounds[static_cast<int>(d)];
    record_metric(std::string("nmse_") + dist_name(d), s.nmse);
    record_metric(std::string("max_over_subamax_") + dist_name(d), s.max_over_sub);
    if (d == Dist::Gauss) {
      record_metric("nmse", s.nmse);
      record_metric("rmse", s.rmse);
      record_metric("max_abs_err", s.max_abs);
    }
    EXPECT_LE(s.nmse, b.nmse) << tn << " " << dist_name(d);
    EXPECT_LE(s.max_over_sub, b.max_over_sub) << tn << " " << dist_name(d);
    worst_nmse_ratio = std::max(worst_nmse_ratio, s.nmse / b.nmse);
  }
  record_metric("worst_nmse_over_bound", worst_nmse_ratio);
}

// Q4_K's plain min/max mapping with the same 6-bit scale storage: the search must beat it.
std::vector<float> q4_K_minmax_roundtrip(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t b = 0; b < x.size(); b += 256) {
    float scale[8], mn[8], smax = 0, mmax = 0;
    for (int j = 0; j < 8; ++j) {
      float lo = 0, hi = x[b + 32 * j];
      for (int l = 0; l < 32; ++l) {
        lo = std::min(lo, x[b + 32 * j + l]);
        hi = std::max(hi, x[b + 32 * j + l]);
      }
      scale[j] = (hi - lo) / 15;
      mn[j] = -lo;
      smax = std::max(smax, scale[j]);
      mmax = std::max(mmax, mn[j]);
    }
    const float d = kernels::fp16_to_fp32(kernels::fp32_to_fp16_round_up(smax / 63));
    const float dm = kernels::fp16_to_fp32(kernels::fp32_to_fp16_round_up(mmax / 63));
    for (int j = 0; j < 8; ++j) {
      const float s = d * std::nearbyint(d > 0 ? scale[j] / d : 0);
      const float m = dm * std::nearbyint(dm > 0 ? mn[j] / dm : 0);
      for (int l = 0; l < 32; ++l) {
        const float v = x[b + 32 * j + l];
        const float q = s > 0 ? std::clamp(std::nearbyint((v + m) / s), 0.0f, 15.0f) : 0.0f;
        y[b + 32 * j + l] = s * q - m;
      }
    }
  }
  return y;
}

TEST(QuantBlocks, QuantErrorQ4_K) {
  const KBound bounds[7] = {{5.6e-3, 0.20}, {3.4e-3, 0.20}, {7.8e-3, 0.20}, {9.8e-3, 0.35},
                            {1.5e-3, 0.12}, {5.6e-3, 0.20}, {5.6e-3, 0.20}};
  check_k_quant(GgmlType::Q4_K, 32, bounds);

  // The search is real: on Gaussian rows it beats the plain min/max mapping by >= 10% NMSE.
  std::mt19937_64 rng(pv::testing::seed() + 1);
  const auto x = random_row(Dist::Gauss, 256 * 128, rng);
  const auto base = q4_K_minmax_roundtrip(x);
  double se = 0, ss = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    se += (double{base[i]} - x[i]) * (double{base[i]} - x[i]);
    ss += double{x[i]} * x[i];
  }
  const double search = roundtrip(GgmlType::Q4_K, x, 32).nmse, minmax = se / ss;
  record_metric("nmse_minmax_baseline", minmax);
  record_metric("nmse_search_over_minmax", search / minmax);
  EXPECT_LE(search, 0.9 * minmax);
}

TEST(QuantBlocks, QuantErrorQ6_K) {
  const KBound bounds[7] = {{3.5e-4, 0.06}, {2.0e-4, 0.06}, {5.3e-4, 0.06}, {1.1e-3, 0.08},
                            {2.5e-4, 0.06}, {3.5e-4, 0.06}, {3.5e-4, 0.06}};
  check_k_quant(GgmlType::Q6_K, 16, bounds);
}

// The types llama.cpp's usual mixes add. Their quantizers are least-squares searches like the
// K-quants', so their bounds are statistical too (measured values are 15-25% below; the
// max-error bounds have more headroom, a maximum varies more with the seed). The Gaussian
// NMSE bound is the contract's threshold (nmse_gauss, on the metric nmse); the others are
// here. Beside the error, every quantized block must decode the same through pv's decoder
// (ggml's, bit for bit: the KnownAnswer tests) and through the independent per-value reader
// of the ggml layout in falsifiers/support/op_reference_ext.h: the quantizer writes the
// fields where ggml reads them.
void check_new_type(GgmlType type, int sub, KBound (&bounds)[7]) {
  bounds[0].nmse = pv::testing::threshold("nmse_gauss", bounds[0].nmse);
  check_k_quant(type, sub, bounds);
  std::mt19937_64 rng(pv::testing::seed() + 2);
  const int64_t n = 256 * 16;
  const auto x = random_row(Dist::Laplace, n, rng);
  std::vector<uint8_t> q(pv::kernels::row_bytes(type, n));
  std::vector<float> y(static_cast<size_t>(n));
  kernels::quantize_row(type, x.data(), q.data(), n);
  kernels::dequantize_row(type, q.data(), y.data(), n);
  const auto& tr = pv::kernels::traits(type);
  double worst = 0;
  for (int64_t i = 0; i < n; i += tr.block_values) {
    const uint8_t* b = q.data() + tr.block_bytes * static_cast<size_t>(i / tr.block_values);
    double amax = 0;
    for (int k = 0; k < tr.block_values; ++k) amax = std::max(amax, std::fabs(double{x[i + k]}));
    for (int k = 0; k < tr.block_values; ++k) {
      const double ref = pv::optest::ext_block_value(type, b, k);
      worst = std::max(worst, std::fabs(ref - y[i + k]) / amax);
    }
  }
  record_metric("decode_vs_layout_reader_max", worst);  // f32 vs double rounding only
  EXPECT_LE(worst, 1e-6) << pv::kernels::type_name(type)
                         << ": pv's decoder and the layout reader disagree on quantized blocks";
}

TEST(QuantBlocks, QuantErrorQ4_1) {
  KBound b[7] = {{5.8e-3, 0.20}, {3.5e-3, 0.20}, {8.2e-3, 0.20}, {1.15e-2, 0.25},
                 {9.5e-4, 0.10}, {5.8e-3, 0.20}, {5.8e-3, 0.20}};
  check_new_type(GgmlType::Q4_1, 32, b);
}
TEST(QuantBlocks, QuantErrorQ5_0) {
  KBound b[7] = {{1.95e-3, 0.10}, {9.8e-4, 0.10},  {3.2e-3, 0.10}, {8.5e-3, 0.10},
                 {1.35e-3, 0.10}, {1.95e-3, 0.10}, {1.95e-3, 0.10}};
  check_new_type(GgmlType::Q5_0, 32, b);
}
TEST(QuantBlocks, QuantErrorQ5_1) {
  KBound b[7] = {{1.4e-3, 0.09}, {8.3e-4, 0.09}, {1.95e-3, 0.09}, {2.8e-3, 0.09},
                 {2.3e-4, 0.05}, {1.4e-3, 0.09}, {1.4e-3, 0.09}};
  check_new_type(GgmlType::Q5_1, 32, b);
}
TEST(QuantBlocks, QuantErrorIQ4_NL) {
  KBound b[7] = {{6.6e-3, 0.22}, {4.8e-3, 0.22}, {8.9e-3, 0.22}, {1.7e-2, 0.22},
                 {5.3e-3, 0.22}, {6.6e-3, 0.22}, {6.6e-3, 0.22}};
  check_new_type(GgmlType::IQ4_NL, 32, b);
}
// Q2_K's outlier bound is 1.5 sub-block amaxes: a 20x outlier sets the fp16 super-scale of
// the 4-bit scales, so a quiet neighbouring sub-block's scale can round to 0 and decode to
// its min alone (ggml's format has the same limit).
TEST(QuantBlocks, QuantErrorQ2_K) {
  KBound b[7] = {{8.2e-2, 0.70}, {5.7e-2, 0.70}, {0.10, 0.70},  {5.8e-2, 1.5},
                 {2.5e-2, 0.45}, {8.2e-2, 0.80}, {8.2e-2, 0.70}};
  check_new_type(GgmlType::Q2_K, 16, b);
}
TEST(QuantBlocks, QuantErrorQ3_K) {
  KBound b[7] = {{2.5e-2, 0.40}, {1.7e-2, 0.40}, {3.4e-2, 0.40}, {2.7e-2, 0.50},
                 {1.5e-2, 0.35}, {2.5e-2, 0.40}, {2.5e-2, 0.40}};
  check_new_type(GgmlType::Q3_K, 16, b);
}
TEST(QuantBlocks, QuantErrorQ5_K) {
  KBound b[7] = {{1.45e-3, 0.12}, {8.5e-4, 0.12},  {2.0e-3, 0.12}, {3.0e-3, 0.15},
                 {3.6e-4, 0.06},  {1.45e-3, 0.12}, {1.45e-3, 0.12}};
  check_new_type(GgmlType::Q5_K, 32, b);
}
TEST(QuantBlocks, QuantErrorIQ4_XS) {
  KBound b[7] = {{6.7e-3, 0.22}, {4.9e-3, 0.22}, {9.0e-3, 0.22}, {1.75e-2, 0.35},
                 {5.4e-3, 0.22}, {6.8e-3, 0.22}, {6.8e-3, 0.22}};
  check_new_type(GgmlType::IQ4_XS, 32, b);
}

// ---- block dot products ---------------------------------------------------------------

// Restores the default SIMD level when a test ends, whatever it forced.
struct SimdGuard {
  ~SimdGuard() { cpu::force_simd(std::nullopt); }
};

bool is_block_type(GgmlType t) { return pv::kernels::traits(t).block_values > 1; }
int act_block(GgmlType t) { return pv::kernels::traits(t).block_values == 256 ? 256 : 32; }

// dot_row at each SIMD level against sum(dequant(w) * x) in double. The bound is derived, not
// tuned: activations are rounded to int8 per block (|x - x^| <= amax_block/254), so the
// integer path may differ by sum|w^| * amax_block/254; f32 accumulation adds at most
// (n/8 + 64) * 2^-24 of sum|w^|(|x| + that). Both kernel sets share the activation codes and
// the integer block sums, so AVX2 and scalar differ only by the f32 part.
void check_dot(GgmlType type) {
  SimdGuard guard;
  std::mt19937_64 rng(pv::testing::seed());
  const bool blocks = is_block_type(type);
  const int bv = pv::kernels::traits(type).block_values;
  std::vector<int64_t> sizes = {4096, 14336, 2L * bv};
  if (bv == 1) sizes.insert(sizes.end(), {1, 7, 100});
  if (bv == 32) sizes.insert(sizes.end(), {32, 96});
  const bool have_avx2 = cpu::detected_simd() == cpu::SimdLevel::Avx2;
  double worst_ratio = 0, worst_simd_vs_scalar = 0, worst_rel = 0;
  double se = 0, sref = 0;  // NMSE of the kernel dots against the decoded-f32 dots
  for (int64_t n : sizes) {
    for (Dist xd : {Dist::Gauss, Dist::Outliers, Dist::Positive}) {
      const auto w = random_row(Dist::Gauss, n, rng);
      const auto x = random_row(xd, n, rng);
      std::vector<uint8_t> q(pv::kernels::row_bytes(type, n));
      std::vector<float> wd(static_cast<size_t>(n));
      kernels::quantize_row(type, w.data(), q.data(), n);
      kernels::dequantize_row(type, q.data(), wd.data(), n);
      double ref = 0, mag = 0, act = 0;
      for (int64_t b = 0; b < n; b += (blocks ? act_block(type) : n)) {
        const int64_t len = blocks ? act_block(type) : n;
        double amax = 0;
        for (int64_t i = b; i < b + len; ++i) amax = std::max(amax, std::fabs(double{x[i]}));
        for (int64_t i = b; i < b + len; ++i) {
          ref += double{wd[i]} * x[i];
          mag += std::fabs(double{wd[i]} * x[i]);
          if (blocks) act += std::fabs(double{wd[i]}) * amax / 254.0 * 1.0001;
        }
      }
      const double acc = (static_cast<double>(n) / 8 + 64) * 0x1p-24 * (mag + act);
      float got[2] = {0, 0};
      for (cpu::SimdLevel level : {cpu::SimdLevel::Scalar, cpu::SimdLevel::Avx2}) {
        if (level == cpu::SimdLevel::Avx2 && !have_avx2) continue;
        cpu::force_simd(level);
        const float r = cpu::dot_row(type, q.data(), x.data(), n);
        got[static_cast<int>(level)] = r;
        const double err = std::fabs(r - ref);
        se += err * err;
        sref += ref * ref;
        worst_ratio = std::max(worst_ratio, err / (act + acc));
        worst_rel = std::max(worst_rel, err / mag);
        EXPECT_LE(err, act + acc) << pv::kernels::type_name(type) << " n=" << n << " x~"
                                  << dist_name(xd) << " " << cpu::simd_name(level);
      }
      if (have_avx2) {
        const double diff = std::fabs(double{got[0]} - got[1]);
        worst_simd_vs_scalar = std::max(worst_simd_vs_scalar, diff / mag);
        EXPECT_LE(diff, 2 * acc) << pv::kernels::type_name(type) << " n=" << n << " avx2 vs scalar";
      }
    }
  }
  record_metric("err_over_bound_max", worst_ratio);
  record_metric("rel_err_max", worst_rel);  // |dot - ref| / sum|w x|
  record_metric("avx2_vs_scalar_rel_max", worst_simd_vs_scalar);
  record_metric("dot_nmse", sref > 0 ? se / sref : se);
  if (!have_avx2) PV_SKIP_FIXTURE_ABSENT("cpu-avx2");  // scalar checked; AVX2 half not run
}

TEST(QuantBlocks, DotF32) { check_dot(GgmlType::F32); }
TEST(QuantBlocks, DotF16) { check_dot(GgmlType::F16); }
TEST(QuantBlocks, DotBF16) { check_dot(GgmlType::BF16); }
TEST(QuantBlocks, DotQ8_0) { check_dot(GgmlType::Q8_0); }
TEST(QuantBlocks, DotQ4_0) { check_dot(GgmlType::Q4_0); }
TEST(QuantBlocks, DotQ4_K) { check_dot(GgmlType::Q4_K); }
TEST(QuantBlocks, DotQ6_K) { check_dot(GgmlType::Q6_K); }
TEST(QuantBlocks, DotQ4_1) { check_dot(GgmlType::Q4_1); }
TEST(QuantBlocks, DotQ5_0) { check_dot(GgmlType::Q5_0); }
TEST(QuantBlocks, DotQ5_1) { check_dot(GgmlType::Q5_1); }
TEST(QuantBlocks, DotIQ4_NL) { check_dot(GgmlType::IQ4_NL); }
TEST(QuantBlocks, DotQ2_K) { check_dot(GgmlType::Q2_K); }
TEST(QuantBlocks, DotQ3_K) { check_dot(GgmlType::Q3_K); }
TEST(QuantBlocks, DotQ5_K) { check_dot(GgmlType::Q5_K); }
TEST(QuantBlocks, DotIQ4_XS) { check_dot(GgmlType::IQ4_XS); }

// matmul (token tiles, multi-token kernels, row tiles, threads) computes exactly the row dots:
// bit-identical to dot_row per (token, row) at each SIMD level, with and without a pool; a
// non-finite
// activation gives NaN/inf in its own token's outputs only.
TEST(QuantBlocks, MatmulEqualsRowDots) {
  SimdGuard guard;
  std::mt19937_64 rng(pv::testing::seed());
  cpu::ThreadPool pool(3);
  const int64_t rows = 37, cols = 512;
  int64_t mismatches = 0, checked = 0;
  for (GgmlType type :
       {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0,
        GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
        GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q5_K, GgmlType::IQ4_XS}) {
    const size_t rb = pv::kernels::row_bytes(type, cols);
    std::vector<uint8_t> wq(rb * rows);
    for (int64_t r = 0; r < rows; ++r) {
      kernels::quantize_row(type, random_row(Dist::Gauss, cols, rng).data(), wq.data() + rb * r,
                            cols);
    }
    const TensorView w{"test.weight", type, rows, cols, wq.data(), wq.size()};
    // T values cover token groups of 1..4 and a partial token tile (tiles of 8).
    for (int T : {1, 2, 3, 6, 11}) {
      auto x = random_row(Dist::Gauss, cols * T, rng);
      const int bad_t = T > 4 ? 4 : -1;  // this token gets an inf activation
      if (bad_t >= 0)
        x[static_cast<size_t>(cols) * bad_t + 9] = std::numeric_limits<float>::infinity();
      for (cpu::SimdLevel level : {cpu::SimdLevel::Scalar, cpu::SimdLevel::Avx2}) {
        cpu::force_simd(level);
        for (cpu::ThreadPool* p : {static_cast<cpu::ThreadPool*>(nullptr), &pool}) {
          std::vector<float> y(static_cast<size_t>(rows) * T, -1.0f);
          cpu::matmul(w, x.data(), T, y.data(), p);
          for (int t = 0; t < T; ++t) {
            for (int64_t r = 0; r < rows; ++r) {
              const float want = cpu::dot_row(type, wq.data() + rb * r, x.data() + cols * t, cols);
              const float got = y[static_cast<size_t>(t * rows + r)];
              ++checked;
              if (t == bad_t) {
                if (std::isfinite(got)) ++mismatches;
              } else if (bits_of(got) != bits_of(want)) {
                ++mismatches;
              }
            }
          }
        }
      }
    }
  }
  record_metric("outputs_checked", static_cast<double>(checked));
  record_metric("mismatches", static_cast<double>(mismatches));
  EXPECT_EQ(mismatches, 0);
  std::vector<float> y(4, 7.0f);
  const std::vector<float> none;
  cpu::matmul(TensorView{"empty", GgmlType::F32, 4, 8, y.data(), 128}, none.data(), 0, y.data(),
              &pool);
  EXPECT_EQ(y[0], 7.0f) << "T = 0 must write nothing";
}

TEST(QuantBlocks, ThreadPoolCoversRangeOnce) {
  std::mt19937_64 rng(pv::testing::seed());
  for (int threads : {1, 2, 3, 8}) {
    cpu::ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int trial = 0; trial < 50; ++trial) {
      const int64_t n = std::uniform_int_distribution<int64_t>(0, 5000)(rng);
      const int64_t grain = std::uniform_int_distribution<int64_t>(1, 300)(rng);
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> short_chunks{0};
      pool.parallel_for(
          n,
          [&](int64_t b, int64_t e) {
            if (e - b < grain && e != n) ++short_chunks;
            for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
            // Nested use runs inline instead of deadlocking.
            pool.parallel_for(2, [](int64_t, int64_t) {});
          },
          grain);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i;
      EXPECT_EQ(short_chunks.load(), 0);
    }
    EXPECT_THROW(pool.parallel_for(
                     1000,
                     [](int64_t, int64_t e) {
                       if (e == 1000) throw std::runtime_error("x");
                     },
                     10),
                 std::runtime_error);
  }
}

// ---- rows that are not whole blocks ---------------------------------------------------

void expect_invalid(const std::function<void()>& fn, const std::vector<std::string>& needles,
                    const std::string& what) {
  try {
    fn();
    ADD_FAILURE() << what << ": accepted";
  } catch (const std::invalid_argument& e) {
    for (const auto& needle : needles) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << what << ": message \"" << e.what() << "\" does not name " << needle;
    }
  }
}

void check_rejects(GgmlType type) {
  const int bv = pv::kernels::traits(type).block_values;
  const std::string tn(pv::kernels::type_name(type));
  std::vector<uint8_t> buf(1 << 20);
  std::vector<float> f(1 << 16);
  int64_t rejected = 0;
  for (int64_t n :
       {int64_t{bv - 1}, int64_t{bv + 1}, int64_t{bv + bv / 2}, int64_t{4096 + 32}, int64_t{-bv}}) {
    if (n % bv == 0 && n >= 0) continue;  // 4096+32 is whole Q8_0/Q4_0 blocks
    const std::string nm = std::to_string(n);
    expect_invalid([&] { kernels::dequantize_row(type, buf.data(), f.data(), n); }, {tn, nm},
                   "dequantize_row n=" + nm);
    expect_invalid([&] { kernels::quantize_row(type, f.data(), buf.data(), n); }, {tn, nm},
                   "quantize_row n=" + nm);
    expect_invalid([&] { (void)cpu::dot_row(type, buf.data(), f.data(), n); }, {tn, nm},
                   "dot_row n=" + nm);
    const TensorView w{"blk.3.ffn_down.weight", type, 2, n, buf.data(), buf.size()};
    expect_invalid([&] { cpu::matmul(w, f.data(), 1, f.data(), nullptr); },
                   {"blk.3.ffn_down.weight", tn, nm}, "matmul cols=" + nm);
    rejected += 4;
  }
  // Non-finite input to the quantizer: refused, naming the index.
  std::vector<float> row(static_cast<size_t>(bv) * 2, 0.5f);
  row[static_cast<size_t>(bv) + 3] = std::nanf("");
  expect_invalid([&] { kernels::quantize_row(type, row.data(), buf.data(), 2 * bv); },
                 {tn, std::to_string(bv + 3), "not finite"}, "quantize_row NaN");
  row[static_cast<size_t>(bv) + 3] = -std::numeric_limits<float>::infinity();
  expect_invalid([&] { kernels::quantize_row(type, row.data(), buf.data(), 2 * bv); },
                 {tn, std::to_string(bv + 3), "not finite"}, "quantize_row -inf");
  rejected += 2;
  // Whole blocks but fewer bytes than rows * row_bytes: refused before any read.
  const int64_t cols = 2 * 256;
  const size_t need = 3 * pv::kernels::row_bytes(type, cols);
  const TensorView shortw{"blk.0.attn_q.weight", type, 3, cols, buf.data(), need - 1};
  expect_invalid([&] { cpu::matmul(shortw, f.data(), 1, f.data(), nullptr); },
                 {"blk.0.attn_q.weight", std::to_string(need - 1)}, "short tensor");
  record_metric("rejections_checked", static_cast<double>(rejected + 1));
}

TEST(QuantBlocks, RejectsPartialBlocksQ8_0) { check_rejects(GgmlType::Q8_0); }
TEST(QuantBlocks, RejectsPartialBlocksQ4_0) { check_rejects(GgmlType::Q4_0); }
TEST(QuantBlocks, RejectsPartialBlocksQ4_K) { check_rejects(GgmlType::Q4_K); }
TEST(QuantBlocks, RejectsPartialBlocksQ6_K) { check_rejects(GgmlType::Q6_K); }
TEST(QuantBlocks, RejectsPartialBlocksQ4_1) { check_rejects(GgmlType::Q4_1); }
TEST(QuantBlocks, RejectsPartialBlocksQ5_0) { check_rejects(GgmlType::Q5_0); }
TEST(QuantBlocks, RejectsPartialBlocksQ5_1) { check_rejects(GgmlType::Q5_1); }
TEST(QuantBlocks, RejectsPartialBlocksIQ4_NL) { check_rejects(GgmlType::IQ4_NL); }
TEST(QuantBlocks, RejectsPartialBlocksQ2_K) { check_rejects(GgmlType::Q2_K); }
TEST(QuantBlocks, RejectsPartialBlocksQ3_K) { check_rejects(GgmlType::Q3_K); }
TEST(QuantBlocks, RejectsPartialBlocksQ5_K) { check_rejects(GgmlType::Q5_K); }
TEST(QuantBlocks, RejectsPartialBlocksIQ4_XS) { check_rejects(GgmlType::IQ4_XS); }

}  // namespace
