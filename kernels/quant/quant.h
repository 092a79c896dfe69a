// Row decoders and quantizers for every weight type pv stores (F32, F16, BF16, Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS). A row is `n` values; for block
// types n must be a multiple of the block size (32 or 256) or std::invalid_argument is thrown
// naming the type and n; block quantizers also refuse non-finite inputs (naming the index).
// `dst`/`src` of the stored type hold row_bytes(type, n) bytes.
//
// Decoders reproduce ggml's to_float bit for bit. Quantizer error bounds (per value x in a
// block; see contracts/quant-blocks-v1.yaml, which tests them):
//   F16, BF16  round to nearest even (|err| <= half an ulp of the target format)
//   Q8_0       d = amax/127 (fp16), q = round(x/d):         |err| <= d/2
//   Q4_0       d = -xmax/8 (xmax: signed value of max |x|):  |err| <= |d| (<= amax/8)
//   Q4_K       per-32 scale/min least-squares search, 6-bit scales/mins
//   Q6_K       per-16 symmetric scale search, int8 scales under an fp16 super-scale
//   Q4_1, Q5_1 per-32 least-squares scale/offset (fp16 each), levels 0..15 / 0..31
//   Q5_0       per-32 symmetric least-squares scale, levels -16..15
//   IQ4_NL     per-32 scale for the fixed 16-level codebook, nearest codebook entry
//   Q2_K, Q3_K per-16 affine (levels 0..3, 4-bit scale/min) / symmetric (-4..3, 6-bit scale)
//   Q5_K       as Q4_K with levels 0..31; IQ4_XS as IQ4_NL with 6-bit sub-block scales
// (all but Q8_0/Q4_0 have statistical bounds: contracts/quant-blocks-v1.yaml states them.)
#pragma once

#include <cstdint>

#include "kernels/quant/ggml_types.h"
#include "kernels/quant/half.h"  // fp16/bf16 <-> f32 helpers

namespace pv::kernels {

using pv::kernels::GgmlType;

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n);
void quantize_row(GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace pv::kernels
