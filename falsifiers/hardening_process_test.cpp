// Falsifiers for contracts/hardening-v1.yaml, processes and faults: the test processes
// `pv validate` starts never outlive it (a timeout, a finished test, pv killed with SIGKILL,
// pv stopped with SIGTERM), nothing pv writes for itself is left behind, two validates into
// one evidence dir keep every index entry, and a temp dir that cannot take a file is an
// environment error (exit 3), never a verdict on a claim. Everything runs real processes:
// the real pv binary, and bound tests that are shell scripts run through the command runner.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "falsifiers/support/scratch_files.h"
#include "harness/process.h"
#include "harness/runner.h"
#include "harness/temp_files.h"
#include "harness/testing/pv_test.h"

namespace ph = pv::harness;
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

extern char** environ;

namespace {

std::string bin_dir() { return std::string(PV_BINARY_DIR) + "/bin"; }

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Whether `pid` is gone: no such process, or a zombie (dead, its parent not reaped yet).
bool pid_gone(pid_t pid) {
  const std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

// Polls until `pid` is gone; the seconds it took, or -1 after `limit_s`.
double wait_gone(pid_t pid, double limit_s) {
  const auto t0 = Clock::now();
  for (;;) {
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (pid_gone(pid)) return s;
    if (s > limit_s) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// The pid a script wrote into `file`, waiting up to 20 s for it.
pid_t read_pid_file(const fs::path& file) {
  const auto t0 = Clock::now();
  while (Clock::now() - t0 < std::chrono::seconds(20)) {
    const std::string s = slurp(file);
    if (!s.empty() && s.back() == '\n') return static_cast<pid_t>(std::stol(s));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return -1;
}

// A source tree of its own: contracts binding shell scripts through the command runner,
// a private TMPDIR and an evidence dir.
struct ProcTree {
  fs::path root, tmp, evidence, run;
  explicit ProcTree(const std::string& tag) {
    root = pv::testing::make_temp_dir("hardening-" + tag);
    tmp = root / "tmp";
    evidence = root / "evidence";
    run = root / "run";
    fs::create_directories(tmp);
    fs::create_directories(run);
    fs::create_directories(root / "contracts");
  }
  // A script run as `/bin/sh <script> <run dir> [args]`.
  void script(const std::string& name, const std::string& body) const {
    pv::testing::write_text(root / name, "#!/bin/sh\nD=\"$1\"\nshift\n" + body);
  }
  // A contract `id` of `n` falsifiers, each bound to `sh <script> <run> <args...>`.
  fs::path contract(const std::string& id, int n, const std::string& script,
                    const std::vector<std::string>& args = {}) const {
    std::string argv = "[/bin/sh, " + (root / script).string() + ", " + run.string();
    for (const auto& a : args) argv += ", " + a;
    argv += "]";
    std::string y =
        "metadata:\n  id: " + id + "\n  version: 1.0.0\n  description: processes\nfalsifiers:\n";
    for (int k = 1; k <= n; ++k) {
      y += "  - id: " + id + "-" + std::to_string(k) +
           "\n    rule: r\n    prediction: p\n    if_fails: f\n    status: FUNCTIONAL\n"
           "    levels:\n      FUNCTIONAL:\n        tests:\n          - { runner: command, id: " +
           script + ", argv: " + argv + " }\n";
    }
    const fs::path p = root / "contracts" / (id + ".yaml");
    pv::testing::write_text(p, y);
    return p;
  }
  std::vector<std::string> validate_args(const fs::path& contract, double timeout_s) const {
    return {
        bin_dir() + "/pv",        "validate",    contract.string(), "--bin-dir",       bin_dir(),
        "--source-root",          root.string(), "--evidence-dir",  evidence.string(), "--timeout",
        std::to_string(timeout_s)};
  }
};

// Starts argv with `env` added (TMPDIR above all) and its output in `log`; the pid.
// `fsize_limit` > 0: RLIMIT_FSIZE for the child, SIGXFSZ ignored, so a write past it fails
// with EFBIG as on a full disk.
pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
            const fs::path& log, rlim_t fsize_limit = 0) {
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv(*e);
    if (!env.count(kv.substr(0, kv.find('=')))) envs.push_back(kv);
  }
  for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
  std::vector<char*> a, e;
  for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  for (auto& s : envs) e.push_back(s.data());
  e.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    if (fsize_limit > 0) {
      ::signal(SIGXFSZ, SIG_IGN);
      struct rlimit rl {
        fsize_limit, fsize_limit
      };
      ::setrlimit(RLIMIT_FSIZE, &rl);
    }
    ::execve(a[0], a.data(), e.data());
    ::_exit(127);
  }
  ::close(fd);
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// A script that starts a grandchild in a new session (out of the test's process group),
// which writes its pid to grandchild.pid and sleeps "forever"; then the test itself writes
// child.pid and either hangs ("hang") or passes at once ("pass").
const char* kSetsidScript =
    "setsid sh -c 'echo $$ > \"$0/grandchild.pid.tmp\"; mv \"$0/grandchild.pid.tmp\" "
    "\"$0/grandchild.pid\"; exec sleep 1000' \"$D\" &\n"
    "while [ ! -s \"$D/grandchild.pid\" ]; do sleep 0.01; done\n"
    "echo $$ > \"$D/child.pid.tmp\"; mv \"$D/child.pid.tmp\" \"$D/child.pid\"\n"
    "if [ \"$1\" = hang ]; then exec sleep 1000; fi\nexit 0\n";

// No pv-* temp dir and no .*.tmp-* file anywhere under `dir`.
std::vector<std::string> leftovers(const fs::path& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.rfind("pv-", 0) == 0 || n.find(".tmp-") != std::string::npos ||
        n.rfind(".pv-probe", 0) == 0)
      found.push_back(it->path().string());
  }
  return found;
}

}  // namespace

// A grandchild that escaped the test's process group with setsid() dies with the test: when
// the test times out, and when it passes and leaves the grandchild behind.
TEST(Hardening, SetsidGrandchildrenDieWithTheirTest) {
  for (const std::string mode : {"hang", "pass"}) {
    SCOPED_TRACE(mode);
    ProcTree t("setsid-" + mode);
    t.script("setsid.sh", kSetsidScript);
    const fs::path c = t.contract("PVT-PROC", 1, "setsid.sh", {mode});
    const auto t0 = Clock::now();
    const pid_t pv = spawn(t.validate_args(c, 2.0), {{"TMPDIR", t.tmp.string()}}, t.root / "log");
    const int status = wait_status(pv);
    const double pv_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::string log = slurp(t.root / "log");
    ASSERT_TRUE(WIFEXITED(status)) << log;
    EXPECT_EQ(WEXITSTATUS(status), mode == "hang" ? 1 : 0) << log;
    if (mode == "hang") {
      EXPECT_NE(log.find("timed out"), std::string::npos) << log;
    }
    const pid_t child = read_pid_file(t.run / "child.pid");
    const pid_t grandchild = read_pid_file(t.run / "grandchild.pid");
    ASSERT_GT(child, 0);
    ASSERT_GT(grandchild, 0);
    // Gone when pv returns (the poll only absorbs /proc's view of a just-killed process).
    const double gone_s = wait_gone(grandchild, 0.5);
    if (gone_s < 0) ::kill(grandchild, SIGKILL);
    EXPECT_GE(gone_s, 0) << "grandchild " << grandchild << " outlived pv validate";
    EXPECT_TRUE(pid_gone(child));
    EXPECT_EQ(leftovers(t.tmp), std::vector<std::string>{});
    pv::testing::record_metric("setsid_" + mode + "_pv_s", pv_s);
  }
}

// kill -9 of pv takes the running test with it (PR_SET_PDEATHSIG), in every trial; the
// grandchild that escaped with setsid() outlives pv, but the next pv validate kills it.
TEST(Hardening, KilledPvTakesItsTestWithIt) {
  constexpr int kTrials = 5;
  double worst = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    ProcTree t("kill9-" + std::to_string(trial));
    t.script("setsid.sh", kSetsidScript);
    const fs::path c = t.contract("PVT-PROC", 1, "setsid.sh", {"hang"});
    const pid_t pv = spawn(t.validate_args(c, 600), {{"TMPDIR", t.tmp.string()}}, t.root / "log");
    const pid_t child = read_pid_file(t.run / "child.pid");
    const pid_t grandchild = read_pid_file(t.run / "grandchild.pid");
    ASSERT_GT(child, 0) << slurp(t.root / "log");
    ASSERT_GT(grandchild, 0);
    ASSERT_FALSE(pid_gone(child));
    ::kill(pv, SIGKILL);
    wait_status(pv);
    const double s = wait_gone(child, 2.0);
    if (s < 0) ::kill(child, SIGKILL);
    EXPECT_GE(s, 0) << "the test process " << child << " outlived pv (kill -9) by over 2 s";
    worst = std::max(worst, s < 0 ? 99.0 : s);

    // The next validate (any contract) finds the grandchild of the pv that is gone.
    t.script("pass.sh", "exit 0\n");
    const fs::path c2 = t.contract("PVT-PASS", 1, "pass.sh");
    // Another pv validate running at the same time (tests run in parallel) may find and kill
    // it first; then this one has nothing to report.
    const bool alive_before = !pid_gone(grandchild);
    const pid_t pv2 = spawn(t.validate_args(c2, 60), {{"TMPDIR", t.tmp.string()}}, t.root / "log2");
    const int status = wait_status(pv2);
    const std::string log2 = slurp(t.root / "log2");
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log2;
    const double g = wait_gone(grandchild, 1.0);
    if (g < 0) ::kill(grandchild, SIGKILL);
    EXPECT_GE(g, 0) << "grandchild " << grandchild << " of the killed pv survived the next run";
    EXPECT_TRUE(!alive_before ||
                log2.find("left running by a pv that is gone") != std::string::npos)
        << log2;
  }
  pv::testing::record_metric("killed_pv_test_gone_s", worst);
}

// SIGTERM during a validate: pv dies of SIGTERM, its test and the test's grandchild are gone
// and no temp file or directory of pv is left; leftovers of a pv killed earlier (its pid
// gone, older than 10 minutes) are removed at the next start, and nothing else is.
TEST(Hardening, SigtermLeavesNoTempFilesAndStaleOnesAreCleaned) {
  ProcTree t("sigterm");
  t.script("setsid.sh", kSetsidScript);
  // Evidence of an earlier run, so the evidence dir exists with bundles in it.
  t.script("pass.sh", "exit 0\n");
  const fs::path pass = t.contract("PVT-PASS", 3, "pass.sh");
  {
    const pid_t pv = spawn(t.validate_args(pass, 60), {{"TMPDIR", t.tmp.string()}}, t.root / "l0");
    const int st = wait_status(pv);
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << slurp(t.root / "l0");
  }
  const fs::path c = t.contract("PVT-PROC", 2, "setsid.sh", {"hang"});
  const pid_t pv = spawn(t.validate_args(c, 600), {{"TMPDIR", t.tmp.string()}}, t.root / "log");
  const pid_t child = read_pid_file(t.run / "child.pid");
  const pid_t grandchild = read_pid_file(t.run / "grandchild.pid");
  ASSERT_GT(child, 0) << slurp(t.root / "log");
  // pv's own temp dirs for the running test exist now (its output files, its report dir).
  EXPECT_FALSE(leftovers(t.tmp).empty());
  ::kill(pv, SIGTERM);
  const int status = wait_status(pv);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << slurp(t.root / "log");
  EXPECT_GE(wait_gone(child, 1.0), 0);
  EXPECT_GE(wait_gone(grandchild, 1.0), 0);
  for (pid_t p : {child, grandchild}) ::kill(p, SIGKILL);
  EXPECT_EQ(leftovers(t.tmp), std::vector<std::string>{});
  EXPECT_EQ(leftovers(t.evidence), std::vector<std::string>{});

  // Leftovers of a pv killed with SIGKILL: a pid that is surely gone (a reaped child's).
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  wait_status(dead);
  const std::string d = std::to_string(dead);
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(1);
  const fs::path bundle_dir = t.evidence / "runs";
  ASSERT_TRUE(fs::exists(bundle_dir));
  fs::path some_dir = bundle_dir;
  for (const auto& e : fs::recursive_directory_iterator(bundle_dir)) {
    if (e.is_directory()) some_dir = e.path();
  }
  const fs::path stale_file = some_dir / (".PVT-PASS-1.json.tmp-" + d + "-Ab12Cd");
  const fs::path stale_index = t.evidence / (".index.json.tmp-" + d + "-Zz99Yy");
  const fs::path stale_dir = t.tmp / ("pv-proc-pid" + d + "-Qw3rTy");
  const fs::path young = t.evidence / (".index.json.tmp-" + d + "-Young1");
  const fs::path live = t.evidence / (".index.json.tmp-" + std::to_string(::getpid()) + "-Live01");
  const fs::path not_ours = t.tmp / "pv-notes-keep";
  for (const auto& f : {stale_file, stale_index, young, live}) pv::testing::write_text(f, "{");
  fs::create_directories(stale_dir);
  pv::testing::write_text(stale_dir / "stdout", "x");
  fs::create_directories(not_ours);
  for (const auto& f : {stale_file, stale_index, stale_dir, live, not_ours}) {
    fs::last_write_time(f, old);
  }
  const pid_t pv2 = spawn(t.validate_args(pass, 60), {{"TMPDIR", t.tmp.string()}}, t.root / "l2");
  const int st2 = wait_status(pv2);
  const std::string log2 = slurp(t.root / "l2");
  EXPECT_TRUE(WIFEXITED(st2) && WEXITSTATUS(st2) == 0) << log2;
  EXPECT_FALSE(fs::exists(stale_file)) << log2;
  EXPECT_FALSE(fs::exists(stale_index));
  EXPECT_FALSE(fs::exists(stale_dir));
  EXPECT_TRUE(fs::exists(young)) << "a temp file younger than 10 minutes was removed";
  EXPECT_TRUE(fs::exists(live)) << "the temp file of a live writer was removed";
  EXPECT_TRUE(fs::exists(not_ours)) << "a directory pv did not make was removed";
  EXPECT_NE(log2.find("temp file(s) of evidence writers that are gone"), std::string::npos) << log2;
}

// Two validates into one evidence dir at the same moment (their tests wait at a barrier, so
// both write evidence together): index.json holds every falsifier of both, in every trial.
TEST(Hardening, ConcurrentValidatesKeepEveryIndexEntry) {
  constexpr int kTrials = 5;
  constexpr int kFalsifiers = 12;
  int lost_trials = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    ProcTree t("lock-" + std::to_string(trial));
    t.script("barrier.sh",
             "touch \"$D/ready.$1\"\nwhile [ ! -e \"$D/go\" ]; do sleep 0.002; done\nexit 0\n");
    const fs::path a = t.contract("PVT-LOCK-A", kFalsifiers, "barrier.sh", {"a"});
    const fs::path b = t.contract("PVT-LOCK-B", kFalsifiers, "barrier.sh", {"b"});
    const pid_t pa = spawn(t.validate_args(a, 60), {{"TMPDIR", t.tmp.string()}}, t.root / "la");
    const pid_t pb = spawn(t.validate_args(b, 60), {{"TMPDIR", t.tmp.string()}}, t.root / "lb");
    const auto t0 = Clock::now();
    while (!(fs::exists(t.run / "ready.a") && fs::exists(t.run / "ready.b")) &&
           Clock::now() - t0 < std::chrono::seconds(30)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    pv::testing::write_text(t.run / "go", "");
    const int sa = wait_status(pa), sb = wait_status(pb);
    EXPECT_TRUE(WIFEXITED(sa) && WEXITSTATUS(sa) == 0) << slurp(t.root / "la");
    EXPECT_TRUE(WIFEXITED(sb) && WEXITSTATUS(sb) == 0) << slurp(t.root / "lb");
    const json index = json::parse(slurp(t.evidence / "index.json"), nullptr, false);
    ASSERT_FALSE(index.is_discarded()) << slurp(t.evidence / "index.json");
    std::set<std::string> ids;
    const std::string dump = index.dump();
    int missing = 0;
    for (const char* id : {"PVT-LOCK-A", "PVT-LOCK-B"}) {
      for (int k = 1; k <= kFalsifiers; ++k) {
        const std::string f = std::string(id) + "-" + std::to_string(k) + "\"";
        if (dump.find("\"" + f) == std::string::npos) ++missing;
      }
    }
    EXPECT_EQ(missing, 0) << dump;
    if (missing) ++lost_trials;
    EXPECT_EQ(leftovers(t.evidence), std::vector<std::string>{});
  }
  pv::testing::record_metric("concurrent_validates_lost_trials", lost_trials);
}

// A temp dir that cannot take a file is the environment's failure: exit 3 with the path and
// the errno text, no verdict, no evidence. Real failures: TMPDIR naming a regular file
// (mkdtemp fails with ENOTDIR), and a file size limit (RLIMIT_FSIZE) that makes every write
// past 16 KiB fail with EFBIG, as a full disk fails with ENOSPC.
TEST(Hardening, UnusableTmpdirIsAnEnvironmentError) {
  ProcTree t("tmpdir");
  t.script("pass.sh", "exit 0\n");
  const fs::path c = t.contract("PVT-PASS", 1, "pass.sh");
  const fs::path not_a_dir = t.root / "a-file";
  pv::testing::write_text(not_a_dir, "x");
  struct Case {
    std::string name, tmpdir;
    rlim_t fsize;
    std::string errno_text;
  };
  for (const Case& k : {Case{"file", not_a_dir.string(), 0, "Not a directory"},
                        Case{"fsize", t.tmp.string(), 16 * 1024, "File too large"}}) {
    SCOPED_TRACE(k.name);
    const pid_t pv = spawn(t.validate_args(c, 60), {{"TMPDIR", k.tmpdir}}, t.root / "log", k.fsize);
    const int status = wait_status(pv);
    const std::string log = slurp(t.root / "log");
    ASSERT_TRUE(WIFEXITED(status)) << log;
    EXPECT_EQ(WEXITSTATUS(status), 3) << log;
    EXPECT_NE(log.find("environment error"), std::string::npos) << log;
    EXPECT_NE(log.find(k.tmpdir), std::string::npos) << log;
    EXPECT_NE(log.find(k.errno_text), std::string::npos) << log;
    EXPECT_EQ(log.find("FALSIFIED"), std::string::npos) << log;
    EXPECT_FALSE(fs::exists(t.evidence / "index.json")) << log;
    EXPECT_EQ(leftovers(t.tmp), std::vector<std::string>{});
  }
}

// An exception inside a runner worker (here a real one: the temp dir vanished between the
// probe and the runs) fails only the run it happened in, naming the binding, under --jobs 2;
// it never reaches std::terminate, and it is reported as an environment error.
TEST(Hardening, WorkerExceptionsFailTheirRunNamingTheBinding) {
  const fs::path root = pv::testing::make_temp_dir("hardening-worker");
  const fs::path gone = root / "tmp-removed";
  std::vector<ph::RunJob> jobs;
  for (const char* id : {"first", "second", "third"}) {
    ph::RunJob j;
    j.binding.runner = ph::RunnerKind::kCommand;
    j.binding.binary = "command";
    j.binding.test = id;
    j.binding.argv = {"/bin/true"};
    j.binding.pos.file = "contracts/x.yaml";
    j.binding.pos.line = 7;
    j.binding.pos.col = 11;
    j.binary = "command";
    j.test = id;
    j.root = root.string();
    jobs.push_back(j);
  }
  std::vector<std::string> env_errors;
  ph::RunnerOptions ro;
  ro.bin_dir = bin_dir();
  ro.jobs = 2;
  ro.timeout = std::chrono::seconds(10);
  ro.environment_errors = &env_errors;
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  ::setenv("TMPDIR", gone.c_str(), 1);
  std::vector<pv::harness::TestRun> runs;
  runs = ph::run_tests(jobs, ro);
  if (old) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  ASSERT_EQ(runs.size(), 3u);
  for (size_t k = 0; k < runs.size(); ++k) {
    EXPECT_EQ(runs[k].result, pv::harness::TestResult::kFailed);
    EXPECT_NE(runs[k].failure.find("pv could not run command:" + jobs[k].test), std::string::npos)
        << runs[k].failure;
    EXPECT_NE(runs[k].failure.find("contracts/x.yaml:7:11"), std::string::npos) << runs[k].failure;
    EXPECT_NE(runs[k].failure.find(gone.string()), std::string::npos) << runs[k].failure;
    EXPECT_NE(runs[k].failure.find("No such file or directory"), std::string::npos)
        << runs[k].failure;
  }
  EXPECT_EQ(env_errors.size(), 3u);
  // The same binding runs once the temp dir is back.
  const auto ok = ph::run_tests({jobs[0]}, ro);
  EXPECT_EQ(ok.at(0).result, pv::harness::TestResult::kPassed) << ok.at(0).failure;
}
