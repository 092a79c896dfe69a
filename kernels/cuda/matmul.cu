// Matvec / matmul over float weights (F32, F16, BF16) in their stored type: one warp per
// output row, fp32 activations and accumulation, a warp-shuffle reduction. Several tokens
// (up to kTokChunk) reuse each loaded weight, so prefill reads the weights T/kTokChunk
// times instead of T times. Block-quantized weights go to matmul_act_int8.cu.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace pv::kernels::cuda {
namespace {

constexpr int kWarps = 4;     // rows per thread block (one warp each)
constexpr int kTokChunk = 8;  // tokens per pass for T > 1

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <GgmlType TY>
__device__ __forceinline__ void load8(const uint8_t* p, float (&w)[8]) {
  if constexpr (TY == GgmlType::F32) {
    const float4 a = ld_f4(reinterpret_cast<const float*>(p));
    const float4 b = ld_f4(reinterpret_cast<const float*>(p) + 4);
    w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w, w[4] = b.x, w[5] = b.y, w[6] = b.z, w[7] = b.w;
  } else {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
    const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if constexpr (TY == GgmlType::F16) {
        w[2 * k] = f16_to_f32(static_cast<uint16_t>(u[k] & 0xffff));
        w[2 * k + 1] = f16_to_f32(static_cast<uint16_t>(u[k] >> 16));
      } else {
        w[2 * k] = bf16_to_f32(static_cast<uint16_t>(u[k] & 0xffff));
        w[2 * k + 1] = bf16_to_f32(static_cast<uint16_t>(u[k] >> 16));
      }
    }
  }
}

// Plain float weights: 8 values (one or two 16-byte loads) per lane step when every row
// starts 16-byte aligned (cols % 8 == 0), else a scalar walk that handles any cols.
template <GgmlType TY, int NT>
__global__ void __launch_bounds__(kWarps * 32)
    matvec_float(const uint8_t* __restrict__ w, size_t rb, int rows, int cols,
                 const float* __restrict__ x, int ntok, float* __restrict__ y) {
  constexpr int kEl = TY == GgmlType::F32 ? 4 : 2;
  // A plain launch (stream order), not a programmatic dependent: with nothing to load
  // before the wait, its blocks sitting beside the kernel in front only slowed it (H200:
  // F16 4096x14336 37.7 us as a dependent against 30.9).
  pdl_allow_next();  // the kernel after this one may start its prologue (pdl.cuh)
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;
  const uint8_t* wr = w + static_cast<size_t>(row) * rb;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.f;
  if (cols % 8 == 0) {
#pragma unroll 2
    for (int c8 = lane; c8 < cols / 8; c8 += 32) {
      float wv[8];
      load8<TY>(wr + static_cast<size_t>(c8) * 8 * kEl, wv);
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        if (t >= ntok) break;
        const float* xt = x + static_cast<size_t>(t) * cols + 8 * c8;
        const float4 a = ld_f4(xt), b = ld_f4(xt + 4);
        acc[t] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x +
                  wv[5] * b.y + wv[6] * b.z + wv[7] * b.w;
      }
    }
  } else {
    for (int c = lane; c < cols; c += 32) {
      const float wv = dequant_one(TY, wr, c);
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        if (t >= ntok) break;
        acc[t] += wv * x[static_cast<size_t>(t) * cols + c];
      }
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float s = warp_sum(acc[t]);
    if (lane == 0 && t < ntok) y[static_cast<size_t>(t) * rows + row] = s;
  }
}

template <int NT>
void launch_one(const DeviceMatrix& w, const float* x, int ntok, float* y) {
  const int rows = static_cast<int>(w.rows), cols = static_cast<int>(w.cols);
  const dim3 grid((rows + kWarps - 1) / kWarps), block(kWarps * 32);
  switch (w.type) {
    case GgmlType::F32:
      matvec_float<GgmlType::F32, NT><<<grid, block>>>(w.data, w.row_bytes, rows, cols, x, ntok, y);
      break;
    case GgmlType::F16:
      matvec_float<GgmlType::F16, NT><<<grid, block>>>(w.data, w.row_bytes, rows, cols, x, ntok, y);
      break;
    case GgmlType::BF16:
      matvec_float<GgmlType::BF16, NT>
          <<<grid, block>>>(w.data, w.row_bytes, rows, cols, x, ntok, y);
      break;
    default:  // block types never get here (launch_matmul)
      break;
  }
  PV_CUDA_LAUNCH_CHECK("matvec kernel");
}

}  // namespace

void launch_matmul(const DeviceMatrix& w, const float* x, int T, void* scratch, bool codes_ready,
                   float* y) {
  if (w.rows <= 0 || w.cols <= 0 || T <= 0) return;
  if (w.rows > INT32_MAX || w.cols > INT32_MAX)
    throw std::invalid_argument("cuda matmul: weight shape exceeds int32 indexing");
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0)
    throw std::invalid_argument("cuda matmul: x is not 16-byte aligned");
  if (launch_matmul_act_int8(w, x, T, scratch, codes_ready, y)) return;
  if (T == 1) return launch_one<1>(w, x, 1, y);
  for (int t0 = 0; t0 < T; t0 += kTokChunk) {
    const int n = T - t0 < kTokChunk ? T - t0 : kTokChunk;
    launch_one<kTokChunk>(w, x + static_cast<size_t>(t0) * w.cols, n,
                          y + static_cast<size_t>(t0) * w.rows);
  }
}

}  // namespace pv::kernels::cuda
