// A falsifier's scratch directory: the project's own harness::TempDir (a fresh
// $TMPDIR/pv-<tag>-pid<pid>-XXXXXX, removed with everything in it when the object goes), kept
// for inspection when PV_KEEP_TMP is set.
#pragma once

#include <cstdlib>
#include <string>

#include "harness/temp_files.h"

namespace pv::testing {

class TempDir {
 public:
  explicit TempDir(const std::string& tag) : dir_(tag) {}
  ~TempDir() {
    if (std::getenv("PV_KEEP_TMP") != nullptr) dir_.keep();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return dir_.path(); }
  std::string sub(const std::string& name) const { return dir_.path() + "/" + name; }

 private:
  harness::TempDir dir_;
};

}  // namespace pv::testing
