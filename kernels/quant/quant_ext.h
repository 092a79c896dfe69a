// Decoders and quantizers of Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q5_K, IQ4_NL and IQ4_XS (ggml
// layouts in quant_blocks.h). Called by dequantize_row / quantize_row, which validate the
// row length and the inputs first; `nb` is the number of blocks.
#pragma once

#include <cstdint>

#include "kernels/quant/ggml_types.h"
#include "kernels/quant/quant_blocks.h"

namespace pv::kernels {

// Decodes nb blocks of one of the eight types above (other types: nothing written).
void dequantize_ext(GgmlType type, const void* src, float* dst, int64_t nb);

void quantize_q4_1(const float* x, BlockQ4_1* b, int64_t nb);
void quantize_q5_0(const float* x, BlockQ5_0* b, int64_t nb);
void quantize_q5_1(const float* x, BlockQ5_1* b, int64_t nb);
void quantize_q2_K(const float* x, BlockQ2_K* b, int64_t nb);
void quantize_q3_K(const float* x, BlockQ3_K* b, int64_t nb);
void quantize_q5_K(const float* x, BlockQ5_K* b, int64_t nb);
void quantize_iq4_nl(const float* x, BlockIQ4_NL* b, int64_t nb);
void quantize_iq4_xs(const float* x, BlockIQ4_XS* b, int64_t nb);

}  // namespace pv::kernels
