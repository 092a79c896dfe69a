// Runs a program directly from an argv list — never through a shell, so a contract
// cannot smuggle in a command — in its own process group, with a wall-clock timeout.
// The child is tied to pv: it gets SIGKILL when the pv thread that started it dies (also
// when pv is killed with SIGKILL; so that thread must outlive the child, as run_process's
// caller does), and the pv CLI is a child subreaper, so a grandchild that escapes the group
// with setsid() is reparented to pv instead of init. When the child
// exits or times out, its whole tree is killed and reaped: the process group, every
// descendant, and every process carrying the run's PV_PROCESS_TREE marker
// (harness/process_tree.h). A crash or a hang of the child is a result to report, never
// something that takes the harness down.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace pv::harness {

struct ProcessOptions {
  std::vector<std::string> argv;           // argv[0] is the program
  std::map<std::string, std::string> env;  // added to (or replacing in) the inherited env
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  bool search_path = false;  // resolve argv[0] through $PATH (like execvp)
  std::string cwd;           // empty: inherit
  size_t tail_bytes = 4096;  // how much of stdout/stderr to keep (the end)
};

struct ProcessResult {
  bool started = false;
  std::string spawn_error;  // why it did not start (when !started)
  // Set (with spawn_error) when pv's own temp dir failed it, not the program: the run says
  // nothing about the test (temp_files.h, EnvironmentError).
  std::string environment_error;
  int exit_code = -1;   // when it exited normally
  int term_signal = 0;  // when a signal ended it (SIGKILL after a timeout included)
  bool timed_out = false;
  double duration_ms = 0;
  std::string stdout_text;  // the last tail_bytes of each stream
  std::string stderr_text;

  bool ok() const { return started && !timed_out && term_signal == 0 && exit_code == 0; }
  // "exit code 1", "killed by signal 11 (SIGSEGV)", "timed out after 2.0 s", ...
  std::string describe() const;
};

ProcessResult run_process(const ProcessOptions& opts);

// Kills the process groups of every child run_process is waiting on. Async-signal-safe:
// pv's SIGINT/SIGTERM handler calls it so an interrupted run leaves no test behind
// (children live in their own process groups and do not see the terminal's Ctrl-C).
void kill_running_children();

// Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER), and
// lets run_process reap every zombie it finds as their parent. The pv CLI calls it at start
// (all its children come from run_process); a program that starts children of its own must
// not call it.
void become_child_subreaper();

}  // namespace pv::harness
