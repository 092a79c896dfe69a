// Matvec / matmul over block-quantized weights (Q8_0, Q4_0, Q4_K, Q6_K; and Q4_1, Q5_0,
// Q5_1, IQ4_NL, Q2_K, Q3_K, Q5_K, IQ4_XS from act_quant_more.cuh) with activations
// rounded to int8 per activation block, as the CPU backend does (act_quant.cuh), so the
// two backends sum the same integers.
//
// x's int8 codes (+ one f32 scale per activation block) live in a scratch buffer, so a
// later matmul of the same, unchanged x reads them instead of rounding x again (Q/K/V and
// gate/up share their input; the backend decides: launch_matmul's codes_ready). One
// token: the matvec rounds x itself when the codes are not there (no extra launch) and
// its block 0 leaves them in the scratch; several tokens: quantize_rows first.
//
// Batch 1 (decode, the hot path) has two forms, chosen by shape (launch_type):
//  * column-stationary (fewer, longer rows): each thread owns K fixed (block, part) slots
//    of a row and holds the codes of those slots in registers; the thread block walks its
//    rows R at a time with two rows per thread in flight, each thread streaming only
//    weight bytes. (A split-K kernel over f32 x re-read x from L2 for every few rows, 7x
//    the Q4_K weight bytes per row: L2, not HBM, was its ceiling; NOTES.md.)
//  * row-streaming (many rows): the block puts x's codes in shared memory, then every
//    warp streams whole rows at full occupancy.
// All are launched as programmatic dependents (pdl.cuh): weight loads start before the
// kernel in front has finished; codes and outputs are touched after it has.
// Per-row sums are reduced in a fixed order (deterministic).
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "kernels/cuda/act_quant.cuh"
#include "kernels/cuda/act_quant_more.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/pdl.cuh"

namespace pv::kernels::cuda {
namespace {

// Threads per block: at most 512, or 768 for the lightest form (K = 4 slots, R = 1 row per
// group, 32-value types), whose registers still fit. So one launch covers 3072 Q8_0/Q4_0
// slots (24576 values) or 2048 K-quant slots (65536 Q4_K values); wider rows are cut into
// column chunks of whole blocks, one launch each, the later ones adding to y (activation
// blocks never straddle a chunk, so the numerics do not change).
constexpr int kMaxK = 4;
constexpr int kPrefetchAhead = 1;  // row groups past those in registers asked of L2
template <class A>
constexpr int max_threads(int K, int R) {
  return K == 4 && R == 1 && A::kValues == 32 ? 768 : 512;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// x rounded to int8: codes[T * cols], then one f32 scale per activation block (same
// layout for every token). act_int8_scratch_bytes sizes it.
struct ActCodes {
  int8_t* codes;
  float* scales;
};

ActCodes act_codes_in(void* scratch, int64_t n) {
  auto* codes = static_cast<int8_t*>(scratch);
  return {codes, reinterpret_cast<float*>(codes + (n + 15) / 16 * 16)};
}

// Rounds n values of x (T rows, n a multiple of the activation block) to codes + scales;
// G lanes per activation block, 8 values each. A programmatic dependent like the matvecs:
// it must not overwrite the codes before the matvec in front of it has read them.
template <int G>
__global__ void quantize_rows(const float* __restrict__ x, int64_t n, int8_t* __restrict__ codes,
                              float* __restrict__ scales) {
  pdl_allow_next();
  pdl_wait_previous();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool valid = 8 * i < n;  // n is a multiple of the block, so groups are whole
  float v[8] = {};
  if (valid) {
    const float4 a = ld_f4(x + 8 * i), b = ld_f4(x + 8 * i + 4);
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  }
  uint32_t q[2];
  const float d = quantize_act<8, G>(v, q);  // every lane: it shuffles
  if (valid) {
    reinterpret_cast<uint2*>(codes)[i] = make_uint2(q[0], q[1]);
    if (i % G == 0) scales[i / G] = d;
  }
}

template <class A>
void launch_quantize(const float* x, int64_t n, const ActCodes& out) {
  const int64_t threads = n / 8;
  launch_dependent(quantize_rows<A::kValues / 8>,
                   dim3(static_cast<unsigned>((threads + 255) / 256)), dim3(256), 0, x, n,
                   out.codes, out.scales);
}

template <class A, int K, int R>
__device__ __forceinline__ void fetch_rows(const uint8_t* __restrict__ w, size_t rb, int row0,
                                           int rows, const int (&blk)[K], int part,
                                           typename A::Raw (&raw)[R][K]) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    // Rows past the end re-read the last row (never stored): no branch between the loads.
    const uint8_t* wr = w + static_cast<size_t>(min(row0 + r, rows - 1)) * rb;
#pragma unroll
    for (int k = 0; k < K; ++k)
      raw[r][k] = A::fetch(wr + static_cast<size_t>(blk[k]) * A::kBytes, part);
  }
}

// Asks L2 for the bytes of the R rows from row0 (span bytes each, from w's column chunk):
// fire-and-forget, no registers held, so loads further ahead are in flight than the
// register-resident fetches alone could keep.
template <int R>
__device__ __forceinline__ void prefetch_rows(const uint8_t* w, size_t rb, int row0, int rows,
                                              int span) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const uint8_t* wr = w + static_cast<size_t>(min(row0 + r, rows - 1)) * rb;
    for (int off = static_cast<int>(threadIdx.x) * 128; off < span;
         off += static_cast<int>(blockDim.x) * 128)
      asm volatile("prefetch.global.L2 [%0];" ::"l"(wr + off));
  }
}

// Thread block b handles the row groups (R rows each) g = b, b + grid, b + 2*grid, ...:
// each warp writes its partial sum of every row it saw to shared memory, and the block
// adds the warps' partials up once at the end, so no barrier stalls the row loop. While
// a group is computed the next group's loads are already in flight. kRound: x is rounded
// here (block 0 leaves the codes in `codes`/`scales` for later matmuls of this x); else
// the codes are read from there. Two instantiations: either prologue alone keeps the
// register count (and so the resident blocks) of the lighter forms.
template <class A, int K, int R, bool kRound>
__global__ void __launch_bounds__(max_threads<A>(K, R))
    matvec_act_int8(const uint8_t* __restrict__ w, size_t rb, int rows, int nblocks,
                    const float* __restrict__ x, int8_t* __restrict__ codes,
                    float* __restrict__ scales, int ahead, bool accumulate, float* __restrict__ y) {
  extern __shared__ float partial[];  // [group of this block][warp][R]
  const int nthreads = static_cast<int>(blockDim.x), warps = nthreads >> 5;
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int part = lane % A::kParts;  // blockDim is a multiple of 32: the same for every k
  const int nslots = nblocks * A::kParts;
  const int ngroups = (rows + R - 1) / R, stride = static_cast<int>(gridDim.x);
  Act<A> act[K];
  int blk[K];
  bool valid[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int s = tid + k * nthreads;
    valid[k] = s < nslots;
    blk[k] = valid[k] ? s / A::kParts : 0;  // idle slots load block 0 and discard it
  }
  pdl_allow_next();
  // Two rows per thread are in flight either way: one buffer of R = 2 rows, or, for R = 1
  // forms (long rows), two one-row buffers taking turns. The second buffer costs registers
  // that the forms rounding x (and R = 2 forms) cannot spare without losing resident
  // blocks (H200, NOTES.md: Q4_K 3584x18944 14.4 us with two buffers against 15.5
  // with one; Q8_0 18944x3584 R = 2 22.0 us with one, 26.9 with two).
  constexpr bool kTwoBuffers = R == 1 && !kRound;
  typename A::Raw buf0[R][K], buf1[R][K];
  int g = static_cast<int>(blockIdx.x);
  const int span = nblocks * A::kBytes;
  // Weights only until the previous kernel is done: this block's first group (two with two
  // buffers) into registers, L2 requests for `ahead` more. Codes (and y) after the wait.
  if (g < ngroups) fetch_rows<A, K, R>(w, rb, g * R, rows, blk, part, buf0);
  if (kTwoBuffers && g + stride < ngroups)
    fetch_rows<A, K, R>(w, rb, (g + stride) * R, rows, blk, part, buf1);
  const int in_regs = kTwoBuffers ? 2 : 1;  // groups a block holds in registers
  for (int a = in_regs; a < in_regs + ahead && g + a * stride < ngroups; ++a)
    prefetch_rows<R>(w, rb, (g + a * stride) * R, rows, span);
  pdl_wait_previous();
  if constexpr (kRound) {
#pragma unroll
    for (int k = 0; k < K; ++k) quantize_slot<A>(x, blk[k], part, valid[k], act[k]);  // shuffles
    if (blockIdx.x == 0)
#pragma unroll
      for (int k = 0; k < K; ++k)
        if (valid[k]) store_slot<A>(act[k], blk[k], part, codes, scales);
  } else {
#pragma unroll
    for (int k = 0; k < K; ++k) load_slot<A>(codes, scales, blk[k], part, act[k]);  // idle: blk 0
  }
  int n = 0;  // groups done by this block
  // The group in `buf` into this warp's partial sums (slot n of the shared array).
  auto multiply = [&](const typename A::Raw(&buf)[R][K]) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float acc = 0.f;
#pragma unroll
      for (int k = 0; k < K; ++k)
        if (valid[k]) acc += A::dot(buf[r][k], act[k], part);
      acc = warp_sum(acc);
      if (lane == 0) partial[(n * warps + warp) * R + r] = acc;
    }
  };
  // Loads of the group in_regs strides after g into `buf`, and the L2 request `ahead` past it.
  auto refill = [&](typename A::Raw(&buf)[R][K]) {
    const int f = g + in_regs * stride;
    if (f < ngroups) fetch_rows<A, K, R>(w, rb, f * R, rows, blk, part, buf);
    if (ahead > 0 && f + ahead * stride < ngroups)
      prefetch_rows<R>(w, rb, (f + ahead * stride) * R, rows, span);
  };
  if constexpr (kTwoBuffers) {
    // No copy between the buffers (it would wait for the loads in flight): each is
    // multiplied, then refilled while the other one is worked on.
    while (g < ngroups) {
      multiply(buf0);
      refill(buf0);
      g += stride, ++n;
      if (g >= ngroups) break;
      multiply(buf1);
      refill(buf1);
      g += stride, ++n;
    }
  } else {
    for (; g < ngroups; g += stride, ++n) {
      refill(buf1);  // the next group's loads go out before this one is multiplied
      multiply(buf0);
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int k = 0; k < K; ++k) buf0[r][k] = buf1[r][k];
    }
  }
  __syncthreads();
  for (int j = tid; j < n * R; j += nthreads) {
    const int gi = j / R, r = j % R;
    const int row = (static_cast<int>(blockIdx.x) + gi * stride) * R + r;
    if (row >= rows) continue;
    float s = 0.f;
    for (int i = 0; i < warps; ++i) s += partial[(gi * warps + i) * R + r];  // fixed order
    y[row] = accumulate ? y[row] + s : s;
  }
}

// Batch 1, row-streaming form: the block first puts x's codes into shared memory (rounding
// x there, block 0 also leaving the codes for later matmuls, or copying codes already
// made), then every warp streams whole rows, its lanes walking the row's (block, part)
// slots U at a time with all U fetches in flight. No activation is held in registers, so
// the SM runs at full occupancy (32 warps) the way the F16 kernel does; the price is x
// read once per block (one block per SM).
constexpr int kRowThreads = 1024;

template <class A, int U>
__global__ void __launch_bounds__(kRowThreads, 1)
    matvec_act_int8_rows(const uint8_t* __restrict__ w, size_t rb, int rows, int nblocks,
                         const float* __restrict__ x, int8_t* __restrict__ codes_out,
                         float* __restrict__ scales_out, bool accumulate, float* __restrict__ y) {
  extern __shared__ __align__(16) uint8_t shared[];
  int8_t* codes = reinterpret_cast<int8_t*>(shared);
  const int ncodes = nblocks * A::kValues, scales_at = (ncodes + 15) / 16 * 16;
  float* scales = reinterpret_cast<float*>(shared + scales_at);
  const int tid = static_cast<int>(threadIdx.x), lane = tid & 31;
  const int warps = static_cast<int>(blockDim.x) >> 5;
  const int first_row = static_cast<int>(blockIdx.x) * warps + (tid >> 5);
  const int row_stride = static_cast<int>(gridDim.x) * warps;
  const int part = lane % A::kParts;
  const int nslots = nblocks * A::kParts;
  pdl_allow_next();
  // This warp's first row is requested from L2 before the previous kernel is done.
  if (first_row < rows)
    for (int off = lane * 128; off < nblocks * A::kBytes; off += 32 * 128)
      asm volatile("prefetch.global.L2 [%0];" ::"l"(w + static_cast<size_t>(first_row) * rb + off));
  pdl_wait_previous();
  if (x != nullptr) {
    constexpr int G = A::kValues / 8;  // threads per activation block, 8 values each
    for (int i0 = 0; i0 < ncodes / 8; i0 += static_cast<int>(blockDim.x)) {  // same trips for all
      const int i = i0 + tid;
      const bool valid = i < ncodes / 8;
      float v[8] = {};
      if (valid) {
        const float4 a = ld_f4(x + 8 * i), b = ld_f4(x + 8 * i + 4);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z,
        v[7] = b.w;
      }
      uint32_t q[2];
      const float d = quantize_act<8, G>(v, q);  // every lane: it shuffles
      if (valid) {
        const uint2 pair = make_uint2(q[0], q[1]);
        reinterpret_cast<uint2*>(codes)[i] = pair;
        if (i % G == 0) scales[i / G] = d;
        if (blockIdx.x == 0) {
          reinterpret_cast<uint2*>(codes_out)[i] = pair;
          if (i % G == 0) scales_out[i / G] = d;
        }
      }
    }
  } else {  // codes + scales lie in global memory with the same layout: copy them in
    const int words = (scales_at + 4 * nblocks) / 4;
    for (int i = tid; i < words; i += static_cast<int>(blockDim.x))
      reinterpret_cast<uint32_t*>(shared)[i] =
          __ldg(reinterpret_cast<const uint32_t*>(codes_out) + i);
  }
  __syncthreads();
  for (int row = first_row; row < rows; row += row_stride) {
    const uint8_t* wr = w + static_cast<size_t>(row) * rb;
    float acc = 0.f;
    for (int s0 = lane; s0 < nslots; s0 += 32 * U) {
      typename A::Raw raw[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {  // slots past the end re-read the last one, unused
        const int s = min(s0 + 32 * u, nslots - 1);
        raw[u] = A::fetch(wr + static_cast<size_t>(s / A::kParts) * A::kBytes, part);
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int s = s0 + 32 * u;
        if (s < nslots) {
          Act<A> a;
          load_slot<A>(codes, scales, s / A::kParts, part, a);
          acc += A::dot(raw[u], a, part);
        }
      }
    }
    acc = warp_sum(acc);
    if (lane == 0) y[row] = accumulate ? y[row] + acc : acc;
  }
}

int sm_count();

// Shared bytes of the row-streaming form for rows of `cols` values (codes, then scales).
template <class A>
size_t rows_form_smem(int64_t cols) {
  return (static_cast<size_t>(cols) + 15) / 16 * 16 + sizeof(float) * (cols / A::kValues);
}

template <class A>
void launch_rows_form(const DeviceMatrix& w, const float* x, const ActCodes& codes, float* y) {
  constexpr int U = A::kBytes >= 144 ? 4 : 8;  // fetches in flight per lane
  const int rows = static_cast<int>(w.rows), nblocks = static_cast<int>(w.cols / A::kValues);
  const size_t smem = rows_form_smem<A>(w.cols);
  if (smem > (48u << 10)) {
    PV_CUDA_CHECK(cudaFuncSetAttribute(matvec_act_int8_rows<A, U>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem)));
  }
  const int warps = kRowThreads / 32;
  const int need = (rows + warps - 1) / warps;
  const int grid = need < sm_count() ? need : sm_count();
  launch_dependent(matvec_act_int8_rows<A, U>, dim3(grid), dim3(kRowThreads), smem, w.data,
                   w.row_bytes, rows, nblocks, x, codes.codes, codes.scales, false, y);
}

// Several tokens: one warp per row walks the row's blocks, each lane unpacking its share
// of a weight block once for up to kTokChunk tokens' codes.
constexpr int kTokChunk = 8, kRowWarps = 4;

template <class A, int NT>
__global__ void __launch_bounds__(kRowWarps * 32)
    matmul_act_int8(const uint8_t* __restrict__ w, size_t rb, int rows, int nblocks,
                    const int8_t* __restrict__ codes, const float* __restrict__ scales, int ntok,
                    float* __restrict__ y) {
  pdl_allow_next();  // a plain launch, like the float matvecs (matmul.cu says why)
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kRowWarps + (threadIdx.x >> 5);
  if (row >= rows) return;  // whole warp leaves together: no partial shuffles
  const uint8_t* wr = w + static_cast<size_t>(row) * rb;
  const size_t cols = static_cast<size_t>(nblocks) * A::kValues;
  const int part = lane % A::kParts;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.f;
  for (int blk = lane / A::kParts; blk < nblocks; blk += 32 / A::kParts) {
    const auto wt = A::fetch(wr + static_cast<size_t>(blk) * A::kBytes, part);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if (t >= ntok) break;
      Act<A> a;
      load_slot<A>(codes + t * cols, scales + static_cast<size_t>(t) * nblocks, blk, part, a);
      acc[t] += A::dot(wt, a, part);
    }
  }
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const float s = warp_sum(acc[t]);
    if (lane == 0 && t < ntok) y[static_cast<size_t>(t) * rows + row] = s;
  }
}

template <class A>
void launch_multi(const DeviceMatrix& w, const ActCodes& x, int T, float* y) {
  const int rows = static_cast<int>(w.rows), nblocks = static_cast<int>(w.cols / A::kValues);
  for (int t0 = 0; t0 < T; t0 += kTokChunk) {
    const int nt = T - t0 < kTokChunk ? T - t0 : kTokChunk;
    matmul_act_int8<A, kTokChunk><<<(rows + kRowWarps - 1) / kRowWarps, kRowWarps * 32>>>(
        w.data, w.row_bytes, rows, nblocks, x.codes + static_cast<size_t>(t0) * w.cols,
        x.scales + static_cast<size_t>(t0) * nblocks, nt, y + static_cast<size_t>(t0) * rows);
    PV_CUDA_LAUNCH_CHECK("matmul_act_int8");
  }
}

int env_choice(const char* name) {
  const char* e = std::getenv(name);
  return e != nullptr ? std::atoi(e) : 0;
}

// Resident blocks per SM for one kernel instantiation and block size, asked once.
template <class A, int K, int R, bool kRound>
int resident_blocks(int threads, size_t smem) {
  struct Entry {
    int threads, blocks;
  };
  static thread_local Entry cache[8] = {};
  static thread_local int used = 0;
  for (int i = 0; i < used; ++i)
    if (cache[i].threads == threads) return cache[i].blocks;
  int blocks = 0;
  PV_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(
      &blocks, matvec_act_int8<A, K, R, kRound>, threads, smem));
  if (blocks < 1) blocks = 1;
  if (used < 8) cache[used++] = {threads, blocks};
  return blocks;
}

int sm_count() {
  static thread_local int n = [] {
    int dev = 0, v = 0;
    PV_CUDA_CHECK(cudaGetDevice(&dev));
    PV_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
    return v;
  }();
  return n;
}

template <class A, int K, int R, bool kRound>
void launch_form(const DeviceMatrix& w, int threads, const float* x, const ActCodes& codes,
                 bool accumulate, float* y) {
  const int rows = static_cast<int>(w.rows);
  const int nblocks = static_cast<int>(w.cols / A::kValues);
  const size_t per_group = sizeof(float) * (threads / 32) * R;  // shared bytes per row group
  // As many blocks as fit at once, each taking an even share of the row groups, but no
  // more groups per block than 48 KiB of partial sums hold (more blocks then).
  const int groups = (rows + R - 1) / R;
  const int waves_cap = static_cast<int>((48 << 10) / per_group);
  const int most = sm_count() * resident_blocks<A, K, R, kRound>(threads, per_group * 8);
  int waves = (groups + most - 1) / most;
  if (waves > waves_cap) waves = waves_cap;
  const int grid = (groups + waves - 1) / waves;
  const int per_block = (groups + grid - 1) / grid;
  static const int ahead = [] {  // groups ahead to prefetch into L2 (0: none)
    const char* e = std::getenv("PV_CUDA_MATVEC_PREFETCH");
    return e != nullptr ? std::atoi(e) : kPrefetchAhead;
  }();
  launch_dependent(matvec_act_int8<A, K, R, kRound>, dim3(grid), dim3(threads),
                   per_group * per_block, w.data, w.row_bytes, rows, nblocks, x, codes.codes,
                   codes.scales, ahead, accumulate, y);
}

template <class A, int K, int R>
void launch(const DeviceMatrix& w, int threads, const float* x, const ActCodes& codes,
            bool accumulate, float* y) {
  if (x != nullptr) return launch_form<A, K, R, true>(w, threads, x, codes, accumulate, y);
  launch_form<A, K, R, false>(w, threads, x, codes, accumulate, y);
}

// The (K, R) forms: R = 2 rows per group when there are rows enough and they are short
// (2 groups' fetches in flight per thread), K the fewest slots per thread (1, 2, 4) that fit a row
// into one block. Both multiply the registers a thread holds, so R = 2 is only built up to a
// per-type K (A::kMaxK2, where ptxas still keeps everything in registers: heavier forms
// spilled and ran 2-7x slower on the H100); past it the row runs at R = 1.
// PV_CUDA_MATVEC_K and PV_CUDA_MATVEC_ROWS force a form where it exists (benchmark sweeps).
template <class A, int K>
void launch_k(const DeviceMatrix& w, int threads, int R, const float* x, const ActCodes& codes,
              bool acc, float* y) {
  if constexpr (K <= A::kMaxK2) {
    if (R == 2) return launch<A, K, 2>(w, threads, x, codes, acc, y);
  }
  launch<A, K, 1>(w, threads, x, codes, acc, y);
}

template <class A>
void launch_chunk(const DeviceMatrix& w, const float* x, const ActCodes& codes, bool accumulate,
                  float* y) {
  const int64_t slots = w.cols / A::kValues * A::kParts;
  static const int forced_k = env_choice("PV_CUDA_MATVEC_K");
  static const int forced_r = env_choice("PV_CUDA_MATVEC_ROWS");
  const bool rounding = x != nullptr;
  auto fits = [&](int k, int r) {
    return (slots + k - 1) / k <= max_threads<A>(k, r) && (r == 1 || k <= A::kMaxK2);
  };
  // Two rows per group when there are rows enough (but one for K-quant rows past 4 KiB
  // when the kernel rounds x itself: its registers then cost resident blocks); K the
  // fewest slots per thread that fit a row into one block, but at least 2 for the
  // 32-value types, whose slots are small. H200 sweeps (kernels/cuda/NOTES.md):
  // Q8_0 18944x3584 22.0 us at K=2 against 27.9 at K=1; Q4_K 4096x14336 12.3 us at R=2
  // against 13.1 at R=1 from codes, 14.5 at R=1 against 16.2 at R=2 rounding x.
  const bool long_kquant_row = A::kValues == 256 && w.cols / A::kValues * A::kBytes > 4096;
  int R = w.rows >= 8 * sm_count() && !(rounding && long_kquant_row) ? 2 : 1;
  if (forced_r == 1 || forced_r == 2) R = forced_r;
  int K = 0;
  for (int k : {1, 2, 4})
    if (K == 0 && (k > 1 || A::kValues > 32) && fits(k, R)) K = k;
  if (K == 0) {  // too wide for R = 2 at any allowed K
    R = 1;
    K = fits(1, 1) && A::kValues > 32 ? 1 : fits(2, 1) ? 2 : 4;
  }
  if ((forced_k == 1 || forced_k == 2 || forced_k == 4) && fits(forced_k, R)) K = forced_k;
  const int threads = static_cast<int>(((slots + K - 1) / K + 31) / 32 * 32);
  switch (K) {
    case 1:
      return launch_k<A, 1>(w, threads, R, x, codes, accumulate, y);
    case 2:
      return launch_k<A, 2>(w, threads, R, x, codes, accumulate, y);
    default:
      return launch_k<A, 4>(w, threads, R, x, codes, accumulate, y);
  }
}

// x == nullptr: `codes` already holds x's codes; else the matvec rounds x itself and
// leaves the codes there.
template <class A>
void launch_type(const DeviceMatrix& w, const float* x, const ActCodes& codes, float* y) {
  // The row-streaming form for many rows: 8 or more per warp of the whole GPU (lm_head),
  // or 2 or more when a K-quant matvec rounds x itself; otherwise (FFN gate/up included)
  // the column-stationary form, whose fixed cost per launch is lower. H200
  // (kernels/cuda/NOTES.md): Q4_K 152064x3584 94 us in rows against 105 in
  // columns; Q8_0 18944x3584 22.1 us in columns against 25.5; Q4_K 18944x3584 rounding x
  // 16.0 us in rows against 17.4. PV_CUDA_MATVEC_FORM=rows|columns forces one.
  static const int forced = [] {
    const char* e = std::getenv("PV_CUDA_MATVEC_FORM");
    if (e == nullptr) return 0;
    return std::string(e) == "rows" ? 1 : std::string(e) == "columns" ? 2 : 0;
  }();
  const int per_warp = x != nullptr && A::kValues == 256 ? 2 : 8;
  const bool many_rows = w.rows >= int64_t{per_warp} * (kRowThreads / 32) * sm_count();
  const bool rows_form = forced == 1 || (forced == 0 && many_rows);
  if (rows_form && rows_form_smem<A>(w.cols) <= (200u << 10))
    return launch_rows_form<A>(w, x, codes, y);
  const int64_t nblocks = w.cols / A::kValues;
  const int64_t max_blocks = int64_t{max_threads<A>(kMaxK, 1)} * kMaxK / A::kParts;
  const int64_t chunks = (nblocks + max_blocks - 1) / max_blocks;
  const int64_t per = (nblocks + chunks - 1) / chunks;
  for (int64_t b0 = 0; b0 < nblocks; b0 += per) {
    DeviceMatrix part = w;
    part.data = w.data + b0 * A::kBytes;
    part.cols = (nblocks - b0 < per ? nblocks - b0 : per) * A::kValues;
    launch_chunk<A>(part, x != nullptr ? x + b0 * A::kValues : nullptr,
                    {codes.codes + b0 * A::kValues, codes.scales + b0}, b0 > 0, y);
  }
}

template <class A>
void launch_any(const DeviceMatrix& w, const float* x, int T, void* scratch, bool codes_ready,
                float* y) {
  const int64_t n = static_cast<int64_t>(T) * w.cols;
  const ActCodes codes = act_codes_in(scratch, n);
  // One token: the matvec rounds x itself (no extra launch) unless the codes are there.
  if (T == 1) return launch_type<A>(w, codes_ready ? nullptr : x, codes, y);
  if (!codes_ready) launch_quantize<A>(x, n, codes);
  launch_multi<A>(w, codes, T, y);
}

}  // namespace

size_t act_int8_scratch_bytes(const DeviceMatrix& w, int T) {
  if (act_block_values(w.type) == 0 || T < 1) return 0;
  const size_t n = static_cast<size_t>(T) * static_cast<size_t>(w.cols);
  return (n + 15) / 16 * 16 + n / 32 * sizeof(float);  // codes, then scales (<= n/32)
}

// Every block type rounds x in blocks of its own weight block (act_quant.cuh pairs one
// weight block with one activation block); float types (one value per block) keep f32 x.
int act_block_values(GgmlType type) {
  const int values = traits(type).block_values;
  return values > 1 ? values : 0;
}

bool launch_matmul_act_int8(const DeviceMatrix& w, const float* x, int T, void* scratch,
                            bool codes_ready, float* y) {
  switch (w.type) {
    case GgmlType::Q8_0:
      launch_any<ActQ8_0>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::Q4_0:
      launch_any<ActQ4_0>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::Q4_K:
      launch_any<ActQ4_K>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::Q6_K:
      launch_any<ActQ6_K>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::Q4_1:
      launch_any<ActQ4_1>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::Q5_0:
      launch_any<ActQ5_0>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::Q5_1:
      launch_any<ActQ5_1>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::IQ4_NL:
      launch_any<ActIQ4_NL>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::Q2_K:
      launch_any<ActQ2_K>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::Q3_K:
      launch_any<ActQ3_K>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::Q5_K:
      launch_any<ActQ5_K>(w, x, T, scratch, codes_ready, y);
      return true;
    case GgmlType::IQ4_XS:
      launch_any<ActIQ4_XS>(w, x, T, scratch, codes_ready, y);
      return true;
    default:
      return false;  // float weights: matmul.cu's fp32 kernels
  }
}

}  // namespace pv::kernels::cuda
