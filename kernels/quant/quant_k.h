// K-quant quantizers (Q4_K, Q6_K): a least-squares scale (and min) search per sub-block,
// then a second search over the 6-/8-bit quantized sub-block scales. Called by quantize_row.
#pragma once

#include <cstdint>

#include "kernels/quant/quant_blocks.h"

namespace pv::kernels {

void quantize_q4_K(const float* x, BlockQ4_K* b, int64_t nb);
void quantize_q6_K(const float* x, BlockQ6_K* b, int64_t nb);

}  // namespace pv::kernels
