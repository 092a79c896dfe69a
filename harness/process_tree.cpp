#include "harness/process_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace pv::harness {
namespace {

// Reads a small /proc file whole (they report size 0, so read until EOF).
std::string read_proc_file(const std::string& path) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1u << 22)) break;  // an environment is bounded by ARG_MAX anyway
  }
  ::close(fd);
  return out;
}

}  // namespace

std::vector<ProcInfo> list_processes() {
  std::vector<ProcInfo> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    const char* name = e->d_name;
    if (name[0] < '0' || name[0] > '9') continue;
    const std::string stat = read_proc_file(std::string("/proc/") + name + "/stat");
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and ')', so parse after the
    // last ')'.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) continue;
    ProcInfo p;
    p.pid = static_cast<pid_t>(std::atol(name));
    char state = '?';
    long ppid = 0, pgid = 0;
    if (std::sscanf(stat.c_str() + close + 2, "%c %ld %ld", &state, &ppid, &pgid) != 3) continue;
    p.state = state;
    p.ppid = static_cast<pid_t>(ppid);
    p.pgid = static_cast<pid_t>(pgid);
    out.push_back(p);
  }
  ::closedir(d);
  return out;
}

std::optional<std::string> process_env(pid_t pid, std::string_view key) {
  const std::string env = read_proc_file("/proc/" + std::to_string(pid) + "/environ");
  size_t pos = 0;
  while (pos < env.size()) {
    size_t end = env.find('\0', pos);
    if (end == std::string::npos) end = env.size();
    const std::string_view kv(env.data() + pos, end - pos);
    if (kv.size() > key.size() && kv.substr(0, key.size()) == key && kv[key.size()] == '=') {
      return std::string(kv.substr(key.size() + 1));
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::vector<pid_t> kill_orphaned_test_processes() {
  std::vector<pid_t> killed;
  const pid_t self = ::getpid();
  for (const ProcInfo& p : list_processes()) {
    if (p.pid == self || p.state == 'Z') continue;
    const auto mark = process_env(p.pid, kProcessTreeVar);
    if (!mark) continue;
    const long owner = std::atol(mark->c_str());
    if (owner <= 0 || owner == self) continue;
    if (::kill(static_cast<pid_t>(owner), 0) == 0 || errno != ESRCH) continue;
    if (::kill(p.pid, SIGKILL) == 0) killed.push_back(p.pid);
  }
  return killed;
}

void kill_marked_by_self() {
  const pid_t self = ::getpid();
  for (const ProcInfo& p : list_processes()) {
    if (p.pid == self || p.state == 'Z') continue;
    const auto mark = process_env(p.pid, kProcessTreeVar);
    if (mark && std::atol(mark->c_str()) == self) ::kill(p.pid, SIGKILL);
  }
}

}  // namespace pv::harness
