// Matrix product of a weight in its stored type with f32 activations:
//   y[t, r] = sum_c w[r, c] * x[t, c],   x: [T, w.cols], y: [T, w.rows]  (row-major).
// Block weights (every block type in ggml_types.h) are consumed block by block, never
// dequantized: each token's activations are quantized once to int8 blocks with an f32 scale
// per 32 (32-value weight blocks) or per 256 (256-value weight blocks) values, as ggml does, and
// each block dot is an integer sum scaled once. Accuracy trade-off: the activation rounding adds,
// per block, at most (amax_x/254) * sum|w| to a block's dot (relative error ~0.4% of the block's
// |w|.|x| scale in the worst case, ~1/sqrt(n) of that typically), in exchange for 4-8x fewer
// instructions per weight byte than an f32 dot, which keeps the matvec memory-bound.
// F32/F16/BF16 weights are dotted with the f32 activations directly (f32 accumulation).
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.h"
#include "kernels/tensor.h"

namespace pv::kernels::cpu {

using pv::kernels::GgmlType;
using pv::kernels::TensorView;

// Throws std::invalid_argument (naming the tensor) when w.cols is not a multiple of the
// type's block size, w.nbytes is smaller than rows * row_bytes, or T < 0. pool may be null
// (single-threaded). Uses the SIMD level of active_simd() (simd.h).
void matmul(const TensorView& w, const float* x, int T, float* y, ThreadPool* pool);

// One row of `n` values of `type` dotted with x through the same activation quantization and
// kernels as matmul (for tests and one-off dots).
float dot_row(GgmlType type, const void* w_row, const float* x, int64_t n);

}  // namespace pv::kernels::cpu
