// Element-wise and row-wise ops: embedding lookup, bias, RMSNorm, RoPE (both pairings),
// residual add, SiLU, multiply, softmax. All f32 on device buffers; reductions in f32
// with warp shuffles, matching the CPU's f32 semantics within rounding.
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/decode.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace pv::kernels::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(size_t n) {
  const size_t g = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(g < 65535u * 32u ? g : 65535u * 32u);
}

__global__ void embed_kernel(GgmlType type, const uint8_t* w, size_t rb, int64_t rows, int cols,
                             const int32_t* tokens, int T, float* out) {
  pdl_allow_next();     // the kernel after this one may start its prologue (pdl.cuh)
  pdl_wait_previous();  // launched as a dependent: the kernel in front has finished
  const size_t n = static_cast<size_t>(T) * cols;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    const int t = static_cast<int>(i / cols), c = static_cast<int>(i % cols);
    const int32_t tok = tokens[t];
    // The host checked the ids; a bad one here would be a race, so poison it visibly.
    out[i] = (tok < 0 || tok >= rows) ? __int_as_float(0x7fc00000)
                                      : dequant_one(type, w + static_cast<size_t>(tok) * rb, c);
  }
}

__global__ void add_bias_kernel(float* y, GgmlType type, const uint8_t* b, int n, int T) {
  pdl_allow_next();     // the kernel after this one may start its prologue (pdl.cuh)
  pdl_wait_previous();  // launched as a dependent: the kernel in front has finished
  const size_t total = static_cast<size_t>(T) * n;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < total;
       i += size_t{gridDim.x} * blockDim.x)
    y[i] += dequant_one(type, b, static_cast<int64_t>(i % n));
}

__device__ float block_sum(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // red may still be read by a previous reduction
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float s = 0.f;
  for (int k = 0; k < static_cast<int>(blockDim.x >> 5); ++k) s += red[k];
  return s;
}

__device__ float block_max(float v, float* red) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int k = 0; k < static_cast<int>(blockDim.x >> 5); ++k) m = fmaxf(m, red[k]);
  return m;
}

__global__ void rmsnorm_kernel(const float* x, GgmlType wtype, const uint8_t* w, int n, float eps,
                               float* y) {
  pdl_allow_next();     // the kernel after this one may start its prologue (pdl.cuh)
  pdl_wait_previous();  // launched as a dependent: the kernel in front has finished
  __shared__ float red[32];
  const float* xr = x + static_cast<size_t>(blockIdx.x) * n;
  float* yr = y + static_cast<size_t>(blockIdx.x) * n;
  float ss = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss, red);
  const float inv = rsqrtf(ss / static_cast<float>(n) + eps);
  for (int i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] * inv * dequant_one(wtype, w, i);
}

// One thread per rotated pair. Angles in double so positions deep in the context keep
// their precision (pos * inv_freq grows large; float sin/cos of it would drift).
__global__ void rope_kernel(float* x, int T, int n_heads, int head_dim, int pos0, double log_theta,
                            bool interleaved) {
  pdl_allow_next();     // the kernel after this one may start its prologue (pdl.cuh)
  pdl_wait_previous();  // launched as a dependent: the kernel in front has finished
  const int half = head_dim / 2;
  const size_t n = static_cast<size_t>(T) * n_heads * half;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    const int p = static_cast<int>(i % half);
    const size_t th = i / half;  // token * n_heads + head
    const int t = static_cast<int>(th / n_heads);
    const double inv_freq = exp(-log_theta * (2.0 * p) / head_dim);
    double s, c;
    sincos(static_cast<double>(pos0 + t) * inv_freq, &s, &c);
    float* hx = x + th * head_dim;
    const int a = interleaved ? 2 * p : p, b = interleaved ? 2 * p + 1 : p + half;
    const float xa = hx[a], xb = hx[b];
    hx[a] = static_cast<float>(xa * c - xb * s);
    hx[b] = static_cast<float>(xb * c + xa * s);
  }
}

// The frequencies of rope_table_kernel, by value: a kernel parameter needs no device
// buffer, so the table the forward computed on the host arrives as it is.
struct RopeFreqs {
  float inv_freq[kMaxRopeHeadDim / 2];
};

// One thread per rotated pair, the same arithmetic as the CPU backend's rope_table: the
// f32 angle, its cos/sin in double rounded to f32 and scaled in f32, then the f32
// rotation with explicit roundings (no fused multiply-add), so both backends agree.
__global__ void rope_table_kernel(float* x, int T, int n_heads, int head_dim, int pos0,
                                  RopeFreqs freqs, float attention_factor, bool interleaved) {
  pdl_allow_next();     // the kernel after this one may start its prologue (pdl.cuh)
  pdl_wait_previous();  // launched as a dependent: the kernel in front has finished
  const int half = head_dim / 2;
  const size_t n = static_cast<size_t>(T) * n_heads * half;
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    const int p = static_cast<int>(i % half);
    const size_t th = i / half;  // token * n_heads + head
    const int t = static_cast<int>(th / n_heads);
    const float angle = __fmul_rn(static_cast<float>(pos0 + t), freqs.inv_freq[p]);
    double sd, cd;
    sincos(static_cast<double>(angle), &sd, &cd);
    const float c = __fmul_rn(static_cast<float>(cd), attention_factor);
    const float s = __fmul_rn(static_cast<float>(sd), attention_factor);
    float* hx = x + th * head_dim;
    const int a = interleaved ? 2 * p : p, b = interleaved ? 2 * p + 1 : p + half;
    const float xa = hx[a], xb = hx[b];
    hx[a] = __fsub_rn(__fmul_rn(xa, c), __fmul_rn(xb, s));
    hx[b] = __fadd_rn(__fmul_rn(xb, c), __fmul_rn(xa, s));
  }
}

__global__ void add_kernel(float* x, const float* y, size_t n) {
  pdl_allow_next();     // the kernel after this one may start its prologue (pdl.cuh)
  pdl_wait_previous();  // launched as a dependent: the kernel in front has finished
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x)
    x[i] += y[i];
}

__global__ void silu_kernel(const float* x, size_t n, float* y) {
  pdl_allow_next();     // the kernel after this one may start its prologue (pdl.cuh)
  pdl_wait_previous();  // launched as a dependent: the kernel in front has finished
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x) {
    const float v = x[i];
    y[i] = v / (1.0f + expf(-v));
  }
}

__global__ void mul_kernel(const float* a, const float* b, size_t n, float* y) {
  pdl_allow_next();     // the kernel after this one may start its prologue (pdl.cuh)
  pdl_wait_previous();  // launched as a dependent: the kernel in front has finished
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n;
       i += size_t{gridDim.x} * blockDim.x)
    y[i] = a[i] * b[i];
}

__global__ void softmax_kernel(float* x, int n) {
  pdl_allow_next();     // the kernel after this one may start its prologue (pdl.cuh)
  pdl_wait_previous();  // launched as a dependent: the kernel in front has finished
  __shared__ float red[32];
  float* r = x + static_cast<size_t>(blockIdx.x) * n;
  float m = -INFINITY;
  for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, r[i]);
  m = block_max(m, red);
  float s = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const float e = expf(r[i] - m);
    r[i] = e;
    s += e;
  }
  s = block_sum(s, red);
  const float inv = 1.0f / s;
  for (int i = threadIdx.x; i < n; i += blockDim.x) r[i] *= inv;
}

}  // namespace

void launch_embed(const DeviceMatrix& w, const int32_t* tokens, int T, float* out) {
  const size_t n = static_cast<size_t>(T) * w.cols;
  if (n == 0) return;
  launch_dependent(embed_kernel, dim3(grid_for(n)), dim3(kThreads), 0, w.type, w.data, w.row_bytes,
                   w.rows, static_cast<int>(w.cols), tokens, T, out);
  PV_CUDA_LAUNCH_CHECK("embed_kernel");
}

void launch_add_bias(float* y, const DeviceMatrix& bias, int T) {
  const size_t n = static_cast<size_t>(T) * bias.cols;
  if (n == 0) return;
  launch_dependent(add_bias_kernel, dim3(grid_for(n)), dim3(kThreads), 0, y, bias.type, bias.data,
                   static_cast<int>(bias.cols), T);
  PV_CUDA_LAUNCH_CHECK("add_bias_kernel");
}

void launch_rmsnorm(const float* x, const DeviceMatrix& w, int T, int n, float eps, float* y) {
  if (T <= 0 || n <= 0) return;
  launch_dependent(rmsnorm_kernel, dim3(T), dim3(kThreads), 0, x, w.type, w.data, n, eps, y);
  PV_CUDA_LAUNCH_CHECK("rmsnorm_kernel");
}

void launch_rope(float* x, int T, int n_heads, int head_dim, int pos0, float theta,
                 RopeStyle style) {
  const size_t n = static_cast<size_t>(T) * n_heads * (head_dim / 2);
  if (n == 0) return;
  launch_dependent(rope_kernel, dim3(grid_for(n)), dim3(kThreads), 0, x, T, n_heads, head_dim, pos0,
                   std::log(static_cast<double>(theta)), style == RopeStyle::Interleaved);
  PV_CUDA_LAUNCH_CHECK("rope_kernel");
}

void launch_rope_table(float* x, int T, int n_heads, int head_dim, int pos0, const float* inv_freq,
                       float attention_factor, RopeStyle style) {
  if (head_dim % 2 != 0 || head_dim > kMaxRopeHeadDim)
    throw std::invalid_argument("cuda rope_table: head_dim " + std::to_string(head_dim) +
                                " must be even and at most " + std::to_string(kMaxRopeHeadDim));
  const size_t n = static_cast<size_t>(T) * n_heads * (head_dim / 2);
  if (n == 0) return;
  RopeFreqs freqs{};
  for (int i = 0; i < head_dim / 2; ++i) freqs.inv_freq[i] = inv_freq[i];
  launch_dependent(rope_table_kernel, dim3(grid_for(n)), dim3(kThreads), 0, x, T, n_heads, head_dim,
                   pos0, freqs, attention_factor, style == RopeStyle::Interleaved);
  PV_CUDA_LAUNCH_CHECK("rope_table_kernel");
}

void launch_add(float* x, const float* y, size_t n) {
  if (n == 0) return;
  launch_dependent(add_kernel, dim3(grid_for(n)), dim3(kThreads), 0, x, y, n);
  PV_CUDA_LAUNCH_CHECK("add_kernel");
}

void launch_silu(const float* x, size_t n, float* y) {
  if (n == 0) return;
  launch_dependent(silu_kernel, dim3(grid_for(n)), dim3(kThreads), 0, x, n, y);
  PV_CUDA_LAUNCH_CHECK("silu_kernel");
}

void launch_mul(const float* a, const float* b, size_t n, float* y) {
  if (n == 0) return;
  launch_dependent(mul_kernel, dim3(grid_for(n)), dim3(kThreads), 0, a, b, n, y);
  PV_CUDA_LAUNCH_CHECK("mul_kernel");
}

void launch_softmax(float* x, int rows, int n) {
  if (rows <= 0 || n <= 0) return;
  launch_dependent(softmax_kernel, dim3(rows), dim3(kThreads), 0, x, n);
  PV_CUDA_LAUNCH_CHECK("softmax_kernel");
}

}  // namespace pv::kernels::cuda
