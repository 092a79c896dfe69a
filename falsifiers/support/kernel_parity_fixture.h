// The shared half of the kernel-parity suite (contracts/kernel-parity-v1.yaml): the
// backend instances every TEST_P(KernelParity, ...) runs on (cpu, cpu_threads, cpu_scalar,
// cuda), the per-op-class NMSE bounds, the CPU thread-pool thresholds the cases must
// cross, the failure tally and the double-precision matmul reference. The op tests live
// in kernel_parity_test.cpp (matmul, embed, norms, rope, softmax, element-wise) and
// kernel_parity_attention_test.cpp (attention, bad input); the backend list is
// instantiated once, in kernel_parity_test.cpp.
#pragma once

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
inline void PrintTo(const BackendCase& b, std::ostream* os) { *os << b.name; }

inline const BackendCase kBackends[] = {
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

inline kernels::TensorView make_view(const std::string& name, GgmlType type, int64_t rows,
                                     int64_t cols, const std::vector<uint8_t>& bytes) {
  kernels::TensorView v;
  v.name = name;
  v.type = type;
  v.rows = rows;
  v.cols = cols;
  v.data = bytes.data();
  v.nbytes = bytes.size();
  return v;
}

inline std::vector<int64_t> sweep_cols(GgmlType t) {
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

inline int64_t act_block(GgmlType t) { return kernels::traits(t).block_values == 32 ? 32 : 256; }

inline std::string case_name(GgmlType t, int64_t rows, int64_t cols, int T) {
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

inline MatmulReference reference_matmul(GgmlType type, const std::vector<uint8_t>& bytes,
                                        int64_t rows, int64_t cols, const float* x, int T) {
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
inline Compare compare_matmul(const MatmulReference& ref, const std::vector<float>& y,
                              int64_t cols) {
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
inline std::vector<float> tie_floats(size_t n, int64_t block, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> k(-127, 126);
  std::uniform_int_distribution<int64_t> at(0, block - 1);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(k(rng)) + 0.5f;
  for (size_t b = 0; b < n; b += static_cast<size_t>(block))
    v[b + static_cast<size_t>(at(rng))] = (rng() & 1) ? 127.f : -127.f;
  return v;
}

}  // namespace pv::optest
