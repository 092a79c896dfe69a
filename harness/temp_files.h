// Temporary files and directories pv makes for itself (a test's stdout/stderr, its gtest
// report, the temp file of an atomic write) and how they are cleaned up: on a normal
// return (RAII), on SIGINT/SIGTERM (every registered path is removed before pv dies of the
// signal), and at the next start (leftovers of a pv killed with SIGKILL: the writer's pid
// is part of every name, so a leftover is recognised once that pid is gone).
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace pv::harness {

// A failure of the machine pv runs on (a full or unwritable $TMPDIR, an evidence dir that
// cannot be locked), not of a claim: `pv validate` exits 3 and grades nothing.
class EnvironmentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The directory temp dirs go to: $TMPDIR when set (even when unusable: that is reported,
// never silently replaced), else /tmp.
std::string temp_root();

// A fresh directory <temp_root>/pv-<tag>-pid<pid>-XXXXXX, registered for signal cleanup and
// removed with everything in it when the object is destroyed. Throws EnvironmentError
// naming the path and errno when it cannot be made.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Leaves the directory in place when the object is destroyed or pv is interrupted: a
  // test run with PV_KEEP_TMP keeps its scratch files for inspection.
  void keep();

 private:
  std::string path_;
  int slot_ = -1;
  bool keep_ = false;
};

// Registers a path (file or directory) to remove if pv is interrupted; returns a slot for
// unregister_temp (-1 when the registry is full: the path is then only cleaned at the next
// start).
int register_temp(const std::string& path);
void unregister_temp(int slot);
// Removes every registered path (directories with their contents). Called by the signal
// thread of `pv`, never from an asynchronous signal handler.
void remove_registered_temps();

// Checks that `dir` takes a small file (create, write, fsync): a full, read-only or missing
// temp dir is found before any test runs. Throws EnvironmentError naming the path and errno.
void probe_writable_dir(const std::string& dir, const std::string& what);

// Removes leftovers of pv processes that are gone: under `dir` (recursively when asked),
// entries named like pv's own temp paths whose pid is not running and whose mtime is older
// than `min_age`. `kind` picks the pattern: kTempDirs matches pv-<tag>-pid<pid>-XXXXXX in the
// temp root; kAtomicWrites matches .<name>.tmp-<pid>-XXXXXX (and the older pid-less
// .<name>.tmp-XXXXXX, after a day). Returns the paths removed.
enum class TempKind { kTempDirs, kAtomicWrites };
std::vector<std::string> clean_stale_temps(const std::string& dir, TempKind kind,
                                           std::chrono::seconds min_age, bool recursive);

// How old a leftover must be before the next start removes it (a live writer renames or
// removes its temp files within seconds; this margin guards against pid reuse and clocks).
constexpr std::chrono::seconds kStaleTempAge{10 * 60};

}  // namespace pv::harness
