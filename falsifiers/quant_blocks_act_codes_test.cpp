// FALSIFY-QB-056: the int8 activation codes the block-weight matmuls use are the same
// bytes in the scalar fallback and the AVX2 kernels, and both round half to even. The
// two sets are documented to produce the same codes (kernels/cpu/matmul_kernels.h), so
// "close" is not enough: a code one off at a tie is a different integer dot product.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "harness/testing/pv_test.h"
#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/simd.h"
#include "kernels/quant/quant_blocks.h"

namespace {

namespace cpu = pv::kernels::cpu;
using pv::kernels::BlockQ8A;
using pv::kernels::BlockQ8K;

// Activations of one block whose amax is 127, so the scale is 1 and every x*127/amax is x
// itself: half of them are exact ties k + 0.5 (the case the rounding rule decides), the
// rest random, with the signs mixed.
std::vector<float> block_with_ties(int n, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> k(-126, 125);
  std::uniform_real_distribution<float> u(-127.f, 127.f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) x[i] = i % 2 == 0 ? static_cast<float>(k(rng)) + 0.5f : u(rng);
  x[static_cast<size_t>(n) - 1] = (rng() & 1) ? 127.f : -127.f;
  return x;
}

// Round half to even, written out rather than taken from the rounding mode.
int8_t half_even(float v) {
  const double f = std::floor(static_cast<double>(v)), frac = static_cast<double>(v) - f;
  double r = frac > 0.5 ? f + 1 : (frac < 0.5 ? f : (std::fmod(f, 2.0) == 0 ? f : f + 1));
  r = std::max(-127.0, std::min(127.0, r));
  return static_cast<int8_t>(r);
}

template <typename Block>
void check_codes(int block_values, cpu::ActQuant* scalar_fn, cpu::ActQuant* avx2_fn,
                 const char* what) {
  std::mt19937_64 rng(pv::testing::seed());
  const bool have_avx2 = cpu::detected_simd() == cpu::SimdLevel::Avx2;
  int64_t blocks = 0, ties = 0, wrong_rounding = 0, differing_bytes = 0;
  for (int rep = 0; rep < 64; ++rep) {
    const int nb = 1 + rep % 4;
    std::vector<float> x;
    for (int b = 0; b < nb; ++b) {
      auto blk = block_with_ties(block_values, rng);
      x.insert(x.end(), blk.begin(), blk.end());
    }
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<Block> s(static_cast<size_t>(nb)), a(static_cast<size_t>(nb));
    std::memset(s.data(), 0, sizeof(Block) * s.size());
    std::memset(a.data(), 0, sizeof(Block) * a.size());
    scalar_fn(x.data(), s.data(), n);
    for (int b = 0; b < nb; ++b) {
      ++blocks;
      EXPECT_EQ(s[b].d, 1.0f) << what << ": the scale of a block with amax 127";
      for (int i = 0; i < block_values; ++i) {
        const float v = x[static_cast<size_t>(b) * block_values + i];
        ties += v != std::floor(v) && v - std::floor(v) == 0.5f;
        const int8_t want = half_even(v);
        if (s[b].qs[i] != want) {
          if (wrong_rounding++ == 0) {
            ADD_FAILURE() << what << " scalar code of " << v << " is " << int(s[b].qs[i])
                          << ", half to even gives " << int(want);
            pv::testing::record_counterexample(std::string(what) + " x=" + std::to_string(v) +
                                               " scalar code " + std::to_string(s[b].qs[i]));
          }
        }
      }
    }
    if (!have_avx2) continue;
    avx2_fn(x.data(), a.data(), n);
    const auto* pa = reinterpret_cast<const unsigned char*>(a.data());
    const auto* ps = reinterpret_cast<const unsigned char*>(s.data());
    for (size_t i = 0; i < sizeof(Block) * a.size(); ++i) differing_bytes += pa[i] != ps[i];
  }
  pv::testing::record_metric("blocks", static_cast<double>(blocks));
  pv::testing::record_metric("ties", static_cast<double>(ties));
  pv::testing::record_metric("scalar_codes_not_half_even", static_cast<double>(wrong_rounding));
  pv::testing::record_metric("avx2_vs_scalar_differing_bytes",
                             static_cast<double>(differing_bytes));
  EXPECT_GT(ties, 0) << "the blocks must contain exact ties";
  EXPECT_EQ(wrong_rounding, 0) << what;
  EXPECT_EQ(differing_bytes, 0) << what << ": AVX2 and scalar activation blocks differ";
  if (!have_avx2) PV_SKIP_FIXTURE_ABSENT("cpu-avx2");  // scalar checked; the comparison not run
}

TEST(QuantBlocks, ActivationCodesQ8AIdenticalScalarAvx2) {
  check_codes<BlockQ8A>(pv::kernels::kQK, cpu::scalar::quantize_act_q8a,
                        cpu::avx2::quantize_act_q8a, "Q8A");
}

TEST(QuantBlocks, ActivationCodesQ8KIdenticalScalarAvx2) {
  check_codes<BlockQ8K>(pv::kernels::kQKK, cpu::scalar::quantize_act_q8k,
                        cpu::avx2::quantize_act_q8k, "Q8K");
}

}  // namespace
