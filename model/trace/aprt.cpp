#include "model/trace/aprt.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "mutants/mutant.h"

namespace pv::model {
namespace {

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

AprtError::AprtError(const std::string& path, uint64_t offset, const std::string& msg)
    : std::runtime_error(fmt::format("{}: byte offset {}: {}", path, offset, msg)),
      path_(path),
      offset_(offset) {}

std::vector<uint8_t> aprt_encode(uint32_t layer, const float* data, size_t n) {
  if (n > std::numeric_limits<uint32_t>::max()) {
    throw std::invalid_argument(fmt::format("APRT holds at most 2^32-1 elements, stage has {}", n));
  }
  std::vector<uint8_t> out(kAprtHeaderBytes + 4 * n);
  std::memcpy(out.data(), kAprtMagic, 4);
  put_u32(out.data() + 4, layer);
  put_u32(out.data() + 8, static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &data[i], 4);
    put_u32(out.data() + kAprtHeaderBytes + 4 * i, bits);
  }
  return out;
}

AprtTensor aprt_decode(const uint8_t* bytes, size_t size, const std::string& path) {
  if (size < kAprtHeaderBytes) {
    throw AprtError(path, size,
                    fmt::format("truncated APRT header: file has {} bytes, the header needs {}",
                                size, kAprtHeaderBytes));
  }
  if (std::memcmp(bytes, kAprtMagic, 4) != 0) {
    throw AprtError(path, 0,
                    fmt::format("bad magic {:02x} {:02x} {:02x} {:02x}, expected \"APRT\" "
                                "(41 50 52 54)",
                                bytes[0], bytes[1], bytes[2], bytes[3]));
  }
  AprtTensor t;
  t.layer = get_u32(bytes + 4);
  const uint64_t count = get_u32(bytes + 8);
  const uint64_t expected = kAprtHeaderBytes + 4 * count;
  if (expected != size && !(mutant::planted(mutant::Bug::AprtTrailingBytes) && size > expected)) {
    throw AprtError(path, 8,
                    fmt::format("element count {} needs a file of 12 + 4*{} = {} bytes, but the "
                                "file has {} bytes",
                                count, count, expected, size));
  }
  t.data.resize(count);
  for (uint64_t i = 0; i < count; ++i) {
    const uint32_t bits = get_u32(bytes + kAprtHeaderBytes + 4 * i);
    std::memcpy(&t.data[i], &bits, 4);
  }
  return t;
}

void write_aprt(const std::string& path, uint32_t layer, const float* data, size_t n) {
  const std::vector<uint8_t> bytes = aprt_encode(layer, data, n);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f)
      throw std::runtime_error(fmt::format("{}: cannot create: {}", tmp, std::strerror(errno)));
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
    if (!f) throw std::runtime_error(fmt::format("{}: write failed", tmp));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    throw std::runtime_error(fmt::format("{}: cannot rename into place: {}", path, ec.message()));
}

AprtTensor read_aprt(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot open: {}", path, ec.message()));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open", path));
  // Validate the header before reading the body so a huge bogus file is not slurped.
  uint8_t header[kAprtHeaderBytes] = {};
  const size_t head_n = size < kAprtHeaderBytes ? static_cast<size_t>(size) : kAprtHeaderBytes;
  f.read(reinterpret_cast<char*>(header), static_cast<std::streamsize>(head_n));
  if (size < kAprtHeaderBytes) return aprt_decode(header, head_n, path);  // throws
  if (std::memcmp(header, kAprtMagic, 4) != 0) return aprt_decode(header, head_n, path);
  const uint64_t count = get_u32(header + 8);
  if (kAprtHeaderBytes + 4 * count != size) {
    throw AprtError(path, 8,
                    fmt::format("element count {} needs a file of 12 + 4*{} = {} bytes, but the "
                                "file has {} bytes",
                                count, count, kAprtHeaderBytes + 4 * count, size));
  }
  std::vector<uint8_t> bytes(size);
  std::memcpy(bytes.data(), header, kAprtHeaderBytes);
  f.read(reinterpret_cast<char*>(bytes.data() + kAprtHeaderBytes),
         static_cast<std::streamsize>(size - kAprtHeaderBytes));
  if (!f) throw AprtError(path, kAprtHeaderBytes, "short read of the element data");
  return aprt_decode(bytes.data(), bytes.size(), path);
}

}  // namespace pv::model
