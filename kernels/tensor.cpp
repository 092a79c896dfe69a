#include "kernels/tensor.h"

namespace pv::kernels {

const uint8_t* TensorView::row(int64_t r) const {
  return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * row_bytes(type, cols);
}

}  // namespace pv::kernels
