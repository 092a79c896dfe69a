// Row dequantization for the embedding lookup (and for small 1-D weights such as norm
// and bias vectors stored in F16/BF16), through the block decoders of quant.h.
#include <stdexcept>
#include <string>

#include "kernels/cpu/ops.h"
#include "kernels/quant/quant.h"

namespace pv::kernels::cpu {

void dequantize_view_row(const TensorView& view, int64_t row, float* out) {
  if (row < 0 || row >= view.rows) {
    throw std::out_of_range("row " + std::to_string(row) + " outside tensor '" + view.name + "'");
  }
  dequantize_row(view.type, view.row(row), out, view.cols);
}

}  // namespace pv::kernels::cpu
