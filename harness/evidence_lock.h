// One writer at a time per evidence directory: `pv validate` holds an exclusive flock on
// <evidence-dir>/.pv-validate.lock while it writes bundles and reads, merges and rewrites
// index.json, so two validates into one directory cannot lose each other's index entries.
// Tests still run in parallel; only the writing is serialized. The lock dies with its
// holder (flock), so a killed pv never leaves the directory locked.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace pv::harness {

constexpr const char* kEvidenceLockName = ".pv-validate.lock";

class EvidenceLock {
 public:
  // Waits up to `wait` for the lock, calling `on_wait` once (with a message naming the lock
  // file and the holder's pid) when it has to wait. Throws EnvironmentError when the lock
  // file cannot be opened or the wait runs out.
  EvidenceLock(const std::string& evidence_dir, std::chrono::milliseconds wait,
               const std::function<void(const std::string&)>& on_wait = {});
  ~EvidenceLock();
  EvidenceLock(const EvidenceLock&) = delete;
  EvidenceLock& operator=(const EvidenceLock&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace pv::harness
