// Crash-safe file replacement: write a temp file in the same directory, fsync it, rename
// it over the target, fsync the directory. A reader sees the old file or the new one,
// never a torn mix — even when the writer is killed mid-write.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace pv::harness {

struct AtomicWriteHooks {
  // Test seam: runs after the temp file is written and synced, before the rename.
  std::function<void()> before_rename;
  // Test seam: bytes per write() call (small values widen the mid-write window).
  size_t chunk_bytes = 1 << 20;
};

// Throws std::runtime_error (naming the path and errno text) on failure; the target is
// untouched then.
void write_file_atomic(const std::string& path, std::string_view content,
                       const AtomicWriteHooks* hooks = nullptr);

}  // namespace pv::harness
