// Causal GQA attention over the device-resident KV cache, for a prefill of T queries or
// an incremental step (T = 1, pos0 = cached rows). One thread block per (head, query):
// scores for every visible key in shared memory, an f32 max-subtracted softmax, then
// probs . V. Query head h reads KV head h / (n_heads / n_kv_heads) -- the mapping the
// CPU uses, so a GQA indexing bug shows up as CPU/CUDA disagreement.
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"
#include "mutants/mutant.h"

namespace pv::kernels::cuda {
namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads)
    attention_kernel(const float* __restrict__ q, const float* __restrict__ kc,
                     const float* __restrict__ vc, int H, int Hkv, int D, int T, int pos0,
                     float scale, float* __restrict__ out, float* __restrict__ scores,
                     float* __restrict__ probs) {
  pdl_allow_next();     // the kernel after this one may start its prologue (pdl.cuh)
  pdl_wait_previous();  // launched as a dependent: the kernel in front has finished
  extern __shared__ float sm[];
  __shared__ float red[kThreads / 32];
  float* qs = sm;
  float* s = sm + D;
  const int h = blockIdx.x, t = blockIdx.y;
  const int L = pos0 + T, qpos = pos0 + t;
  const int kvh = h / (H / Hkv);
  const size_t kv_stride = static_cast<size_t>(Hkv) * D;
  const float* kbase = kc + static_cast<size_t>(kvh) * D;
  const float* vbase = vc + static_cast<size_t>(kvh) * D;
  const float* qh = q + (static_cast<size_t>(t) * H + h) * D;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;

  for (int i = threadIdx.x; i < D; i += blockDim.x) qs[i] = qh[i];
  __syncthreads();

  // Masked keys are only scored when the caller asked for the pre-mask score matrix.
  const int n_scored = scores != nullptr ? L : qpos + 1;
  for (int j = warp; j < n_scored; j += nwarps) {
    const float* kj = kbase + static_cast<size_t>(j) * kv_stride;
    float dot = 0.f;
    for (int d = lane; d < D; d += 32) dot += qs[d] * kj[d];
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if (lane == 0) s[j] = dot * scale;
  }
  __syncthreads();
  if (scores != nullptr) {
    float* sr = scores + (static_cast<size_t>(h) * T + t) * L;
    for (int j = threadIdx.x; j < L; j += blockDim.x) sr[j] = s[j];
  }

  float m = -INFINITY;
  for (int j = threadIdx.x; j <= qpos; j += blockDim.x) m = fmaxf(m, s[j]);
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if (lane == 0) red[warp] = m;
  __syncthreads();
  m = red[0];
  for (int k = 1; k < nwarps; ++k) m = fmaxf(m, red[k]);
  __syncthreads();  // everyone has read red before it is reused for the sum

  float sum = 0.f;
  for (int j = threadIdx.x; j < L; j += blockDim.x) {
    const float e = j <= qpos ? expf(s[j] - m) : 0.f;
    s[j] = e;
    sum += e;
  }
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) red[warp] = sum;
  __syncthreads();
  sum = 0.f;
  for (int k = 0; k < nwarps; ++k) sum += red[k];
  const float inv = 1.0f / sum;
  for (int j = threadIdx.x; j < L; j += blockDim.x) s[j] *= inv;
  __syncthreads();

  if (probs != nullptr) {
    float* pr = probs + (static_cast<size_t>(h) * T + t) * L;
    for (int j = threadIdx.x; j < L; j += blockDim.x) pr[j] = s[j];
  }
  float* oh = out + (static_cast<size_t>(t) * H + h) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int j = 0; j <= qpos; ++j) acc += s[j] * vbase[static_cast<size_t>(j) * kv_stride + d];
    oh[d] = acc;
  }
}

}  // namespace

void launch_attention(const float* q, const float* k_cache, const float* v_cache,
                      const AttentionShape& shape, int T, int pos0, float* out, float* scores,
                      float* probs) {
  if (T <= 0) return;
  if (shape.n_heads <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 ||
      shape.n_heads % shape.n_kv_heads != 0 || pos0 < 0)
    throw std::invalid_argument(
        "cuda attention: invalid shape (n_heads " + std::to_string(shape.n_heads) +
        ", n_kv_heads " + std::to_string(shape.n_kv_heads) + ", head_dim " +
        std::to_string(shape.head_dim) + ", pos0 " + std::to_string(pos0) + ")");
  const size_t smem = sizeof(float) * (static_cast<size_t>(shape.head_dim) + pos0 + T);
  // Asked once per device and thread: these queries cost host time on every decode step.
  static thread_local int cached_dev = -1, max_smem = 0;
  int dev = 0;
  PV_CUDA_CHECK(cudaGetDevice(&dev));
  if (dev != cached_dev) {
    PV_CUDA_CHECK(cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    cached_dev = dev;
  }
  const size_t usable = static_cast<size_t>(max_smem) - sizeof(float) * (kThreads / 32);
  if (smem > usable)
    throw std::invalid_argument("cuda attention: context of " + std::to_string(pos0 + T) +
                                " positions exceeds the shared-memory score buffer");
  if (smem > 48 * 1024)
    PV_CUDA_CHECK(cudaFuncSetAttribute(
        attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(usable)));
  float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  if (mutant::planted(mutant::Bug::CudaAttnScaleHd128) && shape.head_dim == 128)
    scale = 1.0f / 11.0f;
  const dim3 grid(shape.n_heads, T);
  launch_dependent(attention_kernel, grid, dim3(kThreads), smem, q, k_cache, v_cache, shape.n_heads,
                   shape.n_kv_heads, shape.head_dim, T, pos0, scale, out, scores, probs);
  PV_CUDA_LAUNCH_CHECK("attention_kernel");
}

}  // namespace pv::kernels::cuda
