// SHA-256 (FIPS 180-4) and atomic file writes for the spec/evidence tools. The amend,
// merge and gc tools need content digests that do not depend on the harness core's
// internals, so they carry their own small implementation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace pv::harness {

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// Reads a whole file; throws std::runtime_error naming the file when it cannot.
std::string read_file_bytes(const std::filesystem::path& path);

// Writes `bytes` to `path` atomically: a temporary file in the same directory is
// written, flushed to disk and renamed over `path`, so a reader (or a crash) sees the
// old file or the new one, never half of one. Throws std::runtime_error on failure.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

}  // namespace pv::harness
