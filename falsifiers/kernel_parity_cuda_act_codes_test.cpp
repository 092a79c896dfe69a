// kernel-parity-v1, CUDA only: the CUDA backend reuses a matmul's int8 activation codes
// exactly while they are valid (FALSIFY-KP-*, kernel-parity-v1.yaml). Without a device
// the test skips "fixture-absent: cuda-device".
#include <gtest/gtest.h>

#include <cstring>

#if defined(PV_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

#include "falsifiers/support/kernel_parity_fixture.h"

namespace pv::optest {
namespace {

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

// A prepared weight follows the host bytes it mirrors, not only their address: one host
// buffer refilled in place (the same address and size, as when a model is freed and the
// next file is mapped where it was) must be uploaded again. A device cache keyed on the
// address served the first model's weights to the second (an F32 GGUF, then its HF
// directory) and the greedy tokens differed from token 0.
TEST(KernelParityCuda, PreparedWeightFollowsTheHostBytes) {
  PV_REQUIRE_CUDA_BACKEND(be);
  constexpr int64_t kRows = 8, kCols = 64;
  std::vector<uint8_t> bytes(kRows * kCols * sizeof(float));
  auto fill = [&](float v) {
    const std::vector<float> w(kRows * kCols, v);
    std::memcpy(bytes.data(), w.data(), bytes.size());
  };
  const std::vector<float> ones(kCols, 1.0f);
  float* x = be->alloc(kCols);
  float* y = be->alloc(kRows);
  be->upload(x, ones.data(), kCols);
  std::vector<float> got(kRows);
  int stale = 0;
  for (float v : {1.0f, 2.0f, -0.5f}) {
    fill(v);
    const kernels::Weight& w =
        be->prepare_weight(make_view("w", GgmlType::F32, kRows, kCols, bytes));
    be->matmul(w, x, 1, y);
    be->download(got.data(), y, kRows);
    for (float g : got) {
      if (g != v * kCols) {
        ++stale;
        ADD_FAILURE() << "weights refilled with " << v << ": matmul gives " << g << ", not "
                      << v * kCols;
        break;
      }
    }
  }
  be->free(x);
  be->free(y);
  testing::record_metric("stale_weights", stale);
}

}  // namespace
}  // namespace pv::optest
