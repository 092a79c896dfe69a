#include "harness/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace pv::harness {
namespace {

// Process groups of running children, for kill_running_children(); lock-free so a
// signal handler may read it.
constexpr int kMaxChildren = 1024;
std::atomic<pid_t> g_children[kMaxChildren];

int register_child(pid_t pid) {
  for (int i = 0; i < kMaxChildren; ++i) {
    pid_t expected = 0;
    if (g_children[i].compare_exchange_strong(expected, pid)) return i;
  }
  return -1;
}

std::string read_tail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > std::streamoff(max_bytes) ? size - max_bytes : 0;
  in.seekg(start);
  std::string s(static_cast<size_t>(size - start), '\0');
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  return s;
}

// A private scratch directory for the child's stdout/stderr files; removed afterwards.
std::string make_scratch_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "pv-proc-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) return {};
  return tmpl;
}

}  // namespace

std::string ProcessResult::describe() const {
  if (!started) return "could not start: " + spawn_error;
  if (timed_out)
    return fmt::format("timed out after {:.1f} s (process group killed)", duration_ms / 1000.0);
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

ProcessResult run_process(const ProcessOptions& opts) {
  ProcessResult r;
  if (opts.argv.empty()) {
    r.spawn_error = "empty argv";
    return r;
  }
  const std::string scratch = make_scratch_dir();
  if (scratch.empty()) {
    r.spawn_error = std::string("cannot create a scratch directory: ") + std::strerror(errno);
    return r;
  }
  const std::string out_path = scratch + "/stdout";
  const std::string err_path = scratch + "/stderr";

  // Build argv and envp up front: nothing is allocated between spawn and exec.
  std::vector<char*> argv;
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string_view::npos && opts.env.count(std::string(kv.substr(0, eq)))) continue;
    env_strings.emplace_back(kv);
  }
  for (const auto& [k, v] : opts.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (!opts.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, opts.cwd.c_str());
  // Own process group: a timeout kills the test and anything it forked.
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t default_sigs;
  sigemptyset(&default_sigs);
  sigaddset(&default_sigs, SIGPIPE);
  sigaddset(&default_sigs, SIGINT);
  sigaddset(&default_sigs, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &default_sigs);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);

  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = -1;
  const int rc = opts.search_path
                     ? posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data())
                     : posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    r.spawn_error = fmt::format("{}: {}", opts.argv[0], std::strerror(rc));
    std::filesystem::remove_all(scratch);
    return r;
  }
  r.started = true;
  const int slot = register_child(pid);

  // Poll with a short back-off: simple, thread-safe (no SIGCHLD handler shared with
  // other runner threads), and the cost is negligible next to a test's runtime.
  int status = 0;
  auto sleep_for = std::chrono::microseconds(200);
  for (;;) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() - t0 > opts.timeout) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(sleep_for);
    sleep_for = std::min(sleep_for * 2, std::chrono::microseconds(20000));
  }
  // Anything the test left running in its group goes with it.
  kill(-pid, SIGKILL);
  if (slot >= 0) g_children[slot].store(0);
  r.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.term_signal = WTERMSIG(status);
  r.stdout_text = read_tail(out_path, opts.tail_bytes);
  r.stderr_text = read_tail(err_path, opts.tail_bytes);
  std::error_code ec;
  std::filesystem::remove_all(scratch, ec);
  return r;
}

}  // namespace pv::harness
