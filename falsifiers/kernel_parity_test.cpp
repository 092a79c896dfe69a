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

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <ostream>
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
#include "kernels/backend_factory.h"
#include "kernels/cpu/simd.h"

namespace pv::optest {
namespace {

// NMSE bounds per op class (contracts/kernel-parity-v1.yaml states the same numbers).
constexpr double kNmseMatmul = 1e-7;      // f32 accumulation over up to 4k products
constexpr double kNmseExact = 1e-14;      // add, mul: the same f32 operation on both sides
constexpr double kNmseTranscend = 1e-10;  // silu, softmax, rmsnorm, rope, embed, bias
constexpr double kNmseAttention = 1e-9;   // two reductions plus exp

// The CPU backend's thread-pool thresholds (kernels/cpu), restated so each case table can
// count the cases that run split on cpu_threads (the count is recorded, and must be > 0):
//  - matmul rows: ThreadPool::parallel_for(rows, body, grain kRowTile = 16) in matmul.cpp
//    runs inline for rows <= 16; 67 and more rows are cut into chunks over the threads;
//  - matmul activation rounding (block weights): shared over the pool when T >= 8
//    (matmul.cpp), so T = 9 rounds its rows on several threads;
//  - attention: CpuBackend::attention (cpu_backend.cpp) splits query heads over the pool
//    when threads > 1 and H * T * (pos0 + T) * head_dim >= 32768.
// Every other CPU op (embed, rmsnorm, add_bias, rope, softmax, add/silu/mul) runs on the
// calling thread. The pool splits at any size >= 2 (ThreadPool(1) has no workers); 4
// threads hand out several chunks per thread even on a 2-core machine.
constexpr int kCpuThreads = 4;
constexpr int64_t kCpuMatmulRowGrain = 16;
constexpr int kCpuActRoundSplitT = 8;
constexpr int64_t kCpuAttentionSplitWork = 32768;

// f32 exp overflows above this argument and underflows to 0 (denormals included) below
// -kExpUnderflow: softmax rows past either need the max-subtraction.
constexpr double kExpOverflow = 88.73;
constexpr double kExpUnderflow = 103.98;

enum class Kind { Cpu, CpuThreads, CpuScalar, Cuda };

struct BackendCase {
  const char* name;
  Kind kind;
  RopeAngles rope;  // the angle convention the backend's RoPE promises (op_reference.h)
};
void PrintTo(const BackendCase& b, std::ostream* os) { *os << b.name; }

const BackendCase kBackends[] = {
    {"cpu", Kind::Cpu, RopeAngles::F32Hf},
    {"cpu_threads", Kind::CpuThreads, RopeAngles::F32Hf},
    {"cpu_scalar", Kind::CpuScalar, RopeAngles::F32Hf},
    {"cuda", Kind::Cuda, RopeAngles::Exact},
};

// Forces a SIMD level for its lifetime and gives the choice back to the default
// (PV_CPU_SIMD, else the detected level) however the test ends.
class ScopedSimd {
 public:
  explicit ScopedSimd(kernels::cpu::SimdLevel level) { kernels::cpu::force_simd(level); }
  ~ScopedSimd() { kernels::cpu::force_simd(std::nullopt); }
  ScopedSimd(const ScopedSimd&) = delete;
  ScopedSimd& operator=(const ScopedSimd&) = delete;
};

class KernelParity : public ::testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override {
    const BackendCase& b = GetParam();
    RecordProperty("backend", b.name);
    if (b.kind == Kind::Cuda) {
      std::string why;
      if (!kernels::cuda_device_available(&why)) {
        std::printf("%s\n", why.c_str());
        PV_SKIP_FIXTURE_ABSENT("cuda-device");
      }
      be_ = kernels::make_cuda_backend(0);
    } else {
      if (b.kind == Kind::CpuScalar) simd_.emplace(kernels::cpu::SimdLevel::Scalar);
      be_ = kernels::make_backend("cpu", b.kind == Kind::CpuThreads ? kCpuThreads : 1);
      const auto simd = std::string(kernels::cpu::simd_name(kernels::cpu::active_simd()));
      RecordProperty("simd", simd);
      std::printf("cpu kernels: %s\n", simd.c_str());
    }
    RecordProperty("device", be_->device_description());
    std::printf("backend %s: %s\n", b.name, be_->device_description().c_str());
  }
  void TearDown() override {
    be_.reset();
    simd_.reset();
  }

  kernels::Backend& be() { return *be_; }
  bool cpu_threads() const { return GetParam().kind == Kind::CpuThreads; }

  // Records how many cases crossed a thread-pool threshold; on cpu_threads some must.
  void record_split(const char* what, size_t n) {
    testing::record_metric(std::string("cases_") + what, static_cast<double>(n));
    if (cpu_threads()) {
      EXPECT_GT(n, 0u) << "no case runs " << what << " on the thread pool";
    }
  }

 private:
  std::optional<ScopedSimd> simd_;  // declared first: restored after the backend is gone
  std::unique_ptr<kernels::Backend> be_;
};

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
  size_t cases() const { return cases_; }
  // Metrics under `prefix` (a test with two op classes keeps them apart).
  void record(const std::string& prefix = "") const {
    if (prefix.empty()) testing::record_metric("cases", static_cast<double>(cases_));
    testing::record_metric(prefix + "nmse_max", worst_nmse_);
    testing::record_metric(prefix + "nmse_bound", bound_);
    testing::record_metric(prefix + "cosine_min", min_cos_);
    testing::record_metric(prefix + "nonfinite", static_cast<double>(nonfinite_));
    testing::record_metric(prefix + "guard_violations", static_cast<double>(guard_));
    testing::record_metric(prefix + "unwritten", static_cast<double>(unwritten_));
    if (!first_failure_.empty()) testing::record_counterexample(first_failure_);
    std::printf("%s%zu cases, worst nmse %.3g (bound %.1g), min cosine %.9f\n", prefix.c_str(),
                cases_, worst_nmse_, bound_, min_cos_);
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
    default:
      if (kernels::traits(t).block_values == 32) {
        return {32, 96, 288, 4128};  // 288, 4128: not multiples of 256
      }
      return {256, 768, 2816, 3584};  // 11 and 14 super-blocks: odd block counts
  }
}

int64_t act_block(GgmlType t) { return kernels::traits(t).block_values == 32 ? 32 : 256; }

std::string case_name(GgmlType t, int64_t rows, int64_t cols, int T) {
  return std::string(kernels::type_name(t)) + " " + std::to_string(rows) + "x" +
         std::to_string(cols) + " T=" + std::to_string(T);
}

// y[t, r] in double over the dequantized bytes and x as the backend sees it (int8-rounded
// per activation block for block weights: equation matvec of the contract), and beside it
// the size of its terms, sum_c |w[r, c] * x'[t, c]|, which bounds what f32 accumulation can
// lose (equation nmse_matmul).
struct MatmulReference {
  std::vector<double> y, term_size;
};

MatmulReference reference_matmul(GgmlType type, const std::vector<uint8_t>& bytes, int64_t rows,
                                 int64_t cols, const float* x, int T) {
  MatmulReference ref;
  ref.y.resize(static_cast<size_t>(T) * rows);
  ref.term_size.resize(ref.y.size());
  const size_t rb = kernels::row_bytes(type, cols);
  const auto xr = is_block_type(type) ? act_rounded(type, x, T * cols)
                                      : std::vector<float>(x, x + static_cast<size_t>(T) * cols);
  for (int64_t r = 0; r < rows; ++r) {
    const auto wr = dequant_row(type, bytes.data() + r * rb, cols);
    for (int t = 0; t < T; ++t) {
      double s = 0, size = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double term = wr[c] * xr[static_cast<size_t>(t) * cols + c];
        s += term;
        size += std::fabs(term);
      }
      ref.y[static_cast<size_t>(t) * rows + r] = s;
      ref.term_size[static_cast<size_t>(t) * rows + r] = size;
    }
  }
  return ref;
}

// NMSE of a matmul judged against the size of each output's terms as well as its value:
// sum (ref - y)^2 / sum max(ref^2, term_size^2 / cols). For random rows the second term is
// below a typical ref^2 (|sum| ~ sqrt(cols) sigma, sum|.| ~ 0.64 cols sigma), so this is
// the plain NMSE; for a row whose terms happen to cancel (a single output near 0 out of
// 4096 terms) the plain NMSE measures only the conditioning of that row, and f32
// accumulation, correct to the last bit it can hold, would fail it.
Compare compare_matmul(const MatmulReference& ref, const std::vector<float>& y, int64_t cols) {
  Compare c = compare(ref.y.data(), y.data(), y.size());
  double se = 0, scale = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) continue;  // counted by compare() as nonfinite
    const double d = ref.y[i] - y[i];
    se += d * d;
    scale += std::max(ref.y[i] * ref.y[i],
                      ref.term_size[i] * ref.term_size[i] / static_cast<double>(cols));
  }
  c.nmse = scale > 0 ? se / scale : se;
  return c;
}

// Activations whose int8 rounding lands exactly on ties: every activation block holds one
// +-127 (so 127/amax is 1 and x * 127/amax is x exactly) and otherwise values k + 0.5.
// Round-half-even (nearbyint, equation matvec) and round-half-away-from-zero disagree on
// every other tie, which random normal activations almost never hit.
std::vector<float> tie_floats(size_t n, int64_t block, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> k(-127, 126);
  std::uniform_int_distribution<int64_t> at(0, block - 1);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(k(rng)) + 0.5f;
  for (size_t b = 0; b < n; b += static_cast<size_t>(block))
    v[b + static_cast<size_t>(at(rng))] = (rng() & 1) ? 127.f : -127.f;
  return v;
}

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

INSTANTIATE_TEST_SUITE_P(BackendOps, KernelParity, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<BackendCase>& info) {
                           return std::string(info.param.name);
                         });

// ---- CUDA only ---------------------------------------------------------------------------

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
TEST(KernelParityCuda, MatmulActivationCodesReusedOnlyWhileValid) {
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
    const Compare cmp = compare_matmul(ref, y, w.cols);
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
    // Plain NMSE: the conditioned one could only make a reused-codes result look closer.
    const double nmse_new = compare(ref_new.y.data(), y.data(), y.size()).nmse;
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
                compare_matmul(ref, y, kWide), guard, 0);
  }
  tally.record();
}

}  // namespace
}  // namespace pv::optest
