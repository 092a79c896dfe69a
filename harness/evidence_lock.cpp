#include "harness/evidence_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "harness/temp_files.h"

namespace pv::harness {
namespace {

std::string holder_of(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string s(buf, n > 0 ? static_cast<size_t>(n) : 0);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() ? std::string("unknown") : s;
}

}  // namespace

EvidenceLock::EvidenceLock(const std::string& evidence_dir, std::chrono::milliseconds wait,
                           const std::function<void(const std::string&)>& on_wait) {
  std::error_code ec;
  std::filesystem::create_directories(evidence_dir, ec);
  path_ = (std::filesystem::path(evidence_dir) / kEvidenceLockName).string();
  // O_CLOEXEC: a test binary started while the lock is held must not inherit (and keep) it.
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int e = errno;
    throw EnvironmentError(
        fmt::format("cannot open the evidence lock {}: {} (errno {})", path_, std::strerror(e), e));
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  bool told = false;
  for (;;) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) break;
    const int e = errno;
    if (e != EWOULDBLOCK && e != EINTR) {
      ::close(fd_);
      throw EnvironmentError(
          fmt::format("cannot lock {}: {} (errno {})", path_, std::strerror(e), e));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      const std::string holder = holder_of(fd_);
      ::close(fd_);
      throw EnvironmentError(fmt::format(
          "the evidence directory {} is locked by another pv validate (pid {}, lock {}) and "
          "stayed locked for {:.1f} s; nothing was written",
          evidence_dir, holder, path_, wait.count() / 1000.0));
    }
    if (!told && on_wait) {
      told = true;
      on_wait(fmt::format("waiting for {} (held by pid {}, another pv validate writing evidence)",
                          path_, holder_of(fd_)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    ssize_t ignored = ::pwrite(fd_, pid.data(), pid.size(), 0);
    (void)ignored;
  }
}

EvidenceLock::~EvidenceLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

}  // namespace pv::harness
