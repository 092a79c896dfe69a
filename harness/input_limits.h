// Limits on what the harness reads from files it did not write (gtest reports, evidence
// bundles, index.json, contracts): a hostile or broken file must end in a clear error
// naming the file and the place, never in a stack overflow, a hang or unbounded memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace pv::harness {

// Deepest JSON nesting pv accepts. nlohmann's parser is iterative, but copying, comparing
// and dumping a value recurse once per level: a file of a few MB of '[' overflows the stack.
constexpr int kMaxJsonDepth = 256;
// Largest gtest report read (a report of the few tests of one binding is kilobytes).
constexpr uint64_t kMaxGtestReportBytes = 64ull << 20;
// Largest evidence bundle / index.json / contract read.
constexpr uint64_t kMaxEvidenceFileBytes = 64ull << 20;
constexpr uint64_t kMaxContractBytes = 4ull << 20;

// "byte N: JSON nested deeper than D levels" when `text` opens more than max_depth arrays
// or objects at once (strings are skipped); nullopt otherwise. Linear, no recursion.
std::optional<std::string> json_nesting_error(std::string_view text, int max_depth = kMaxJsonDepth);

// `text` with every byte sequence that is not valid UTF-8 replaced by U+FFFD, so a tail cut
// mid-character (or binary output) can still be written as JSON.
std::string sanitize_utf8(std::string_view text);
// Byte offset of the first byte that does not start a valid UTF-8 sequence; nullopt if none.
std::optional<size_t> first_invalid_utf8(std::string_view text);

// Reads a whole regular file of at most max_bytes. A FIFO, device, directory or a file over
// the limit is refused before anything is read (no blocking open, no unbounded read).
// Throws std::runtime_error naming the file.
std::string read_regular_file(const std::filesystem::path& path, uint64_t max_bytes);

}  // namespace pv::harness
