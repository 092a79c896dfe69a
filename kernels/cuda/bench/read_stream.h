// The read ceiling for the matvec bench (read_stream.cu).
#pragma once

#include <cstddef>
#include <vector>

namespace pv::kernels::cuda {

// Bytes per second of a streaming read kernel reading `bytes` from each of `bufs` in turn
// (device pointers, 16-byte aligned), `count` kernels back to back per timing, median of 20.
double read_stream_bandwidth(const std::vector<const void*>& bufs, size_t bytes, int count);

}  // namespace pv::kernels::cuda
