// kernel-parity-v1: every Backend op x weight type x shape, CUDA against an independent
// CPU reference (double accumulation over the same dequantized GGUF bytes), in the style
// of llama.cpp's test-backend-ops: per-op-class NMSE bounds, NaN/Inf detection, guard
// floats after every output that must stay untouched, and a sentinel that catches
// unwritten outputs. Without a CUDA device every test skips "fixture-absent: cuda-device".
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(PV_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

#include "falsifiers/support/op_reference.h"
#include "harness/testing/pv_test.h"

namespace pv::cudatest {
namespace {

// NMSE bounds per op class (contracts/kernel-parity-v1.yaml states the same numbers).
constexpr double kNmseMatmul = 1e-7;      // f32 accumulation over up to 4k products
constexpr double kNmseExact = 1e-14;      // add, mul: the same f32 operation on both sides
constexpr double kNmseTranscend = 1e-10;  // silu, softmax, rmsnorm, rope, embed, bias
constexpr double kNmseAttention = 1e-9;   // two reductions plus exp

// Collects the worst case of one op class and reports every failing case.
class Tally {
 public:
  explicit Tally(double bound) : bound_(bound) {}
  void check(const std::string& what, const Compare& c, size_t guard_hits, size_t unwritten) {
    ++cases_;
    worst_nmse_ = std::max(worst_nmse_, c.nmse);
    min_cos_ = std::min(min_cos_, c.cosine);
    nonfinite_ += c.nonfinite;
    guard_ += guard_hits;
    unwritten_ += unwritten;
    const bool ok = c.nmse <= bound_ && c.nonfinite == 0 && guard_hits == 0 && unwritten == 0;
    if (!ok) {
      std::ostringstream os;
      os << what << ": nmse " << c.nmse << " (bound " << bound_ << "), nonfinite " << c.nonfinite
         << ", guard floats overwritten " << guard_hits << ", outputs unwritten " << unwritten
         << ", max_abs " << c.max_abs;
      ADD_FAILURE() << os.str();
      if (first_failure_.empty()) first_failure_ = os.str();
    }
  }
  void record() const {
    testing::record_metric("cases", static_cast<double>(cases_));
    testing::record_metric("nmse_max", worst_nmse_);
    testing::record_metric("nmse_bound", bound_);
    testing::record_metric("cosine_min", min_cos_);
    testing::record_metric("nonfinite", static_cast<double>(nonfinite_));
    testing::record_metric("guard_violations", static_cast<double>(guard_));
    testing::record_metric("unwritten", static_cast<double>(unwritten_));
    if (!first_failure_.empty()) testing::record_counterexample(first_failure_);
    std::printf("%zu cases, worst nmse %.3g (bound %.1g), min cosine %.9f\n", cases_, worst_nmse_,
                bound_, min_cos_);
  }

 private:
  double bound_;
  size_t cases_ = 0, nonfinite_ = 0, guard_ = 0, unwritten_ = 0;
  double worst_nmse_ = 0, min_cos_ = 1;
  std::string first_failure_;
};

kernels::TensorView make_view(const std::string& name, GgmlType type, int64_t rows, int64_t cols,
                              const std::vector<uint8_t>& bytes) {
  kernels::TensorView v;
  v.name = name;
  v.type = type;
  v.rows = rows;
  v.cols = cols;
  v.data = bytes.data();
  v.nbytes = bytes.size();
  return v;
}

std::vector<int64_t> sweep_cols(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
      return {1, 7, 33, 256, 1000, 4096};
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
      return {32, 96, 288, 4128};  // 288, 4128: not multiples of 256
    default:
      return {256, 768, 2816, 3584};  // 11 and 14 super-blocks: odd block counts
  }
}

std::string case_name(GgmlType t, int64_t rows, int64_t cols, int T) {
  return std::string(kernels::type_name(t)) + " " + std::to_string(rows) + "x" +
         std::to_string(cols) + " T=" + std::to_string(T);
}

// y[t, r] in double over the dequantized bytes and x as the backend sees it (int8-rounded
// per activation block for block weights: equation matvec of the contract).
std::vector<double> reference_matmul(GgmlType type, const std::vector<uint8_t>& bytes, int64_t rows,
                                     int64_t cols, const float* x, int T) {
  std::vector<double> ref(static_cast<size_t>(T) * rows);
  const size_t rb = kernels::row_bytes(type, cols);
  const auto xr = is_block_type(type) ? act_rounded(type, x, T * cols)
                                      : std::vector<float>(x, x + static_cast<size_t>(T) * cols);
  for (int64_t r = 0; r < rows; ++r) {
    const auto wr = dequant_row(type, bytes.data() + r * rb, cols);
    for (int t = 0; t < T; ++t) {
      double s = 0;
      for (int64_t c = 0; c < cols; ++c) s += wr[c] * xr[static_cast<size_t>(t) * cols + c];
      ref[static_cast<size_t>(t) * rows + r] = s;
    }
  }
  return ref;
}

TEST(CudaKernelParity, MatmulAllTypesSweep) {
  PV_REQUIRE_CUDA_BACKEND(be);
  HostBytes keep;  // weights' host bytes outlive the backend (Backend contract)
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseMatmul);
  for (GgmlType type : all_weight_types()) {
    std::vector<std::tuple<int64_t, int64_t, int>> shapes;
    for (int64_t cols : sweep_cols(type))
      for (int64_t rows : {1, 5, 67})
        for (int T : {1, 3, 9}) shapes.emplace_back(rows, cols, T);
    shapes.emplace_back(1003, sweep_cols(type).back(), 1);  // many blocks of rows, odd count
    // Rows wider than one batch-1 launch covers (4096 lane slots): cut into column chunks.
    if (is_block_type(type)) shapes.emplace_back(3, 133120, 1);
    // Two rows per group (>= 8 rows per SM), an odd row count: the last group is half.
    if (is_block_type(type)) shapes.emplace_back(4099, sweep_cols(type).back(), 1);
    // Enough rows (>= 8 per warp of a 132-SM GPU) for the row-streaming batch-1 form.
    if (is_block_type(type)) shapes.emplace_back(40009, sweep_cols(type)[1], 1);
    for (auto [rows, cols, T] : shapes) {
      const auto& bytes = keep.emplace_back(random_weight(type, rows, cols, rng));
      const auto& w = be->prepare_weight(make_view("w", type, rows, cols, bytes));
      const auto x = random_floats(static_cast<size_t>(T) * cols, rng);
      Guarded dx(*be, x.size(), x.data());
      Guarded dy(*be, static_cast<size_t>(T) * rows);
      be->matmul(w, dx.get(), T, dy.get());
      size_t guard = 0, unwritten = 0;
      const auto y = dy.fetch(&guard, &unwritten);
      const auto ref = reference_matmul(type, bytes, rows, cols, x.data(), T);
      tally.check("matmul " + case_name(type, rows, cols, T),
                  compare(ref.data(), y.data(), y.size()), guard, unwritten);
    }
  }
  // A non-finite activation must poison, not vanish: rounding it to int8 would otherwise
  // hide an inf in x. Every row reads activation block 0, so with x[5] = inf every output
  // of a block-weight matvec (both batch-1 forms, and T > 1) is NaN, as on the CPU.
  size_t finite_outputs = 0;
  for (GgmlType type : all_weight_types()) {
    if (!is_block_type(type)) continue;
    for (auto [rows, T] : {std::pair<int64_t, int>{67, 1}, {40009, 1}, {5, 3}}) {
      const int64_t cols = sweep_cols(type)[1];
      const auto& bytes = keep.emplace_back(random_weight(type, rows, cols, rng));
      const auto& w = be->prepare_weight(make_view("w", type, rows, cols, bytes));
      auto x = random_floats(static_cast<size_t>(T) * cols, rng);
      for (int t = 0; t < T; ++t) x[static_cast<size_t>(t) * cols + 5] = INFINITY;
      Guarded dx(*be, x.size(), x.data());
      Guarded dy(*be, static_cast<size_t>(T) * rows);
      be->matmul(w, dx.get(), T, dy.get());
      size_t guard = 0, unwritten = 0;
      const auto y = dy.fetch(&guard, &unwritten);
      size_t finite = 0;
      for (float v : y) finite += std::isfinite(v) ? 1 : 0;
      finite_outputs += finite;
      EXPECT_EQ(finite, 0u) << "matmul " << case_name(type, rows, cols, T)
                            << " with an inf activation: finite outputs";
      EXPECT_EQ(guard + unwritten, 0u) << case_name(type, rows, cols, T);
    }
  }
  testing::record_metric("finite_outputs_from_inf_activation", static_cast<double>(finite_outputs));
  tally.record();
}

// Writes device memory behind the backend's back (so it cannot know x changed): a matmul
// that then still computes with the old x proves that it reused the rounded codes.
bool write_unseen(float* dst, const std::vector<float>& host) {
#if defined(PV_HAVE_CUDA)
  return cudaMemcpy(dst, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice) ==
         cudaSuccess;
#else
  (void)dst, (void)host;
  return false;
#endif
}

// The backend rounds x to int8 codes once and reuses them while the next block-weight
// matmuls read the same x unchanged (Q/K/V, gate/up). (1) Reuse happens: after a write the
// backend cannot see, a matmul still computes with the old x. (2) Every producer of codes
// (column-stationary one- and two-row forms, row-streaming form, Q8_0, quantize_rows for
// T > 1, column chunks of a wide row) is read back by a later matmul. (3) Every way x can
// change between two matmuls makes it round x again: another activation block (32 vs
// 256), another T (with no reallocation of the scratch to hide it), an op writing x (add,
// copy, upload, silu, an F32 matmul), a misaligned (staged) x; a write beside x does not.
// Each step is checked against the reference computed from x as downloaded from the
// device.
TEST(CudaKernelParity, MatmulActivationCodesReusedOnlyWhileValid) {
  PV_REQUIRE_CUDA_BACKEND(be);
  HostBytes keep;
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseMatmul);
  constexpr int64_t kCols = 3584;  // 14 super-blocks, 112 Q8_0 blocks
  struct W {
    GgmlType type;
    int64_t rows, cols;
    const kernels::Weight* w;
    const std::vector<uint8_t>* bytes;
  };
  auto make = [&](GgmlType type, int64_t rows, int64_t cols) {
    const auto& bytes = keep.emplace_back(random_weight(type, rows, cols, rng));
    return W{type, rows, cols, &be->prepare_weight(make_view("w", type, rows, cols, bytes)),
             &bytes};
  };
  // Batch-1 forms: 67 rows column-stationary one row per group, 4099 two rows per group,
  // 40009 row-streaming.
  const W a = make(GgmlType::Q4_K, 67, kCols), b = make(GgmlType::Q4_K, 40009, kCols),
          e = make(GgmlType::Q4_K, 4099, kCols), c = make(GgmlType::Q8_0, 67, kCols),
          c2 = make(GgmlType::Q8_0, 4099, kCols), q40 = make(GgmlType::Q4_0, 67, kCols),
          d = make(GgmlType::Q6_K, 5, kCols), f = make(GgmlType::F32, 67, kCols);
  const auto x0 = random_floats(3 * kCols + 8, rng);
  Guarded dx(*be, x0.size(), x0.data());
  Guarded other(*be, x0.size(), random_floats(x0.size(), rng).data());
  Guarded dy(*be, 40009 * 3);
  int step = 0;
  // y = w x over T rows of x at float offset `at`, checked against the reference over the
  // given x (default: x as the device holds it now). Returns the NMSE against it.
  auto check = [&](const W& w, int T, size_t at, const std::string& after,
                   const std::vector<float>* x_ref = nullptr) {
    be->matmul(*w.w, dx.get() + at, T, dy.get());
    size_t guard = 0, unwritten = 0, guard_y = 0;
    const auto x = dx.fetch(&guard, &unwritten);
    auto y = dy.fetch(&guard_y, &unwritten);  // dy is larger than any one output
    y.resize(static_cast<size_t>(T) * w.rows);
    const float* xs = (x_ref != nullptr ? x_ref->data() : x.data()) + at;
    const auto ref = reference_matmul(w.type, *w.bytes, w.rows, w.cols, xs, T);
    const Compare cmp = compare(ref.data(), y.data(), y.size());
    tally.check("step " + std::to_string(++step) + " " + case_name(w.type, w.rows, w.cols, T) +
                    " at x+" + std::to_string(at) + " after " + after,
                cmp, guard + guard_y, 0);
    return cmp.nmse;
  };
  auto refresh_x = [&] {  // new values through the backend: every cached code is stale
    be->upload(dx.get(), random_floats(x0.size(), rng).data(), x0.size());
  };

  // (1) Reuse happens.
  check(a, 1, 0, "a fresh x");
  std::vector<float> x_before(x0.size());
  be->download(x_before.data(), dx.get(), x_before.size());
  auto unseen = x_before;
  for (int64_t i = 0; i < kCols; ++i) unseen[i] = -2.f * unseen[i] + 0.5f;
  ASSERT_TRUE(write_unseen(dx.get(), unseen)) << "cudaMemcpy into x";
  check(b, 1, 0, "a write the backend did not see (codes of the old x reused)", &x_before);
  {
    be->matmul(*b.w, dx.get(), 1, dy.get());
    size_t guard = 0, unwritten = 0;
    auto y = dy.fetch(&guard, &unwritten);
    y.resize(b.rows);
    const auto ref_new = reference_matmul(b.type, *b.bytes, b.rows, kCols, unseen.data(), 1);
    const double nmse_new = compare(ref_new.data(), y.data(), y.size()).nmse;
    testing::record_metric("nmse_against_unseen_x", nmse_new);
    EXPECT_GT(nmse_new, 0.1) << "the matmul saw a write the backend did not: codes not reused";
  }
  be->upload(dx.get(), unseen.data(), kCols);  // the same values, now through the backend
  check(a, 1, 0, "the same write through the backend");

  // (2) Every producer's codes read back by a later matmul.
  refresh_x();
  check(b, 1, 0, "a fresh x (the row-streaming form rounds it)");
  check(a, 1, 0, "codes left by the row-streaming form");
  refresh_x();
  check(e, 1, 0, "a fresh x (the two-row form rounds it)");
  check(a, 1, 0, "codes left by the two-row form");
  check(e, 1, 0, "codes reused by the two-row form");
  check(d, 1, 0, "codes of a Q4_K matmul (Q6_K shares the 256 block)");
  check(c, 1, 0, "a Q4_K matmul (other activation block)");
  check(c2, 1, 0, "codes left by a Q8_0 matmul");
  check(q40, 1, 0, "codes left by a Q8_0 matmul (Q4_0 shares the 32 block)");
  check(a, 1, 0, "a Q8_0 matmul");
  check(a, 3, 0, "T=1 on the same pointer (quantize_rows rounds three rows)");
  check(e, 3, 0, "codes left by quantize_rows");
  // (3) x changes. T first, with the scratch already large enough for T=3.
  check(a, 1, 0, "T=3 on the same pointer");
  check(a, 3, 0, "T=1 on the same pointer again");
  be->silu(other.get(), kCols, dx.get() + 2 * kCols);
  check(a, 3, 0, "silu into x's third row");
  be->add(dx.get(), other.get(), kCols);
  check(a, 1, 0, "add into x");
  be->copy(dx.get() + 100, other.get(), 16);
  check(b, 1, 0, "a copy into the middle of x");
  check(a, 1, kCols, "x moved to its second row");
  be->upload(dx.get(), random_floats(kCols, rng).data(), kCols);
  check(b, 1, kCols, "a write before x (its first row) that does not touch it");
  be->upload(dx.get() + kCols, random_floats(kCols, rng).data(), kCols);
  check(a, 1, kCols, "upload into x (second row)");
  check(b, 1, kCols, "the same x");
  be->matmul(*f.w, other.get(), 1, dx.get() + kCols);  // float weights keep the codes
  check(a, 1, kCols, "an F32 matmul writing into x");
  check(a, 1, 1, "a misaligned x (staged)");
  be->add(dx.get() + 1, other.get(), 8);
  check(a, 1, 1, "add into the misaligned x");

  // A row wider than one launch: each column chunk leaves its codes, the next matmul reads.
  constexpr int64_t kWide = 133120;
  const W wide1 = make(GgmlType::Q4_K, 3, kWide), wide2 = make(GgmlType::Q4_K, 5, kWide);
  const auto xw = random_floats(kWide, rng);
  Guarded dxw(*be, xw.size(), xw.data());
  for (const W* w : {&wide1, &wide2, &wide1}) {
    be->matmul(*w->w, dxw.get(), 1, dy.get());
    size_t guard = 0, unwritten = 0;
    auto y = dy.fetch(&guard, &unwritten);
    y.resize(w->rows);
    const auto ref = reference_matmul(w->type, *w->bytes, w->rows, kWide, xw.data(), 1);
    tally.check("step " + std::to_string(++step) + " " + case_name(w->type, w->rows, kWide, 1) +
                    " (column chunks; codes reused after the first)",
                compare(ref.data(), y.data(), y.size()), guard, 0);
  }
  tally.record();
}

TEST(CudaKernelParity, EmbedAllTypes) {
  PV_REQUIRE_CUDA_BACKEND(be);
  HostBytes keep;  // weights' host bytes outlive the backend (Backend contract)
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseTranscend);
  const int64_t vocab = 37;
  const std::vector<int32_t> tokens = {0, 36, 5, 5, 17};
  for (GgmlType type : all_weight_types()) {
    for (int64_t cols : {sweep_cols(type)[0], sweep_cols(type)[2]}) {
      const auto& bytes = keep.emplace_back(random_weight(type, vocab, cols, rng));
      const auto& w = be->prepare_weight(make_view("token_embd.weight", type, vocab, cols, bytes));
      const int T = static_cast<int>(tokens.size());
      Guarded out(*be, static_cast<size_t>(T) * cols);
      be->embed(w, tokens.data(), T, out.get());
      size_t guard = 0, unwritten = 0;
      const auto y = out.fetch(&guard, &unwritten);
      std::vector<double> ref;
      const size_t rb = kernels::row_bytes(type, cols);
      for (int32_t tok : tokens) {
        const auto row = dequant_row(type, bytes.data() + tok * rb, cols);
        ref.insert(ref.end(), row.begin(), row.end());
      }
      tally.check("embed " + case_name(type, vocab, cols, T),
                  compare(ref.data(), y.data(), y.size()), guard, unwritten);
    }
  }
  tally.record();
}

TEST(CudaKernelParity, RmsNormAndBias) {
  PV_REQUIRE_CUDA_BACKEND(be);
  HostBytes keep;  // weights' host bytes outlive the backend (Backend contract)
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseTranscend);
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
    for (int n : {1, 7, 896, 3584}) {
      for (int T : {1, 4}) {
        const auto& wb = keep.emplace_back(random_weight(type, 1, n, rng));
        const auto& w = be->prepare_weight(make_view("norm.weight", type, 1, n, wb));
        const auto wref = dequant_row(type, wb.data(), n);
        const auto x = random_floats(static_cast<size_t>(T) * n, rng, 2.f);
        const float eps = 1e-6f;
        // RMSNorm into a fresh buffer.
        Guarded dx(*be, x.size(), x.data());
        Guarded dy(*be, x.size());
        be->rmsnorm(dx.get(), w, T, n, eps, dy.get());
        size_t guard = 0, unwritten = 0;
        const auto y = dy.fetch(&guard, &unwritten);
        std::vector<double> ref(x.size());
        for (int t = 0; t < T; ++t) {
          double ss = 0;
          for (int i = 0; i < n; ++i) ss += static_cast<double>(x[t * n + i]) * x[t * n + i];
          const double inv = 1.0 / std::sqrt(ss / n + eps);
          for (int i = 0; i < n; ++i) ref[t * n + i] = x[t * n + i] * inv * wref[i];
        }
        tally.check("rmsnorm " + case_name(type, T, n, T), compare(ref.data(), y.data(), y.size()),
                    guard, unwritten);
        // The same weight as a bias, added in place.
        be->add_bias(dx.get(), w, T);
        const auto yb = dx.fetch(&guard, &unwritten);
        for (int t = 0; t < T; ++t)
          for (int i = 0; i < n; ++i) ref[t * n + i] = static_cast<double>(x[t * n + i]) + wref[i];
        tally.check("add_bias " + case_name(type, T, n, T),
                    compare(ref.data(), yb.data(), yb.size()), guard, unwritten);
      }
    }
  }
  tally.record();
}

TEST(CudaKernelParity, RopeBothConventions) {
  PV_REQUIRE_CUDA_BACKEND(be);
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseTranscend);
  for (auto style : {kernels::RopeStyle::HalfSplit, kernels::RopeStyle::Interleaved}) {
    for (auto [H, D] : {std::pair{1, 2}, std::pair{3, 64}, std::pair{28, 128}}) {
      for (int T : {1, 5}) {
        for (int pos0 : {0, 7, 4093}) {
          for (float theta : {10000.f, 1000000.f}) {
            const auto x = random_floats(static_cast<size_t>(T) * H * D, rng);
            Guarded dx(*be, x.size(), x.data());
            be->rope(dx.get(), T, H, D, pos0, theta, style);
            size_t guard = 0, unwritten = 0;
            const auto y = dx.fetch(&guard, &unwritten);
            std::vector<double> ref(x.begin(), x.end());
            ref_rope(&ref, T, H, D, pos0, theta, style == kernels::RopeStyle::Interleaved);
            tally.check(
                std::string("rope ") +
                    (style == kernels::RopeStyle::Interleaved ? "interleaved" : "half-split") +
                    " H=" + std::to_string(H) + " D=" + std::to_string(D) +
                    " T=" + std::to_string(T) + " pos0=" + std::to_string(pos0),
                compare(ref.data(), y.data(), y.size()), guard, unwritten);
          }
        }
      }
    }
  }
  tally.record();
}

TEST(CudaKernelParity, SoftmaxRows) {
  PV_REQUIRE_CUDA_BACKEND(be);
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseTranscend);
  for (auto [rows, n] : {std::pair{1, 1}, std::pair{3, 7}, std::pair{5, 1000}, std::pair{2, 4099},
                         std::pair{1, 151936}}) {
    const auto x = random_floats(static_cast<size_t>(rows) * n, rng, 3.f);
    Guarded dx(*be, x.size(), x.data());
    be->softmax(dx.get(), rows, n);
    size_t guard = 0, unwritten = 0;
    const auto y = dx.fetch(&guard, &unwritten);
    std::vector<double> ref(x.size());
    for (int r = 0; r < rows; ++r) {
      double m = -INFINITY, s = 0;
      for (int i = 0; i < n; ++i) m = std::max(m, static_cast<double>(x[r * n + i]));
      for (int i = 0; i < n; ++i) s += std::exp(x[r * n + i] - m);
      for (int i = 0; i < n; ++i) ref[r * n + i] = std::exp(x[r * n + i] - m) / s;
    }
    tally.check("softmax " + std::to_string(rows) + "x" + std::to_string(n),
                compare(ref.data(), y.data(), y.size()), guard, unwritten);
  }
  tally.record();
}

TEST(CudaKernelParity, ElementwiseAddSiluMul) {
  PV_REQUIRE_CUDA_BACKEND(be);
  std::mt19937_64 rng(testing::seed());
  Tally exact(kNmseExact), silu_t(kNmseTranscend);
  for (size_t n : {size_t{1}, size_t{7}, size_t{1000}, size_t{65537}}) {
    const auto a = random_floats(n, rng, 4.f), b = random_floats(n, rng, 4.f);
    Guarded da(*be, n, a.data()), db(*be, n, b.data()), dy(*be, n), dm(*be, n);
    be->silu(da.get(), n, dy.get());
    be->mul(da.get(), db.get(), n, dm.get());
    be->add(da.get(), db.get(), n);
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
  exact.record();
  silu_t.record();
}

TEST(CudaKernelParity, AttentionPrefillAndIncremental) {
  PV_REQUIRE_CUDA_BACKEND(be);
  std::mt19937_64 rng(testing::seed());
  Tally tally(kNmseAttention);
  struct Shape {
    int H, Hkv, D;
  };
  for (Shape s : {Shape{1, 1, 2}, Shape{4, 2, 64}, Shape{14, 2, 64}, Shape{28, 4, 128}}) {
    for (int T : {1, 5}) {
      for (int pos0 : {0, 3, 17}) {
        const int L = pos0 + T;
        const auto q = random_floats(static_cast<size_t>(T) * s.H * s.D, rng);
        const auto k = random_floats(static_cast<size_t>(L) * s.Hkv * s.D, rng);
        const auto v = random_floats(static_cast<size_t>(L) * s.Hkv * s.D, rng);
        Guarded dq(*be, q.size(), q.data()), dk(*be, k.size(), k.data()),
            dv(*be, v.size(), v.data());
        Guarded dout(*be, q.size()), dsc(*be, static_cast<size_t>(s.H) * T * L),
            dpr(*be, static_cast<size_t>(s.H) * T * L);
        be->attention(dq.get(), dk.get(), dv.get(), {s.H, s.Hkv, s.D}, T, pos0, dout.get(),
                      dsc.get(), dpr.get());
        std::vector<double> ro, rs, rp;
        ref_attention(q, k, v, s.H, s.Hkv, s.D, T, pos0, &ro, &rs, &rp);
        const std::string name = "attention H=" + std::to_string(s.H) +
                                 " Hkv=" + std::to_string(s.Hkv) + " D=" + std::to_string(s.D) +
                                 " T=" + std::to_string(T) + " pos0=" + std::to_string(pos0);
        size_t guard = 0, unwritten = 0;
        auto y = dout.fetch(&guard, &unwritten);
        tally.check(name + " out", compare(ro.data(), y.data(), y.size()), guard, unwritten);
        y = dsc.fetch(&guard, &unwritten);
        tally.check(name + " scores", compare(rs.data(), y.data(), y.size()), guard, unwritten);
        y = dpr.fetch(&guard, &unwritten);
        tally.check(name + " probs", compare(rp.data(), y.data(), y.size()), guard, unwritten);
        // Without the optional outputs the result must not change (masked keys skipped).
        Guarded dout2(*be, q.size());
        be->attention(dq.get(), dk.get(), dv.get(), {s.H, s.Hkv, s.D}, T, pos0, dout2.get(),
                      nullptr, nullptr);
        y = dout2.fetch(&guard, &unwritten);
        tally.check(name + " out (no scores)", compare(ro.data(), y.data(), y.size()), guard,
                    unwritten);
      }
    }
  }
  tally.record();
}

TEST(CudaKernelParity, BadInputClearErrors) {
  PV_REQUIRE_CUDA_BACKEND(be);
  HostBytes keep;  // weights' host bytes outlive the backend (Backend contract)
  std::mt19937_64 rng(testing::seed());
  const auto& bytes = keep.emplace_back(random_weight(GgmlType::Q8_0, 4, 32, rng));
  const auto& w = be->prepare_weight(make_view("token_embd.weight", GgmlType::Q8_0, 4, 32, bytes));
  Guarded out(*be, 64);
  const int32_t bad[2] = {1, 4};
  try {
    be->embed(w, bad, 2, out.get());
    ADD_FAILURE() << "embedding token id 4 of a 4-row table did not throw";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("token id 4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("token_embd.weight"), std::string::npos) << e.what();
  }
  try {
    be->rmsnorm(out.get(), w, 1, 7, 1e-6f, out.get());
    ADD_FAILURE() << "rmsnorm with a 128-value weight over rows of 7 did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("token_embd.weight"), std::string::npos) << e.what();
  }
  try {
    be->attention(out.get(), out.get(), out.get(), {6, 4, 8}, 1, 0, out.get(), nullptr, nullptr);
    ADD_FAILURE() << "attention with 6 heads over 4 KV heads did not throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("n_kv_heads 4"), std::string::npos) << e.what();
  }
  size_t guard = 0, unwritten = 0;
  out.fetch(&guard, &unwritten);
  EXPECT_EQ(guard, 0u);
  // The backend stays usable after the rejected calls.
  const int32_t good[2] = {3, 0};
  be->embed(w, good, 2, out.get());
  be->synchronize();
}

}  // namespace
}  // namespace pv::cudatest
