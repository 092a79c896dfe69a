// kernel-parity-v1: every Backend op x weight type x shape against an independent
// double-precision reference (double accumulation over the same dequantized GGUF bytes,
// support/op_reference.h), on every backend, in the style of llama.cpp's
// test-backend-ops: one table of cases per op (each case prints its vars in a failure),
// run on each backend instance, with per-op-class NMSE bounds, NaN/Inf detection, guard
// floats after every output that must stay untouched, and a sentinel that catches
// unwritten outputs. Tests read BackendOps/KernelParity.<Op>/<backend>:
//   cpu          CpuBackend(1) at the best SIMD level of this CPU (AVX2 where present);
//   cpu_threads  CpuBackend(kCpuThreads): the cases cross the pool's split thresholds
//                (kCpu* below), so matmul rows, prefill activation rounding and attention
//                heads run split over the threads;
//   cpu_scalar   CpuBackend(1) with the portable scalar kernels forced for the test;
//   cuda         device 0; without one the test skips "fixture-absent: cuda-device".
// The contract binds the cuda instances (FALSIFY-KP-001..007) and the cpu ones
// (FALSIFY-KP-008..013) as separate falsifiers.
#include <gtest/gtest.h>

#include "falsifiers/support/kernel_parity_fixture.h"

namespace pv::optest {
namespace {

// ---- matmul ----------------------------------------------------------------------------

struct MatmulCase {
  GgmlType type;
  int64_t rows, cols;
  int T;
  const char* why = "";  // the form or edge the case is there for
  bool ties = false;     // activations on int8 rounding ties (tie_floats)
  std::string vars() const {
    std::string s = "matmul type=" + std::string(kernels::type_name(type)) +
                    " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                    " T=" + std::to_string(T) + (ties ? " x=ties" : "");
    return *why ? s + " (" + why + ")" : s;
  }
};

std::vector<MatmulCase> matmul_cases() {
  std::vector<MatmulCase> v;
  for (GgmlType type : all_weight_types()) {
    const auto cols = sweep_cols(type);
    // rows 67 > 16 and T 9 >= 8 cross the CPU pool's row and activation-rounding splits.
    for (int64_t c : cols)
      for (int64_t rows : {1, 5, 67})
        for (int T : {1, 3, 9}) v.push_back({type, rows, c, T});
    v.push_back({type, 1003, cols.back(), 1, "many row blocks, odd count"});
    if (!is_block_type(type)) continue;
    // CUDA batch-1 forms: rows wider than one launch covers (4096 lane slots) are cut into
    // column chunks; two rows per group (>= 8 rows per SM) with an odd row count leave a
    // half last group; >= 8 rows per warp of a 132-SM GPU take the row-streaming form.
    v.push_back({type, 3, 133120, 1, "column chunks"});
    v.push_back({type, 4099, cols.back(), 1, "two rows per group, half last group"});
    v.push_back({type, 40009, cols[1], 1, "row-streaming"});
    for (int T : {1, 9}) v.push_back({type, 67, cols[1], T, "rounding ties", true});
  }
  return v;
}

TEST_P(KernelParity, Matmul) {
  HostBytes keep;  // weights' host bytes outlive the backend (Backend contract)
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseMatmul);
  size_t rows_split = 0, act_split = 0;
  for (const MatmulCase& m : matmul_cases()) {
    rows_split += m.rows > kCpuMatmulRowGrain;
    act_split += is_block_type(m.type) && m.T >= kCpuActRoundSplitT;
    const auto& bytes = keep.emplace_back(random_weight(m.type, m.rows, m.cols, rng));
    const auto& w = be().prepare_weight(make_view("w", m.type, m.rows, m.cols, bytes));
    const size_t n = static_cast<size_t>(m.T) * m.cols;
    const auto x = m.ties ? tie_floats(n, act_block(m.type), rng) : random_floats(n, rng);
    Guarded dx(be(), x.size(), x.data());
    Guarded dy(be(), static_cast<size_t>(m.T) * m.rows);
    be().matmul(w, dx.get(), m.T, dy.get());
    size_t guard = 0, unwritten = 0;
    const auto y = dy.fetch(&guard, &unwritten);
    const auto ref = reference_matmul(m.type, bytes, m.rows, m.cols, x.data(), m.T);
    tally.check(m.vars(), compare_matmul(ref, y, m.cols), guard, unwritten);
  }
  record_split("matmul_rows_split", rows_split);
  record_split("matmul_act_rounding_split", act_split);
  // A non-finite activation must poison, not vanish: rounding it to int8 would otherwise
  // hide an inf in x. Every row reads activation block 0, so with x[5] = inf every output
  // of a block-weight matmul (both CUDA batch-1 forms, and T > 1) is NaN.
  size_t finite_outputs = 0, inf_cases = 0;
  for (GgmlType type : all_weight_types()) {
    if (!is_block_type(type)) continue;
    for (auto [rows, T] : {std::pair<int64_t, int>{67, 1}, {40009, 1}, {5, 3}, {67, 9}}) {
      const int64_t cols = sweep_cols(type)[1];
      const std::string what = "matmul " + case_name(type, rows, cols, T) + " x[5]=inf";
      const auto& bytes = keep.emplace_back(random_weight(type, rows, cols, rng));
      const auto& w = be().prepare_weight(make_view("w", type, rows, cols, bytes));
      auto x = random_floats(static_cast<size_t>(T) * cols, rng);
      for (int t = 0; t < T; ++t) x[static_cast<size_t>(t) * cols + 5] = INFINITY;
      Guarded dx(be(), x.size(), x.data());
      Guarded dy(be(), static_cast<size_t>(T) * rows);
      be().matmul(w, dx.get(), T, dy.get());
      size_t guard = 0, unwritten = 0;
      const auto y = dy.fetch(&guard, &unwritten);
      size_t finite = 0;
      for (float v : y) finite += std::isfinite(v) ? 1 : 0;
      finite_outputs += finite;
      ++inf_cases;
      EXPECT_EQ(finite, 0u) << what << ": finite outputs";
      EXPECT_EQ(guard + unwritten, 0u) << what << ": guard floats overwritten or outputs unwritten";
    }
  }
  testing::record_metric("cases_inf_activation", static_cast<double>(inf_cases));
  testing::record_metric("finite_outputs_from_inf_activation", static_cast<double>(finite_outputs));
  tally.record();
}

// ---- embed, rmsnorm, bias ----------------------------------------------------------------

TEST_P(KernelParity, EmbedAllTypes) {
  HostBytes keep;
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseTranscend);
  const int64_t vocab = 37;
  const std::vector<int32_t> tokens = {0, 36, 5, 5, 17};
  for (GgmlType type : all_weight_types()) {
    for (int64_t cols : {sweep_cols(type)[0], sweep_cols(type)[2]}) {
      const auto& bytes = keep.emplace_back(random_weight(type, vocab, cols, rng));
      const auto& w = be().prepare_weight(make_view("token_embd.weight", type, vocab, cols, bytes));
      const int T = static_cast<int>(tokens.size());
      Guarded out(be(), static_cast<size_t>(T) * cols);
      be().embed(w, tokens.data(), T, out.get());
      size_t guard = 0, unwritten = 0;
      const auto y = out.fetch(&guard, &unwritten);
      std::vector<double> ref;
      const size_t rb = kernels::row_bytes(type, cols);
      for (int32_t tok : tokens) {
        const auto row = dequant_row(type, bytes.data() + tok * rb, cols);
        ref.insert(ref.end(), row.begin(), row.end());
      }
      tally.check("embed type=" + std::string(kernels::type_name(type)) +
                      " vocab=" + std::to_string(vocab) + " cols=" + std::to_string(cols) +
                      " tokens=0,36,5,5,17",
                  compare(ref.data(), y.data(), y.size()), guard, unwritten);
    }
  }
  tally.record();
}

struct NormCase {
  GgmlType type;
  int n, T;
  std::string vars() const {
    return "type=" + std::string(kernels::type_name(type)) + " n=" + std::to_string(n) +
           " T=" + std::to_string(T);
  }
};

TEST_P(KernelParity, RmsNormAndBias) {
  HostBytes keep;
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseTranscend);
  std::vector<NormCase> cases;
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16})
    for (int n : {1, 7, 896, 3584})
      for (int T : {1, 4}) cases.push_back({type, n, T});
  for (const NormCase& c : cases) {
    const int n = c.n, T = c.T;
    const auto& wb = keep.emplace_back(random_weight(c.type, 1, n, rng));
    const auto& w = be().prepare_weight(make_view("norm.weight", c.type, 1, n, wb));
    const auto wref = dequant_row(c.type, wb.data(), n);
    const auto x = random_floats(static_cast<size_t>(T) * n, rng, 2.f);
    const float eps = 1e-6f;
    // RMSNorm into a fresh buffer.
    Guarded dx(be(), x.size(), x.data());
    Guarded dy(be(), x.size());
    be().rmsnorm(dx.get(), w, T, n, eps, dy.get());
    size_t guard = 0, unwritten = 0;
    const auto y = dy.fetch(&guard, &unwritten);
    std::vector<double> ref(x.size());
    for (int t = 0; t < T; ++t) {
      double ss = 0;
      for (int i = 0; i < n; ++i) ss += static_cast<double>(x[t * n + i]) * x[t * n + i];
      const double inv = 1.0 / std::sqrt(ss / n + eps);
      for (int i = 0; i < n; ++i) ref[t * n + i] = x[t * n + i] * inv * wref[i];
    }
    tally.check("rmsnorm " + c.vars(), compare(ref.data(), y.data(), y.size()), guard, unwritten);
    // The same weight as a bias, added in place.
    be().add_bias(dx.get(), w, T);
    const auto yb = dx.fetch(&guard, &unwritten);
    for (int t = 0; t < T; ++t)
      for (int i = 0; i < n; ++i) ref[t * n + i] = static_cast<double>(x[t * n + i]) + wref[i];
    tally.check("add_bias " + c.vars(), compare(ref.data(), yb.data(), yb.size()), guard,
                unwritten);
  }
  tally.record();
}

// ---- rope --------------------------------------------------------------------------------

struct RopeCase {
  kernels::RopeStyle style;
  int H, D, T, pos0;
  float theta;
  std::string vars(RopeAngles angles) const {
    return std::string("rope ") +
           (style == kernels::RopeStyle::Interleaved ? "interleaved" : "half-split") +
           " H=" + std::to_string(H) + " D=" + std::to_string(D) + " T=" + std::to_string(T) +
           " pos0=" + std::to_string(pos0) + " theta=" + std::to_string(theta) +
           (angles == RopeAngles::F32Hf ? " angles=f32-hf" : " angles=exact");
  }
};

TEST_P(KernelParity, RopeBothConventions) {
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseTranscend);
  const RopeAngles angles = GetParam().rope;
  std::vector<RopeCase> cases;
  for (auto style : {kernels::RopeStyle::HalfSplit, kernels::RopeStyle::Interleaved})
    for (auto [H, D] : {std::pair{1, 2}, std::pair{3, 64}, std::pair{28, 128}})
      for (int T : {1, 5})
        for (int pos0 : {0, 7, 4093})
          for (float theta : {10000.f, 1000000.f}) cases.push_back({style, H, D, T, pos0, theta});
  for (const RopeCase& c : cases) {
    const auto x = random_floats(static_cast<size_t>(c.T) * c.H * c.D, rng);
    Guarded dx(be(), x.size(), x.data());
    be().rope(dx.get(), c.T, c.H, c.D, c.pos0, c.theta, c.style);
    size_t guard = 0, unwritten = 0;
    const auto y = dx.fetch(&guard, &unwritten);
    std::vector<double> ref(x.begin(), x.end());
    ref_rope(&ref, c.T, c.H, c.D, c.pos0, c.theta, c.style == kernels::RopeStyle::Interleaved,
             angles);
    tally.check(c.vars(angles), compare(ref.data(), y.data(), y.size()), guard, unwritten);
  }
  tally.record();
}

// ---- softmax, element-wise ---------------------------------------------------------------

struct SoftmaxCase {
  int rows, n;
  float offset, sd;  // logits offset + N(0, sd^2)
  std::string vars() const {
    std::ostringstream os;
    os << "softmax rows=" << rows << " n=" << n << " logits=" << offset << "+N(0," << sd << "^2)";
    return os.str();
  }
};

TEST_P(KernelParity, SoftmaxRows) {
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseTranscend);
  const SoftmaxCase cases[] = {
      {1, 1, 0, 3},
      {3, 7, 0, 3},
      {5, 1000, 0, 3},
      {2, 4099, 0, 3},
      {1, 151936, 0, 3},
      // exp overflows (or every term underflows to 0) without the max-subtraction.
      {3, 1000, 100, 3},
      {2, 4099, 1000, 3},
      {2, 1000, -1000, 3},
  };
  size_t overflow_cases = 0;
  for (const SoftmaxCase& c : cases) {
    auto x = random_floats(static_cast<size_t>(c.rows) * c.n, rng, c.sd);
    for (auto& v : x) v += c.offset;
    Guarded dx(be(), x.size(), x.data());
    be().softmax(dx.get(), c.rows, c.n);
    size_t guard = 0, unwritten = 0;
    const auto y = dx.fetch(&guard, &unwritten);
    std::vector<double> ref(x.size());
    bool overflows = false;
    for (int r = 0; r < c.rows; ++r) {
      const float* xr = x.data() + static_cast<size_t>(r) * c.n;
      double m = -INFINITY, s = 0;
      for (int i = 0; i < c.n; ++i) m = std::max(m, static_cast<double>(xr[i]));
      for (int i = 0; i < c.n; ++i) s += std::exp(xr[i] - m);
      for (int i = 0; i < c.n; ++i) ref[r * c.n + i] = std::exp(xr[i] - m) / s;
      overflows = overflows || m > kExpOverflow || m < -kExpUnderflow;
    }
    overflow_cases += overflows;
    tally.check(c.vars(), compare(ref.data(), y.data(), y.size()), guard, unwritten);
  }
  EXPECT_EQ(overflow_cases, 3u) << "the large-logit rows must overflow f32 exp unshifted";
  testing::record_metric("cases_overflow", static_cast<double>(overflow_cases));
  tally.record();
}

TEST_P(KernelParity, ElementwiseAddSiluMul) {
  std::mt19937_64 rng(testing::seed());
  Tally exact(kNmseExact), silu_t(kNmseTranscend);
  for (size_t n : {size_t{1}, size_t{7}, size_t{1000}, size_t{65537}}) {
    const auto a = random_floats(n, rng, 4.f), b = random_floats(n, rng, 4.f);
    Guarded da(be(), n, a.data()), db(be(), n, b.data()), dy(be(), n), dm(be(), n);
    be().silu(da.get(), n, dy.get());
    be().mul(da.get(), db.get(), n, dm.get());
    be().add(da.get(), db.get(), n);
    size_t guard = 0, unwritten = 0;
    std::vector<double> ref(n);
    const auto ys = dy.fetch(&guard, &unwritten);
    for (size_t i = 0; i < n; ++i) ref[i] = a[i] / (1.0 + std::exp(-static_cast<double>(a[i])));
    silu_t.check("silu n=" + std::to_string(n), compare(ref.data(), ys.data(), n), guard,
                 unwritten);
    const auto ym = dm.fetch(&guard, &unwritten);
    for (size_t i = 0; i < n; ++i) ref[i] = a[i] * b[i];
    exact.check("mul n=" + std::to_string(n), compare(ref.data(), ym.data(), n), guard, unwritten);
    const auto ya = da.fetch(&guard, &unwritten);
    for (size_t i = 0; i < n; ++i) ref[i] = static_cast<double>(a[i]) + b[i];
    exact.check("add n=" + std::to_string(n), compare(ref.data(), ya.data(), n), guard, unwritten);
  }
  testing::record_metric("cases", static_cast<double>(exact.cases() + silu_t.cases()));
  exact.record("add_mul_");
  silu_t.record("silu_");
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(BackendOps, KernelParity, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<BackendCase>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace pv::optest
