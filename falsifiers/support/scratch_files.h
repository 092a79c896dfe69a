// Scratch files for the tests that drive pv on a tree of their own (evidence, reports,
// spec amendments): a fresh directory under the system temp dir and whole-file writes.
#pragma once

#include <filesystem>
#include <string>

namespace pv::testing {

// A new directory $TMPDIR/pv-<tag>-XXXXXX (mkdtemp); throws if it cannot be made. Removed
// when the test program ends with every test passed; kept (and printed) when one failed or
// PV_KEEP_TMP is set, so a failing run can be inspected.
std::filesystem::path make_temp_dir(const std::string& tag);

// Writes `text` to `path` (binary), creating its parent directories.
void write_text(const std::filesystem::path& path, const std::string& text);

}  // namespace pv::testing
