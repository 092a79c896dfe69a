// Falsifiers of contracts/pv-harness-v1.yaml, containment part: a crashing or hanging test
// binary and a pv interrupted mid-run are contained (FALSIFY-PVH-006), and an interrupted
// evidence write or a killed pv validate never leaves a torn bundle (FALSIFY-PVH-007), each
// checked by driving the real pv binary and the deliberately misbehaving
// pv_harness_fixture_tests binary. Every run writes into a private temporary directory.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "falsifiers/support/harness_cli.h"
#include "falsifiers/support/temp_dir.h"
#include "harness/atomic_file.h"
#include "harness/process.h"
#include "harness/testing/pv_test.h"

namespace ph = pv::harness;
namespace fs = std::filesystem;
using nlohmann::json;

using pv::testing::bin_dir;
using pv::testing::read_text;
using pv::testing::run_pv;
using pv::testing::harness_cli::bundle;
using pv::testing::harness_cli::read_json;
using pv::testing::harness_cli::testdata;

// ---------------------------------------------------------------- FALSIFY-PVH-006
TEST(PvHarness, ProcessTimeoutKillsGroup) {
  ph::ProcessOptions po;
  po.argv = {bin_dir() + "/pv_harness_fixture_tests", "--gtest_filter=Fixture.Sleeps"};
  po.timeout = std::chrono::milliseconds(500);
  const auto r = ph::run_process(po);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_LT(r.duration_ms, 10000.0);
  po.argv = {bin_dir() + "/pv_harness_fixture_tests", "--gtest_filter=Fixture.Crashes"};
  po.timeout = std::chrono::seconds(60);
  // Under -DPV_SANITIZE=ON, ASan's SEGV handler would turn the crash into exit code 1.
  po.env["ASAN_OPTIONS"] = "handle_segv=0";
  const auto c = ph::run_process(po);
  EXPECT_EQ(c.term_signal, SIGSEGV) << c.describe();
  po.argv = {"/nonexistent/pv-no-such-binary"};
  const auto n = ph::run_process(po);
  EXPECT_FALSE(n.started);
  pv::testing::record_metric("timeout_kill_ms", r.duration_ms);
}

TEST(PvHarness, CrashingBinaryContained) {
  pv::testing::TempDir ev("harness-test");
  // ASAN_OPTIONS: under -DPV_SANITIZE=ON the crash must stay a SIGSEGV, not ASan's exit 1.
  const auto r = run_pv({"validate", "--jobs", "2", "--timeout", "2", "--evidence-dir", ev.path(),
                         testdata("crash.yaml")},
                        {{"PV_MACHINE_ID", "m1"}, {"ASAN_OPTIONS", "handle_segv=0"}});
  // pv itself exits normally (no signal) with "falsified".
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_EQ(r.exit_code, 1) << r.describe() << r.stderr_text;
  const json segv = bundle(ev.path(), "m1", "PVT-CRASH", "PVT-CRASH-001");
  EXPECT_EQ(segv["falsifier"]["earned"], "FALSIFIED");
  EXPECT_EQ(segv["tests"][0]["signal"], SIGSEGV);
  const json abrt = bundle(ev.path(), "m1", "PVT-CRASH", "PVT-CRASH-002");
  EXPECT_EQ(abrt["tests"][0]["signal"], SIGABRT);
  const json hang = bundle(ev.path(), "m1", "PVT-CRASH", "PVT-CRASH-003");
  EXPECT_EQ(hang["tests"][0]["timed_out"], true);
  EXPECT_EQ(hang["falsifier"]["earned"], "FALSIFIED");
  const json fine = bundle(ev.path(), "m1", "PVT-CRASH", "PVT-CRASH-004");
  EXPECT_EQ(fine["falsifier"]["earned"], "PARTIAL_ALGORITHM_LEVEL");
}

// SIGTERM to pv while a test hangs: the hanging test (in its own process group) is
// killed with it, not left running.
TEST(PvHarness, InterruptedValidateLeavesNoTestBehind) {
  pv::testing::TempDir dir("harness-test");
  const std::string pid_file = dir.path() + "/sleeper.pid";
  const std::string pv = bin_dir() + "/pv";
  const std::string contract = testdata("crash.yaml");
  const std::string evidence = dir.path() + "/evidence";
  const pid_t pv_pid = fork();
  ASSERT_GE(pv_pid, 0);
  if (pv_pid == 0) {
    setenv("PV_FIXTURE_PID_FILE", pid_file.c_str(), 1);
    const int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    dup2(devnull, STDERR_FILENO);
    execl(pv.c_str(), pv.c_str(), "validate", "--timeout", "120", "--evidence-dir",
          evidence.c_str(), contract.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  pid_t sleeper = 0;
  for (int i = 0; i < 600 && sleeper == 0; ++i) {
    usleep(50000);
    std::ifstream in(pid_file);
    in >> sleeper;
  }
  ASSERT_GT(sleeper, 0) << "the hanging test never started";
  kill(pv_pid, SIGTERM);
  int status = 0;
  waitpid(pv_pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  // Gone, or at most a zombie waiting for init to reap it.
  bool alive = true;
  for (int i = 0; i < 100 && alive; ++i) {
    std::ifstream stat("/proc/" + std::to_string(sleeper) + "/stat");
    std::string pid_s, comm, state;
    alive = static_cast<bool>(stat >> pid_s >> comm >> state) && state != "Z";
    if (alive) usleep(20000);
  }
  EXPECT_FALSE(alive) << "test process " << sleeper << " outlived the interrupted pv";
  if (alive) kill(sleeper, SIGKILL);
}

// ---------------------------------------------------------------- FALSIFY-PVH-007
TEST(PvHarness, InterruptedWriteKeepsPrevious) {
  pv::testing::TempDir dir("harness-test");
  const std::string path = dir.path() + "/bundle.json";
  const std::string v1 = R"({"version": 1})";
  ph::write_file_atomic(path, v1);
  // (a) killed between write+fsync and rename.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ph::AtomicWriteHooks hooks;
    hooks.before_rename = [] { raise(SIGKILL); };
    ph::write_file_atomic(path, std::string(1 << 20, 'x'), &hooks);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_EQ(read_text(path), v1);
  // (b) killed at random moments in the middle of a slow, chunked write.
  std::mt19937_64 rng(pv::testing::seed());
  const std::string v2(1 << 20, 'y');
  int saw_old = 0, saw_new = 0;
  for (int i = 0; i < 20; ++i) {
    ph::write_file_atomic(path, v1);
    pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ph::AtomicWriteHooks hooks;
      hooks.chunk_bytes = 256;
      ph::write_file_atomic(path, v2, &hooks);
      _exit(0);
    }
    usleep(static_cast<useconds_t>(rng() % 30000));
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    const std::string now = read_text(path);
    ASSERT_TRUE(now == v1 || now == v2) << "torn file of " << now.size() << " bytes";
    (now == v1 ? saw_old : saw_new)++;
  }
  pv::testing::record_metric("kills_before_rename", saw_old);
  pv::testing::record_metric("kills_after_rename", saw_new);
}

TEST(PvHarness, KilledValidateLeavesValidBundles) {
  pv::testing::TempDir ev("harness-test");
  std::mt19937_64 rng(pv::testing::seed());
  int checked = 0;
  for (int i = 0; i < 6; ++i) {
    ph::ProcessOptions po;
    po.argv = {bin_dir() + "/pv",
               "validate",
               "--evidence-dir",
               ev.path(),
               testdata("parameterized.yaml"),
               testdata("good.yaml"),
               testdata("skip-caps.yaml")};
    po.env["PV_MACHINE_ID"] = "m1";
    // The first run completes so later runs have previous bundles to replace.
    po.timeout = std::chrono::milliseconds(i == 0 ? 120000 : 50 + rng() % 1500);
    ph::run_process(po);
    for (const auto& e : fs::recursive_directory_iterator(ev.path())) {
      if (!e.is_regular_file() || e.path().extension() != ".json") continue;
      const json j = read_json(e.path().string());
      ASSERT_FALSE(j.is_discarded()) << "torn evidence file " << e.path();
      ++checked;
    }
  }
  EXPECT_GE(checked, 5);
  pv::testing::record_metric("files_checked", checked);
}
