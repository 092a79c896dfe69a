#include "harness/temp_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

namespace pv::harness {
namespace {

namespace fs = std::filesystem;

std::mutex g_mu;
std::map<int, std::string> g_registered;
int g_next_slot = 0;

bool all_digits(std::string_view s) {
  if (s.empty() || s.size() > 10) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Whether `pid` names no running process (a pid pv cannot signal for lack of permission
// is someone's live process).
bool pid_gone(long pid) {
  if (pid <= 0 || pid == ::getpid()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// The writer pid in "<prefix><pid>-XXXXXX" (the mkstemp/mkdtemp suffix: 6 characters);
// -1 when the tail is not of that shape, 0 when it is the older pid-less "<prefix>XXXXXX".
long pid_in_tail(std::string_view tail) {
  if (tail.size() == 6) return 0;
  if (tail.size() < 8 || tail[tail.size() - 7] != '-') return -1;
  const std::string_view pid = tail.substr(0, tail.size() - 7);
  if (!all_digits(pid)) return -1;
  return std::stol(std::string(pid));
}

// -1: not a name pv makes; 0: an old pid-less name; else the writer's pid.
long writer_pid(const std::string& name, TempKind kind) {
  if (kind == TempKind::kTempDirs) {
    if (name.rfind("pv-", 0) != 0 || name.size() < 3 + 1 + 1 + 1 + 6) return -1;
    // pv-<tag>-pid<pid>-XXXXXX: the tag may hold '-', so read from the end.
    const size_t suffix = name.size() - 7;
    if (name[suffix] != '-') return -1;
    const size_t dash = name.rfind('-', suffix - 1);
    if (dash == std::string::npos || dash < 3) return -1;
    const std::string_view seg = std::string_view(name).substr(dash + 1, suffix - dash - 1);
    if (seg.size() < 4 || seg.substr(0, 3) != "pid" || !all_digits(seg.substr(3))) return -1;
    const long pid = std::stol(std::string(seg.substr(3)));
    return pid > 0 ? pid : -1;
  }
  if (name.empty() || name[0] != '.') return -1;
  const size_t at = name.rfind(".tmp-");
  if (at == std::string::npos || at == 0) return -1;
  return pid_in_tail(std::string_view(name).substr(at + 5));
}

}  // namespace

std::string temp_root() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? std::string(t) : std::string("/tmp");
}

TempDir::TempDir(const std::string& tag) {
  std::string tmpl = fmt::format("{}/pv-{}-pid{}-XXXXXX", temp_root(), tag, ::getpid());
  if (::mkdtemp(tmpl.data()) == nullptr) {
    const int e = errno;
    throw EnvironmentError(fmt::format("cannot create a temporary directory {}: {} (errno {})",
                                       tmpl, std::strerror(e), e));
  }
  path_ = std::move(tmpl);
  slot_ = register_temp(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!keep_) fs::remove_all(path_, ec);
  unregister_temp(slot_);
}

void TempDir::keep() {
  keep_ = true;
  unregister_temp(slot_);
  slot_ = -1;
}

int register_temp(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mu);
  const int slot = g_next_slot++;
  g_registered.emplace(slot, path);
  return slot;
}

void unregister_temp(int slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(g_mu);
  g_registered.erase(slot);
}

void remove_registered_temps() {
  std::map<int, std::string> paths;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    paths.swap(g_registered);
  }
  for (const auto& [slot, p] : paths) {
    std::error_code ec;
    fs::remove_all(p, ec);
  }
}

void probe_writable_dir(const std::string& dir, const std::string& what) {
  std::string name = fmt::format("{}/.pv-probe-{}-XXXXXX", dir, ::getpid());
  const int fd = ::mkstemp(name.data());
  auto fail = [&](const std::string& step, int e) {
    throw EnvironmentError(fmt::format("{} {} is not usable: {} failed: {} (errno {})", what, dir,
                                       step, std::strerror(e), e));
  };
  if (fd < 0) fail("creating a file", errno);
  const int slot = register_temp(name);
  // Enough for a gtest report and a test's output tail; a full tmpfs fails here.
  static const std::string block(64 * 1024, 'p');
  size_t off = 0;
  int err = 0;
  const char* step = nullptr;
  while (off < block.size()) {
    const ssize_t w = ::write(fd, block.data() + off, block.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      err = errno;
      step = "writing 64 KiB";
      break;
    }
    off += static_cast<size_t>(w);
  }
  if (step == nullptr && ::fsync(fd) != 0) {
    err = errno;
    step = "fsync";
  }
  ::close(fd);
  ::unlink(name.c_str());
  unregister_temp(slot);
  if (step != nullptr) fail(step, err);
}

std::vector<std::string> clean_stale_temps(const std::string& dir, TempKind kind,
                                           std::chrono::seconds min_age, bool recursive) {
  std::vector<std::string> removed;
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  auto consider = [&](const fs::directory_entry& e) {
    const std::string name = e.path().filename().string();
    const long pid = writer_pid(name, kind);
    if (pid < 0) return;
    std::error_code ec2;
    if (e.is_symlink(ec2)) return;
    const auto mtime = e.last_write_time(ec2);
    if (ec2) return;
    // A pid-less name gives no writer to check: only its age says it is abandoned.
    const auto need = pid == 0 ? std::max(min_age, std::chrono::seconds(24 * 3600)) : min_age;
    if (now - mtime < need) return;
    if (pid > 0 && !pid_gone(pid)) return;
    fs::remove_all(e.path(), ec2);
    if (!ec2) removed.push_back(e.path().string());
  };
  if (recursive) {
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (writer_pid(it->path().filename().string(), kind) < 0) continue;
      std::error_code ec2;
      if (it->is_directory(ec2)) it.disable_recursion_pending();
      consider(*it);
    }
  } else {
    for (const auto& e : fs::directory_iterator(dir, ec)) consider(e);
  }
  return removed;
}

}  // namespace pv::harness
