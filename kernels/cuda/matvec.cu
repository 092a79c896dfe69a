// Matvec / matmul over weights in their stored GGUF type: one warp per output row, the
// warp's lanes sharing quant blocks (decode.cuh), fp32 accumulation, a warp-shuffle
// reduction. Several tokens (up to kTokChunk) reuse each decoded block, so prefill reads
// the weights T/kTokChunk times instead of T times. The hot path for decode is T = 1.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode.cuh"
#include "kernels/cuda/launch.h"

namespace pv::kernels::cuda {
namespace {

constexpr int kWarps = 4;     // rows per thread block (one warp each)
constexpr int kTokChunk = 8;  // tokens per pass for T > 1

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class Q, int NT>
__global__ void __launch_bounds__(kWarps * 32)
    matvec_quant(const uint8_t* __restrict__ w, size_t rb, int rows, int nblocks,
                 const float* __restrict__ x, int cols, int ntok, float* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (row >= rows) return;  // whole warp leaves together: no partial shuffles
  const uint8_t* wr = w + static_cast<size_t>(row) * rb;
  constexpr int kPerIter = 32 / Q::kParts;
  const int part = lane % Q::kParts;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.f;
#pragma unroll 4
  for (int blk = lane / Q::kParts; blk < nblocks; blk += kPerIter) {
    Q::template dot<NT>(wr + static_cast<size_t>(blk) * Q::kBytes, part,
                        x + static_cast<size_t>(blk) * Q::kValues, cols, ntok, acc);
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float s = warp_sum(acc[t]);
    if (lane == 0 && t < ntok) y[static_cast<size_t>(t) * rows + row] = s;
  }
}

// Batch 1: each thread block owns R consecutive rows and splits their blocks across its
// kWarps warps (split-K), so a 4096-row matrix still fills every SM with warps and keeps
// enough loads in flight to cover HBM latency. Each thread reuses its x registers across
// the R rows (x traffic would otherwise exceed the weight bytes ~7x for Q4_K). Rows past
// the end are handled one at a time and never stored.
template <class Q, int R>
__global__ void __launch_bounds__(kWarps * 32)
    matvec_quant_rows(const uint8_t* __restrict__ w, size_t rb, int rows, int nblocks,
                      const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float partial[kWarps][R];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row0 = blockIdx.x * R;
  const int nr = rows - row0 < R ? rows - row0 : R;
  constexpr int kPerIter = 32 / Q::kParts;
  const int part = lane % Q::kParts;
  const int first = warp * kPerIter + lane / Q::kParts;
  float acc[R];
#pragma unroll
  for (int r = 0; r < R; ++r) acc[r] = 0.f;
  if (nr == R) {
    const uint8_t* wr = w + static_cast<size_t>(row0) * rb;
#pragma unroll 2
    for (int blk = first; blk < nblocks; blk += kWarps * kPerIter)
      Q::template dot_rows<R>(wr + static_cast<size_t>(blk) * Q::kBytes, rb, part,
                              x + static_cast<size_t>(blk) * Q::kValues, acc);
  } else {  // the last, partial group of rows: one at a time
    for (int r = 0; r < nr; ++r) {
      const uint8_t* wr = w + static_cast<size_t>(row0 + r) * rb;
      float a[1] = {0.f};
      for (int blk = first; blk < nblocks; blk += kWarps * kPerIter)
        Q::template dot_rows<1>(wr + static_cast<size_t>(blk) * Q::kBytes, rb, part,
                                x + static_cast<size_t>(blk) * Q::kValues, a);
#pragma unroll
      for (int k = 0; k < R; ++k)
        if (k == r) acc[k] = a[0];
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float s = warp_sum(acc[r]);
    if (lane == 0) partial[warp][r] = s;
  }
  __syncthreads();
  if (threadIdx.x < nr) {
    float s = 0.f;
#pragma unroll
    for (int k = 0; k < kWarps; ++k) s += partial[k][threadIdx.x];
    y[row0 + threadIdx.x] = s;
  }
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
    case GgmlType::Q8_0:
      matvec_quant<BlockQ8_0, NT>
          <<<grid, block>>>(w.data, w.row_bytes, rows, cols / 32, x, cols, ntok, y);
      break;
    case GgmlType::Q4_0:
      matvec_quant<BlockQ4_0, NT>
          <<<grid, block>>>(w.data, w.row_bytes, rows, cols / 32, x, cols, ntok, y);
      break;
    case GgmlType::Q4_K:
      matvec_quant<BlockQ4_K, NT>
          <<<grid, block>>>(w.data, w.row_bytes, rows, cols / 256, x, cols, ntok, y);
      break;
    case GgmlType::Q6_K:
      matvec_quant<BlockQ6_K, NT>
          <<<grid, block>>>(w.data, w.row_bytes, rows, cols / 256, x, cols, ntok, y);
      break;
  }
  PV_CUDA_LAUNCH_CHECK("matvec kernel");
}

// Rows per thread block for batch 1, from the H200 sweep (device_run3.sh): 4 wins except
// for Q4_K rows of more than 8192 values, where 2 keeps more blocks in flight.
// PV_CUDA_MATVEC_ROWS (1, 2 or 4) overrides it, for benchmarks and for the parity sweep.
int rows_per_block(GgmlType type, int64_t cols) {
  static const int forced = [] {
    const char* e = std::getenv("PV_CUDA_MATVEC_ROWS");
    const int v = e != nullptr ? std::atoi(e) : 0;
    return (v == 1 || v == 2 || v == 4) ? v : 0;
  }();
  if (forced != 0) return forced;
  return (type == GgmlType::Q4_K && cols > 8192) ? 2 : 4;
}

template <class Q, int R>
void launch_rows(const DeviceMatrix& w, const float* x, float* y) {
  const int rows = static_cast<int>(w.rows), cols = static_cast<int>(w.cols);
  matvec_quant_rows<Q, R>
      <<<(rows + R - 1) / R, kWarps * 32>>>(w.data, w.row_bytes, rows, cols / Q::kValues, x, y);
  PV_CUDA_LAUNCH_CHECK("matvec_quant_rows");
}

template <class Q>
void launch_batch1(const DeviceMatrix& w, const float* x, float* y) {
  switch (rows_per_block(w.type, w.cols)) {
    case 1:
      launch_rows<Q, 1>(w, x, y);
      break;
    case 4:
      launch_rows<Q, 4>(w, x, y);
      break;
    case 2:
      launch_rows<Q, 2>(w, x, y);
      break;
    default:
      launch_rows<Q, 4>(w, x, y);
  }
}

}  // namespace

void launch_matmul(const DeviceMatrix& w, const float* x, int T, float* y) {
  if (w.rows <= 0 || w.cols <= 0 || T <= 0) return;
  if (w.rows > INT32_MAX || w.cols > INT32_MAX)
    throw std::invalid_argument("cuda matmul: weight shape exceeds int32 indexing");
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0)
    throw std::invalid_argument("cuda matmul: x is not 16-byte aligned");
  if (T == 1) {
    switch (w.type) {
      case GgmlType::Q8_0:
        return launch_batch1<BlockQ8_0>(w, x, y);
      case GgmlType::Q4_0:
        return launch_batch1<BlockQ4_0>(w, x, y);
      case GgmlType::Q4_K:
        return launch_batch1<BlockQ4_K>(w, x, y);
      case GgmlType::Q6_K:
        return launch_batch1<BlockQ6_K>(w, x, y);
      default:
        launch_one<1>(w, x, 1, y);
        return;
    }
  }
  for (int t0 = 0; t0 < T; t0 += kTokChunk) {
    const int n = T - t0 < kTokChunk ? T - t0 : kTokChunk;
    launch_one<kTokChunk>(w, x + static_cast<size_t>(t0) * w.cols, n,
                          y + static_cast<size_t>(t0) * w.rows);
  }
}

}  // namespace pv::kernels::cuda
