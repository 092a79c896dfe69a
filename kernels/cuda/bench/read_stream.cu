// The read ceiling at a given size: a plain streaming kernel that reads `bytes` (16-byte
// vector loads, 4 in flight per thread, the whole GPU resident) and folds them into one
// word per block, launched back to back over rotated buffers the way the matvec bench
// runs its matvecs. A matvec cannot beat what this kernel reads per second at the same
// size; the ratio says how much of the per-kernel fixed cost is the matvec's own.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/bench/read_stream.h"
#include "kernels/cuda/cuda_check.h"

namespace pv::kernels::cuda {
namespace {

constexpr int kThreads = 256, kUnroll = 4;

__global__ void __launch_bounds__(kThreads)
    read_fold(const uint4* __restrict__ p, size_t n, unsigned* __restrict__ out) {
  const size_t stride = static_cast<size_t>(gridDim.x) * kThreads;
  unsigned acc = 0;
  size_t i = static_cast<size_t>(blockIdx.x) * kThreads + threadIdx.x;
  for (; i + (kUnroll - 1) * stride < n; i += kUnroll * stride) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = __ldg(p + i + u * stride);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n; i += stride) {
    const uint4 v = __ldg(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  __shared__ unsigned fold[kThreads / 32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) acc ^= __shfl_xor_sync(0xffffffffu, acc, o);
  if ((threadIdx.x & 31) == 0) fold[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned a = 0;
    for (int w = 0; w < kThreads / 32; ++w) a ^= fold[w];
    out[blockIdx.x] = a;  // kept, so the loads are not dead code
  }
}

}  // namespace

double read_stream_bandwidth(const std::vector<const void*>& bufs, size_t bytes, int count) {
  int dev = 0, sms = 0, per_sm = 0;
  PV_CUDA_CHECK(cudaGetDevice(&dev));
  PV_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  PV_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, read_fold, kThreads, 0));
  const int grid = sms * std::max(per_sm, 1);
  unsigned* out = nullptr;
  PV_CUDA_CHECK(cudaMalloc(&out, sizeof(unsigned) * grid));
  cudaEvent_t a{}, b{};
  PV_CUDA_CHECK(cudaEventCreate(&a));
  PV_CUDA_CHECK(cudaEventCreate(&b));
  const size_t n = bytes / sizeof(uint4);  // a tail under 16 bytes is not read
  std::vector<float> ms;
  size_t k = 0;
  for (int rep = 0; rep < 21; ++rep) {  // the first is a warm-up
    PV_CUDA_CHECK(cudaEventRecord(a));
    for (int i = 0; i < count; ++i, ++k) {
      read_fold<<<grid, kThreads>>>(static_cast<const uint4*>(bufs[k % bufs.size()]), n, out);
      PV_CUDA_LAUNCH_CHECK("read_fold");
    }
    PV_CUDA_CHECK(cudaEventRecord(b));
    PV_CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    PV_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    if (rep > 0) ms.push_back(t / count);
  }
  std::sort(ms.begin(), ms.end());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  PV_CUDA_CHECK(cudaFree(out));
  return static_cast<double>(n * sizeof(uint4)) / (ms[ms.size() / 2] / 1e3);
}

}  // namespace pv::kernels::cuda
