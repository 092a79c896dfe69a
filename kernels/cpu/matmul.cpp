// matmul(): activation quantization once per token, then rows split over the thread pool.
// For T > 1 the rows are walked in small tiles and each tile is applied to a group of tokens
// while it sits in L1/L2, so the weight bytes stream from memory once per call rather than
// once per token.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/matmul_kernels.h"
#include "kernels/cpu/simd.h"
#include "kernels/quant/quant_blocks.h"

namespace pv::kernels::cpu {
namespace {

constexpr RowKernels kScalar[] = {
    {ActFormat::F32, nullptr, scalar::dot_f32},
    {ActFormat::F32, nullptr, scalar::dot_f16},
    {ActFormat::F32, nullptr, scalar::dot_bf16},
    {ActFormat::Q8A, scalar::quantize_act_q8a, scalar::dot_q8_0},
    {ActFormat::Q8A, scalar::quantize_act_q8a, scalar::dot_q4_0},
    {ActFormat::Q8K, scalar::quantize_act_q8k, scalar::dot_q4_K},
    {ActFormat::Q8K, scalar::quantize_act_q8k, scalar::dot_q6_K},
    {ActFormat::Q8A, scalar::quantize_act_q8a, scalar::dot_q4_1},
    {ActFormat::Q8A, scalar::quantize_act_q8a, scalar::dot_q5_0},
    {ActFormat::Q8A, scalar::quantize_act_q8a, scalar::dot_q5_1},
    {ActFormat::Q8A, scalar::quantize_act_q8a, scalar::dot_iq4_nl},
    {ActFormat::Q8K, scalar::quantize_act_q8k, scalar::dot_q2_K},
    {ActFormat::Q8K, scalar::quantize_act_q8k, scalar::dot_q3_K},
    {ActFormat::Q8K, scalar::quantize_act_q8k, scalar::dot_q5_K},
    {ActFormat::Q8K, scalar::quantize_act_q8k, scalar::dot_iq4_xs},
};
#if defined(__x86_64__)
constexpr RowKernels kAvx2[] = {
    {ActFormat::F32, nullptr, avx2::dot_f32},
    {ActFormat::F32, nullptr, avx2::dot_f16},
    {ActFormat::F32, nullptr, avx2::dot_bf16},
    {ActFormat::Q8A, avx2::quantize_act_q8a, avx2::dot_q8_0, avx2::dot_q8_0_x4},
    {ActFormat::Q8A, avx2::quantize_act_q8a, avx2::dot_q4_0},
    {ActFormat::Q8K, avx2::quantize_act_q8k, avx2::dot_q4_K, avx2::dot_q4_K_x4},
    {ActFormat::Q8K, avx2::quantize_act_q8k, avx2::dot_q6_K, avx2::dot_q6_K_x4},
    {ActFormat::Q8A, avx2::quantize_act_q8a, avx2::dot_q4_1},
    {ActFormat::Q8A, avx2::quantize_act_q8a, avx2::dot_q5_0},
    {ActFormat::Q8A, avx2::quantize_act_q8a, avx2::dot_q5_1},
    {ActFormat::Q8A, avx2::quantize_act_q8a, avx2::dot_iq4_nl},
    {ActFormat::Q8K, avx2::quantize_act_q8k, avx2::dot_q2_K},
    {ActFormat::Q8K, avx2::quantize_act_q8k, avx2::dot_q3_K},
    {ActFormat::Q8K, avx2::quantize_act_q8k, avx2::dot_q5_K},
    {ActFormat::Q8K, avx2::quantize_act_q8k, avx2::dot_iq4_xs},
};
#endif

int kernel_index(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
      return 0;
    case GgmlType::F16:
      return 1;
    case GgmlType::BF16:
      return 2;
    case GgmlType::Q8_0:
      return 3;
    case GgmlType::Q4_0:
      return 4;
    case GgmlType::Q4_K:
      return 5;
    case GgmlType::Q6_K:
      return 6;
    case GgmlType::Q4_1:
      return 7;
    case GgmlType::Q5_0:
      return 8;
    case GgmlType::Q5_1:
      return 9;
    case GgmlType::IQ4_NL:
      return 10;
    case GgmlType::Q2_K:
      return 11;
    case GgmlType::Q3_K:
      return 12;
    case GgmlType::Q5_K:
      return 13;
    case GgmlType::IQ4_XS:
      return 14;
  }
  throw std::invalid_argument("matmul: unsupported weight type id " +
                              std::to_string(static_cast<uint32_t>(type)));
}

constexpr int64_t kRowTile = 16;   // rows kept hot while a token group passes over them
constexpr int64_t kTokenTile = 8;  // tokens per pass over a row tile

}  // namespace

const RowKernels& row_kernels(GgmlType type, SimdLevel level) {
  const int k = kernel_index(type);
#if defined(__x86_64__)
  if (level == SimdLevel::Avx2) return kAvx2[k];
#endif
  (void)level;
  return kScalar[k];
}

size_t act_row_bytes(ActFormat act, int64_t n) {
  switch (act) {
    case ActFormat::F32:
      return static_cast<size_t>(n) * sizeof(float);
    case ActFormat::Q8A:
      return static_cast<size_t>(n / kQK) * sizeof(BlockQ8A);
    case ActFormat::Q8K:
      return static_cast<size_t>(n / kQKK) * sizeof(BlockQ8K);
  }
  return 0;
}

void matmul(const TensorView& w, const float* x, int T, float* y, ThreadPool* pool) {
  const std::string where = "matmul of '" + w.name + "'";
  if (T < 0) throw std::invalid_argument(where + ": negative token count");
  size_t rb;
  try {
    rb = row_bytes(w.type, w.cols);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + ": " + e.what());
  }
  size_t need = 0;
  if (w.rows < 0 || __builtin_mul_overflow(static_cast<size_t>(w.rows), rb, &need) ||
      (w.rows > 0 && w.data == nullptr) || w.nbytes < need) {
    throw std::invalid_argument(where + ": " + std::to_string(w.rows) + " rows of " +
                                std::to_string(rb) + " bytes do not fit its " +
                                std::to_string(w.nbytes) + " bytes");
  }
  if (T == 0 || w.rows == 0) return;
  const RowKernels& k = row_kernels(w.type, active_simd());
  const int64_t n = w.cols;

  const uint8_t* act = reinterpret_cast<const uint8_t*>(x);
  const size_t act_stride = act_row_bytes(k.act, n);
  thread_local std::vector<uint8_t> act_buf;
  if (k.act != ActFormat::F32) {
    act_buf.resize(act_stride * static_cast<size_t>(T));
    uint8_t* dst = act_buf.data();
    auto quantize = [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) k.quantize_act(x + t * n, dst + act_stride * t, n);
    };
    if (pool != nullptr && T >= 8) {
      pool->parallel_for(T, quantize, 4);  // prefill: the activation pass is worth sharing
    } else {
      quantize(0, T);
    }
    act = dst;
  }

  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t rows = w.rows;
  auto body = [&](int64_t r0, int64_t r1) {
    for (int64_t rt = r0; rt < r1; rt += kRowTile) {
      const int64_t rt_end = std::min(r1, rt + kRowTile);
      for (int t0 = 0; t0 < T; t0 += static_cast<int>(kTokenTile)) {
        const int t1 = std::min<int>(T, t0 + static_cast<int>(kTokenTile));
        for (int64_t r = rt; r < rt_end; ++r) {
          const uint8_t* wr = base + static_cast<size_t>(r) * rb;
          int t = t0;
          if (k.dot_multi != nullptr) {
            for (; t + 1 < t1; t += 4) {  // groups of up to 4 tokens share the weight unpacking
              const int nt = std::min(4, t1 - t);
              float out[4];
              k.dot_multi(n, wr, act + act_stride * t, act_stride, nt, out);
              for (int j = 0; j < nt; ++j) y[static_cast<int64_t>(t + j) * rows + r] = out[j];
            }
          }
          for (; t < t1; ++t) {
            y[static_cast<int64_t>(t) * rows + r] = k.dot(n, wr, act + act_stride * t);
          }
        }
      }
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(rows, body, kRowTile);
  } else {
    body(0, rows);
  }
}

float dot_row(GgmlType type, const void* w_row, const float* x, int64_t n) {
  (void)row_bytes(type, n);  // validates n against the block size
  const RowKernels& k = row_kernels(type, active_simd());
  if (k.act == ActFormat::F32) return k.dot(n, w_row, x);
  std::vector<uint8_t> act(act_row_bytes(k.act, n));
  k.quantize_act(x, act.data(), n);
  return k.dot(n, w_row, act.data());
}

}  // namespace pv::kernels::cpu
