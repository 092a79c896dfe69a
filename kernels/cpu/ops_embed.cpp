// Row dequantization for the embedding lookup (and for small 1-D weights such as norm
// and bias vectors stored in F16/BF16). Plain float types are converted here; block
// types go through the quantized-block code in quant.h.
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cpu/ops.h"

namespace pv::kernels::cpu {
namespace {

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace

void dequantize_view_row(const TensorView& view, int64_t row, float* out) {
  if (row < 0 || row >= view.rows) {
    throw std::out_of_range("row " + std::to_string(row) + " outside tensor '" + view.name + "'");
  }
  const uint8_t* src = view.row(row);
  const int64_t n = view.cols;
  switch (view.type) {
    case GgmlType::F32:
      std::memcpy(out, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = f16_to_f32(h);
      }
      return;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        const uint32_t bits = static_cast<uint32_t>(h) << 16;
        std::memcpy(out + i, &bits, 4);
      }
      return;
    default:
      throw std::invalid_argument("dequantize: tensor '" + view.name + "' of type " +
                                  std::string(type_name(view.type)) + " is not supported yet");
  }
}

}  // namespace pv::kernels::cpu
