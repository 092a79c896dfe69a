#include "harness/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "harness/process_tree.h"
#include "harness/temp_files.h"

extern char** environ;

namespace pv::harness {
namespace {

// Process groups of running children, for kill_running_children(); lock-free so a
// signal handler may read it.
constexpr int kMaxChildren = 1024;
std::atomic<pid_t> g_children[kMaxChildren];

// Held while a child is forked and registered, and while pv reaps zombies it did not start
// (orphans reparented to it as subreaper): reaping a pid that another thread has just forked
// but not yet registered would steal that thread's exit status.
std::mutex g_spawn_mu;
std::atomic<unsigned> g_run_counter{0};
// Set once pv is a subreaper: only then are the zombies with pv as parent that run_process
// did not start orphans of test trees. In a process that also starts children of its own
// (a test binary calling run_process), reaping them would steal their exit status.
std::atomic<bool> g_subreaper{false};

int register_child(pid_t pid) {
  for (int i = 0; i < kMaxChildren; ++i) {
    pid_t expected = 0;
    if (g_children[i].compare_exchange_strong(expected, pid)) return i;
  }
  return -1;
}

bool is_registered_child(pid_t pid) {
  for (const auto& c : g_children) {
    if (c.load() == pid) return true;
  }
  return false;
}

std::string read_tail(int fd, size_t max_bytes) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return {};
  const off_t size = st.st_size;
  const off_t start =
      size > static_cast<off_t>(max_bytes) ? size - static_cast<off_t>(max_bytes) : 0;
  std::string s(static_cast<size_t>(size - start), '\0');
  size_t got = 0;
  while (got < s.size()) {
    const ssize_t n = ::pread(fd, s.data() + got, s.size() - got, start + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  s.resize(got);
  return s;
}

// The program execve() runs: argv[0] itself when it holds a '/', else the first executable
// regular file named so in pv's $PATH (as posix_spawnp and execvp search).
std::string resolve_program(const std::string& name, bool search_path, int* err) {
  *err = 0;
  if (!search_path || name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/bin:/usr/bin");
  std::string d;
  while (std::getline(ss, d, ':')) {
    const std::string p = (d.empty() ? std::string(".") : d) + "/" + name;
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0)
      return p;
  }
  *err = ENOENT;
  return {};
}

// Kills what the child `pid` (group `pid`) left behind and reaps what became pv's:
// the process group, every descendant still below `pid`, every process marked `mark`, and
// zombies reparented to pv. Repeats until nothing marked is left (a dying parent hands its
// children over one step at a time), for at most 2 s.
void kill_tree(pid_t pid, const std::string& mark) {
  const pid_t self = ::getpid();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    ::kill(-pid, SIGKILL);
    const std::vector<ProcInfo> procs = list_processes();
    std::set<pid_t> tree{pid};
    bool grew = true;
    while (grew) {  // descendants by parent chain (the list is small: a few hundred)
      grew = false;
      for (const auto& p : procs) {
        if (tree.count(p.ppid) && tree.insert(p.pid).second) grew = true;
      }
    }
    int left = 0;
    for (const auto& p : procs) {
      if (p.pid == self || p.state == 'Z') continue;
      const bool marked = process_env(p.pid, kProcessTreeVar) == mark;
      if ((p.pid != pid && tree.count(p.pid)) || marked) {
        ::kill(p.pid, SIGKILL);
        ++left;
      }
    }
    if (g_subreaper.load()) {
      std::lock_guard<std::mutex> lock(g_spawn_mu);
      for (const auto& p : procs) {
        if (p.ppid == self && p.state == 'Z' && p.pid != pid && !is_registered_child(p.pid)) {
          ::waitpid(p.pid, nullptr, WNOHANG);
        }
      }
    }
    if (left == 0 || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

std::string ProcessResult::describe() const {
  if (!started) return "could not start: " + spawn_error;
  if (timed_out)
    return fmt::format("timed out after {:.1f} s (process tree killed)", duration_ms / 1000.0);
  if (term_signal != 0) {
    const char* name = sigabbrev_np(term_signal);
    return fmt::format("killed by signal {} (SIG{})", term_signal, name ? name : "?");
  }
  return fmt::format("exit code {}", exit_code);
}

void kill_running_children() {
  for (auto& c : g_children) {
    const pid_t pid = c.load();
    if (pid > 0) kill(-pid, SIGKILL);
  }
}

void become_child_subreaper() {
  static std::once_flag once;
  std::call_once(once, [] { g_subreaper = ::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0; });
}

ProcessResult run_process(const ProcessOptions& opts) {
  ProcessResult r;
  if (opts.argv.empty()) {
    r.spawn_error = "empty argv";
    return r;
  }
  // stdout/stderr go to files in a private scratch directory (removed by ~TempDir, or by
  // pv's signal thread when interrupted).
  std::optional<TempDir> scratch;
  try {
    scratch.emplace("proc");
  } catch (const EnvironmentError& e) {
    r.spawn_error = r.environment_error = e.what();
    return r;
  }
  const std::string out_path = scratch->path() + "/stdout";
  const std::string err_path = scratch->path() + "/stderr";
  int err = 0;
  const std::string program = resolve_program(opts.argv[0], opts.search_path, &err);
  if (program.empty()) {
    r.spawn_error = fmt::format("{}: {}", opts.argv[0], std::strerror(err));
    return r;
  }

  // Everything the child needs is built before fork: between fork and exec it only makes
  // async-signal-safe calls (another thread may hold the allocator's lock).
  std::vector<char*> argv;
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const std::string mark =
      fmt::format("{}.{}", ::getpid(), g_run_counter.fetch_add(1, std::memory_order_relaxed));
  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string_view::npos) {
      const std::string key(kv.substr(0, eq));
      if (opts.env.count(key) || key == kProcessTreeVar) continue;
    }
    env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : opts.env) env_strings.push_back(k + "=" + v);
  env_strings.push_back(std::string(kProcessTreeVar) + "=" + mark);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  const int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out_fd = ::open(out_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int err_fd = ::open(err_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int exec_pipe[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {in_fd, out_fd, err_fd, exec_pipe[0], exec_pipe[1]}) {
      if (fd >= 0) ::close(fd);
    }
  };
  if (in_fd < 0 || out_fd < 0 || err_fd < 0 || ::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    const int e = errno;
    r.spawn_error = r.environment_error = fmt::format(
        "cannot open the output files in {}: {} (errno {})", scratch->path(), std::strerror(e), e);
    close_all();
    return r;
  }
  const char* cwd = opts.cwd.empty() ? nullptr : opts.cwd.c_str();
  const char* prog = program.c_str();
  const pid_t parent = ::getpid();

  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = -1;
  int slot = -1;
  {
    std::lock_guard<std::mutex> lock(g_spawn_mu);
    pid = ::fork();
    if (pid == 0) {
      // The child: own process group (a timeout kills the test and what it forked), SIGKILL
      // when pv's thread dies, default signal handling, then exec.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      // pv died between fork and prctl: the death signal was never armed.
      if (::getppid() != parent) ::_exit(127);
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGXFSZ, SIGCHLD}) ::sigaction(s, &dfl, nullptr);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      int e = 0;
      if (::dup2(in_fd, STDIN_FILENO) < 0 || ::dup2(out_fd, STDOUT_FILENO) < 0 ||
          ::dup2(err_fd, STDERR_FILENO) < 0 || (cwd != nullptr && ::chdir(cwd) != 0)) {
        e = errno;
      } else {
        ::execve(prog, argv.data(), envp.data());
        e = errno;
      }
      ssize_t ignored = ::write(exec_pipe[1], &e, sizeof e);
      (void)ignored;
      ::_exit(127);
    }
    if (pid > 0) slot = register_child(pid);
  }
  if (pid < 0) {
    const int e = errno;
    r.spawn_error = fmt::format("{}: fork failed: {}", opts.argv[0], std::strerror(e));
    close_all();
    return r;
  }
  // Also from the parent: kill(-pid) must find the group even before the child ran setpgid.
  ::setpgid(pid, pid);
  ::close(exec_pipe[1]);
  exec_pipe[1] = -1;
  int child_errno = 0;
  ssize_t got;
  do {
    got = ::read(exec_pipe[0], &child_errno, sizeof child_errno);
  } while (got < 0 && errno == EINTR);
  const bool exec_failed = got == static_cast<ssize_t>(sizeof child_errno);

  // Poll with a short back-off: simple, thread-safe (no SIGCHLD handler shared with
  // other runner threads), and the cost is negligible next to a test's runtime. WNOWAIT:
  // the child stays a zombie until its tree is killed, so its pid (and process group id)
  // cannot be reused by another process meanwhile.
  auto sleep_for = std::chrono::microseconds(200);
  auto exited = [&](int flags) {
    siginfo_t info{};
    for (;;) {
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | flags) == 0)
        return info.si_pid == pid;
      if (errno != EINTR) return true;  // not our child any more: nothing to wait for
    }
  };
  for (;;) {
    if (exited(WNOHANG)) break;
    if (std::chrono::steady_clock::now() - t0 > opts.timeout) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      exited(0);
      break;
    }
    std::this_thread::sleep_for(sleep_for);
    sleep_for = std::min(sleep_for * 2, std::chrono::microseconds(20000));
  }
  // Anything the test left running — in its group, below it, or escaped with setsid() —
  // goes with it; then the child itself is reaped.
  kill_tree(pid, mark);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (slot >= 0) g_children[slot].store(0);
  r.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (exec_failed) {
    r.spawn_error = fmt::format("{}: {}", opts.argv[0], std::strerror(child_errno));
    close_all();
    return r;
  }
  r.started = true;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  r.stdout_text = read_tail(out_fd, opts.tail_bytes);
  r.stderr_text = read_tail(err_fd, opts.tail_bytes);
  close_all();
  return r;
}

}  // namespace pv::harness
