// File helpers for the spec/evidence tools: digests and atomic writes come from the harness
// core (sha256.h, atomic_file.h); this adds reading a whole file with a clear error.
#pragma once

#include <filesystem>
#include <string>

#include "harness/atomic_file.h"
#include "harness/sha256.h"

namespace pv::harness {

// Reads a whole file; throws std::runtime_error naming the file when it cannot.
std::string read_file_bytes(const std::filesystem::path& path);

}  // namespace pv::harness
