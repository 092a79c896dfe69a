// APRT: the per-stage tensor file of a trace (DESIGN.md "Traces"), compatible with the
// aprender tools. Bytes 0-3 "APRT", 4-7 u32 LE layer (0xFFFFFFFF = whole model),
// 8-11 u32 LE element count n, then n f32 LE. A valid file is exactly 12 + 4n bytes.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pv::model {

inline constexpr char kAprtMagic[4] = {'A', 'P', 'R', 'T'};
inline constexpr size_t kAprtHeaderBytes = 12;

// A malformed APRT file. what() names the path and the byte offset of the problem.
class AprtError : public std::runtime_error {
 public:
  AprtError(const std::string& path, uint64_t offset, const std::string& msg);
  const std::string& path() const { return path_; }
  uint64_t offset() const { return offset_; }

 private:
  std::string path_;
  uint64_t offset_;
};

struct AprtTensor {
  uint32_t layer = 0;
  std::vector<float> data;
};

// Serialise to bytes (header + little-endian floats), independent of host endianness.
std::vector<uint8_t> aprt_encode(uint32_t layer, const float* data, size_t n);
// Parse bytes; `path` is only used in error messages. Never allocates from an unchecked
// count: the count must match the byte length first.
AprtTensor aprt_decode(const uint8_t* bytes, size_t size, const std::string& path);

// Write atomically (temp file + rename), so a crashed capture leaves no half file.
void write_aprt(const std::string& path, uint32_t layer, const float* data, size_t n);
AprtTensor read_aprt(const std::string& path);

}  // namespace pv::model
