// Reading the process table (/proc) to find everything a test started: its descendants by
// parent chain, and every process that still carries the run's marker in its environment
// (a grandchild that called setsid() and whose parent died is neither in the test's process
// group nor below it any more, but it inherited the marker).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pv::harness {

struct ProcInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t pgid = 0;
  char state = '?';  // 'Z': a zombie waiting to be reaped
};

// Every process visible in /proc (those that vanish while it is read are skipped).
std::vector<ProcInfo> list_processes();
// The value of `key` in the environment `pid` was started with; nullopt when the process
// is gone, a zombie, not readable, or has no such variable.
std::optional<std::string> process_env(pid_t pid, std::string_view key);

// The environment variable that marks a test process tree: "<pv pid>.<run number>".
constexpr std::string_view kProcessTreeVar = "PV_PROCESS_TREE";

// Processes marked by a pv whose pid is no longer running (left over when pv was killed
// with SIGKILL and a grandchild outlived the test): killed with SIGKILL. Returns their pids.
std::vector<pid_t> kill_orphaned_test_processes();
// Every live process marked by this pv (any run): SIGKILL. For pv's interrupt path, where
// grandchildren outside a test's process group must go too.
void kill_marked_by_self();

}  // namespace pv::harness
