// Non-finite values in stored weights. A NaN or infinite weight or quant scale makes every
// forward pass produce NaN logits, and argmax of NaN logits is token 0: generate would
// print it with exit 0. The loader refuses such a tensor, naming it and the byte.
#pragma once

#include <cstdint>
#include <optional>

#include "kernels/quant/ggml_types.h"

namespace pv::model {

// Byte offset (within the tensor's data) of the first non-finite F32/F16/BF16 value, or of
// the first non-finite fp16 scale of a Q8_0/Q4_0/Q4_K/Q6_K block; nullopt when all are
// finite. Types it does not know are not scanned.
std::optional<uint64_t> first_non_finite(kernels::GgmlType type, const uint8_t* data,
                                         uint64_t nbytes);

}  // namespace pv::model
