// kernel-parity-v1, attention and bad input: TEST_P(KernelParity, ...) cases of the
// attention op (GQA ratios up to 8:1, head_dim up to 128, prefill and incremental, scores
// past f32 exp's range) and the clear errors every op gives for bad input, on every
// backend instance of support/kernel_parity_fixture.h (instantiated in
// kernel_parity_test.cpp).
#include <gtest/gtest.h>

#include "falsifiers/support/kernel_parity_fixture.h"

namespace pv::optest {
namespace {

// ---- attention ---------------------------------------------------------------------------

// Scores of random N(0,1) q and k, or scaled up past f32 exp's range: q = s*c*u + a and
// k = c*u + b with u a random +-1 vector over the head dim and a, b integers in [-2, 2].
// Every q.k is then an exact integer in f32 (|q.k| < 2^24), so the scores are s*c^2*sqrt(D)
// up to integer noise and the only f32 rounding before the softmax is the one product by
// 1/sqrt(D) (exact for D = 64): the case measures the softmax, not score rounding.
enum class Scores { Random, LargePositive, LargeNegative };

struct AttentionCase {
  int H, Hkv, D, T, pos0;
  Scores scores = Scores::Random;
  int c = 0;  // the scale-up c of large scores
  std::string vars() const {
    std::string s = "attention H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
                    " D=" + std::to_string(D) + " T=" + std::to_string(T) +
                    " pos0=" + std::to_string(pos0);
    if (scores == Scores::LargePositive) s += " scores=+large (c=" + std::to_string(c) + ")";
    if (scores == Scores::LargeNegative) s += " scores=-large (c=" + std::to_string(c) + ")";
    return s;
  }
  int64_t work() const { return static_cast<int64_t>(H) * T * (pos0 + T) * D; }
};

std::vector<AttentionCase> attention_cases() {
  std::vector<AttentionCase> v;
  struct Shape {
    int H, Hkv, D;
  };
  // 28:4:128 is Qwen2.5-7B's attention (hidden 3584), 32:4:128 TinyLlama's 8:1; 7:1 at
  // head_dim 64 and 14:2 the small Qwen2 shapes. T 5 over 0 cached rows is a prefill, T 1
  // over 3 or 17 an incremental step, T 5 over 3 or 17 a chunked prefill over a cache. On
  // cpu_threads work = H*T*(pos0+T)*D >= 32768 splits the heads (15 cases): 28:4:128 and
  // 32:4:128 at T 5 and at T 1 over 17 rows, 14:2:64 at T 5 over 3 or 17, 7:1:64 at T 5
  // over 17, and the large-score cases at head_dim 128; the rest stay on the calling
  // thread, the single-thread path of the same backend.
  for (Shape s : {Shape{1, 1, 2}, Shape{4, 2, 64}, Shape{7, 1, 64}, Shape{14, 2, 64},
                  Shape{28, 4, 128}, Shape{32, 4, 128}})
    for (int T : {1, 5})
      for (int pos0 : {0, 3, 17}) v.push_back({s.H, s.Hkv, s.D, T, pos0});
  // Scores near +-1000 (D 64: c 11 gives 121*64/8 = 968) and near +-180 at the canonical
  // head_dim 128 (c 4: 16*128/sqrt(128) = 181), prefill and incremental.
  for (Scores sc : {Scores::LargePositive, Scores::LargeNegative}) {
    v.push_back({4, 2, 64, 5, 0, sc, 11});
    v.push_back({4, 2, 64, 1, 17, sc, 11});
    v.push_back({28, 4, 128, 5, 0, sc, 4});
    v.push_back({32, 4, 128, 1, 17, sc, 4});
  }
  return v;
}

TEST_P(KernelParity, AttentionPrefillAndIncremental) {
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseAttention);
  size_t heads_split = 0, large = 0;
  for (const AttentionCase& a : attention_cases()) {
    heads_split += a.work() >= kCpuAttentionSplitWork;
    const int L = a.pos0 + a.T;
    const size_t nq = static_cast<size_t>(a.T) * a.H * a.D,
                 nkv = static_cast<size_t>(L) * a.Hkv * a.D;
    std::vector<float> q, k;
    if (a.scores == Scores::Random) {
      q = random_floats(nq, rng);
      k = random_floats(nkv, rng);
    } else {
      const float sign = a.scores == Scores::LargePositive ? 1.f : -1.f;
      std::uniform_int_distribution<int> noise(-2, 2), pm(0, 1);
      std::vector<float> u(a.D);
      for (auto& e : u) e = pm(rng) ? 1.f : -1.f;
      q.resize(nq);
      k.resize(nkv);
      for (size_t i = 0; i < nq; ++i) q[i] = sign * a.c * u[i % a.D] + noise(rng);
      for (size_t i = 0; i < nkv; ++i) k[i] = a.c * u[i % a.D] + noise(rng);
    }
    const auto v = random_floats(nkv, rng);
    Guarded dq(be(), q.size(), q.data()), dk(be(), k.size(), k.data()),
        dv(be(), v.size(), v.data());
    const size_t nsc = static_cast<size_t>(a.H) * a.T * L;
    Guarded dout(be(), q.size()), dsc(be(), nsc), dpr(be(), nsc);
    be().attention(dq.get(), dk.get(), dv.get(), {a.H, a.Hkv, a.D}, a.T, a.pos0, dout.get(),
                   dsc.get(), dpr.get());
    std::vector<double> ro, rs, rp;
    ref_attention(q, k, v, a.H, a.Hkv, a.D, a.T, a.pos0, &ro, &rs, &rp);
    if (a.scores != Scores::Random) {
      // The case must do what it says: unshifted, f32 exp overflows or every term is 0.
      const auto [lo, hi] = std::minmax_element(rs.begin(), rs.end());
      const bool past =
          a.scores == Scores::LargePositive ? *lo > kExpOverflow : *hi < -kExpUnderflow;
      EXPECT_TRUE(past) << a.vars() << ": scores " << *lo << " .. " << *hi;
      large += past;
    }
    const std::string name = a.vars();
    size_t guard = 0, unwritten = 0;
    auto y = dout.fetch(&guard, &unwritten);
    tally.check(name + " out", compare(ro.data(), y.data(), y.size()), guard, unwritten);
    y = dsc.fetch(&guard, &unwritten);
    tally.check(name + " scores", compare(rs.data(), y.data(), y.size()), guard, unwritten);
    y = dpr.fetch(&guard, &unwritten);
    tally.check(name + " probs", compare(rp.data(), y.data(), y.size()), guard, unwritten);
    // Without the optional outputs the result must not change (masked keys skipped).
    Guarded dout2(be(), q.size());
    be().attention(dq.get(), dk.get(), dv.get(), {a.H, a.Hkv, a.D}, a.T, a.pos0, dout2.get(),
                   nullptr, nullptr);
    y = dout2.fetch(&guard, &unwritten);
    tally.check(name + " out (no scores)", compare(ro.data(), y.data(), y.size()), guard,
                unwritten);
  }
  record_split("attention_heads_split", heads_split);
  testing::record_metric("cases_large_scores", static_cast<double>(large));
  tally.record();
}

// ---- bad input ---------------------------------------------------------------------------

TEST_P(KernelParity, BadInputClearErrors) {
  HostBytes keep;
  std::mt19937_64 rng(testing::seed());
  const auto& bytes = keep.emplace_back(random_weight(GgmlType::Q8_0, 4, 32, rng));
  const auto& w = be().prepare_weight(make_view("token_embd.weight", GgmlType::Q8_0, 4, 32, bytes));
  Guarded out(be(), 64);
  const int32_t bad[2] = {1, 4};
  int tried = 0, rejected = 0;  // bad calls made, and those that threw what they should
  try {
    ++tried;
    be().embed(w, bad, 2, out.get());
    ADD_FAILURE() << "embedding token id 4 of a 4-row table did not throw";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("token id 4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("token_embd.weight"), std::string::npos) << e.what();
    ++rejected;
  }
  try {
    ++tried;
    be().rmsnorm(out.get(), w, 1, 7, 1e-6f, out.get());
    ADD_FAILURE() << "rmsnorm with a 128-value weight over rows of 7 did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("token_embd.weight"), std::string::npos) << e.what();
    ++rejected;
  }
  try {
    ++tried;
    be().attention(out.get(), out.get(), out.get(), {6, 4, 8}, 1, 0, out.get(), nullptr, nullptr);
    ADD_FAILURE() << "attention with 6 heads over 4 KV heads did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("n_kv_heads 4"), std::string::npos) << e.what();
    ++rejected;
  }
  testing::record_metric("cases", tried);
  testing::record_metric("rejected", rejected);
  size_t guard = 0, unwritten = 0;
  out.fetch(&guard, &unwritten);
  EXPECT_EQ(guard, 0u);
  // The backend stays usable after the rejected calls.
  const int32_t good[2] = {3, 0};
  be().embed(w, good, 2, out.get());
  be().synchronize();
  const auto y = out.fetch(&guard, &unwritten);
  const auto row3 = dequant_row(GgmlType::Q8_0, bytes.data() + 3 * 34, 32);
  const auto row0 = dequant_row(GgmlType::Q8_0, bytes.data(), 32);
  std::vector<double> ref(row3.begin(), row3.end());
  ref.insert(ref.end(), row0.begin(), row0.end());
  const Compare c = compare(ref.data(), y.data(), y.size());
  EXPECT_LE(c.nmse, kNmseTranscend) << "embed after the rejected calls";
  EXPECT_EQ(c.nonfinite + guard, 0u) << "embed after the rejected calls";
}

}  // namespace
}  // namespace pv::optest
