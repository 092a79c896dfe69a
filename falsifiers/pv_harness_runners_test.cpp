// Falsifiers of contracts/pv-harness-v1.yaml for the runners beyond GoogleTest: plain
// commands, pytest, ctest and cargo test, each driving the real pv binary against a real
// tiny project under harness/testdata/runners/ bound by a contract in harness/testdata/.
// Every run writes into a private temporary evidence directory.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/junit_report.h"
#include "harness/process.h"
#include "harness/runners.h"
#include "harness/testing/pv_test.h"

namespace ph = pv::harness;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string bin_dir() { return std::string(PV_BINARY_DIR) + "/bin"; }
std::string testdata(const std::string& name) {
  return pv::testing::source_dir() + "/harness/testdata/" + name;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in, nullptr, false);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

struct TempDir {
  std::string path;
  TempDir() {
    path = (fs::temp_directory_path() / "pv-runners-test-XXXXXX").string();
    if (mkdtemp(path.data()) == nullptr) path.clear();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

ph::ProcessResult run_pv(std::vector<std::string> args, std::string cwd = {}) {
  ph::ProcessOptions po;
  po.argv = {bin_dir() + "/pv"};
  po.argv.insert(po.argv.end(), args.begin(), args.end());
  po.env = {{"PV_MACHINE_ID", "m1"}};
  po.cwd = std::move(cwd);
  po.timeout = std::chrono::minutes(10);
  po.tail_bytes = 1 << 20;
  return ph::run_process(po);
}

json bundle(const std::string& evidence, const std::string& contract,
            const std::string& falsifier) {
  return read_json(evidence + "/runs/m1/" + contract + "/" + falsifier + ".json");
}

// A program found in $PATH, or "" (the runner is then absent here).
std::string which(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  std::string d;
  while (std::getline(ss, d, ':')) {
    std::error_code ec;
    if (!d.empty() && fs::is_regular_file(d + "/" + name, ec)) return d + "/" + name;
  }
  return {};
}

// Every runner's fixture contract has the same six falsifiers (see its header): pass,
// fail, fixture-absent skip, unexplained skip, metric within, metric beyond.
void expect_six_outcomes(const std::string& ev, const std::string& contract,
                         const std::string& prefix, const std::string& fail_text,
                         const ph::ProcessResult& r) {
  const auto b = [&](const char* n) { return bundle(ev, contract, prefix + "-00" + n); };
  const json b1 = b("1"), b2 = b("2"), b3 = b("3"), b4 = b("4"), b5 = b("5"), b6 = b("6");
  ASSERT_TRUE(b1.is_object()) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(b1["falsifier"]["earned"], "FUNCTIONAL") << b1.dump(2);
  EXPECT_EQ(b1["tests"][0]["result"], "passed");

  EXPECT_EQ(b2["falsifier"]["earned"], "FALSIFIED") << b2.dump(2);
  const std::string failure = b2["tests"][0]["failure"].get<std::string>();
  EXPECT_NE(failure.find(fail_text), std::string::npos) << failure;

  EXPECT_EQ(b3["falsifier"]["earned"], "PARTIAL_ALGORITHM_LEVEL") << b3.dump(2);
  EXPECT_EQ(b3["tests"][1]["result"], "skipped");
  EXPECT_EQ(b3["tests"][1]["skip_reason"], "fixture-absent: tiny-model");
  EXPECT_EQ(b3["falsifier"]["capped_by"], "fixture-absent: tiny-model at FUNCTIONAL");

  EXPECT_EQ(b4["falsifier"]["earned"], "FALSIFIED") << "an unexplained skip must not pass";
  EXPECT_NE(b4.dump().find("unexplained skip"), std::string::npos) << b4.dump(2);

  EXPECT_EQ(b5["falsifier"]["earned"], "FUNCTIONAL") << b5.dump(2);
  EXPECT_DOUBLE_EQ(b5["tests"][0]["metrics"]["err_max"].get<double>(), 0.001);

  EXPECT_EQ(b6["falsifier"]["earned"], "FALSIFIED") << b6.dump(2);
  const std::string cx = b6["tests"][0]["counterexample"].get<std::string>();
  EXPECT_NE(cx.find("err_max = 0.5"), std::string::npos) << cx;
  EXPECT_NE(cx.find("<= 0.01"), std::string::npos) << cx;
  EXPECT_EQ(r.exit_code, 1) << r.describe();
}

// Configures the CTest fixture project (nothing to compile) into `build`.
bool configure_ctest_tree(const std::string& build, std::string* why) {
  ph::ProcessOptions po;
  po.argv = {"cmake", "-S", testdata("runners/ctest_project"), "-B", build};
  po.search_path = true;
  po.timeout = std::chrono::minutes(2);
  const auto r = ph::run_process(po);
  if (!r.ok()) *why = r.describe() + "\n" + r.stdout_text + r.stderr_text;
  return r.ok();
}

}  // namespace

// ---------------------------------------------------------------- plain command
TEST(PvHarnessRunners, CommandResultProtocol) {
  TempDir ev;
  const auto r = run_pv(
      {"validate", "--seed", "77", "--evidence-dir", ev.path, testdata("runners-command.yaml")});
  expect_six_outcomes(ev.path, "PVT-RUN-COMMAND", "PVT-CMD", "exited with code 1", r);
  const json b2 = bundle(ev.path, "PVT-RUN-COMMAND", "PVT-CMD-002");
  EXPECT_EQ(b2["tests"][0]["counterexample"], "block=3") << "the result file's counterexample";
  EXPECT_EQ(b2["tests"][0]["exit_code"], 1);
  // The command reported the seed pv gave it back through the result file.
  const json b5 = bundle(ev.path, "PVT-RUN-COMMAND", "PVT-CMD-005");
  EXPECT_GE(b5["tests"][0]["seed"].get<uint64_t>(), 77u);
  pv::testing::record_metric("command_falsifiers", 6);
}

// ---------------------------------------------------------------- pytest
TEST(PvHarnessRunners, PytestNodeIds) {
  if (which("pytest").empty()) PV_SKIP_FIXTURE_ABSENT("pytest");
  TempDir ev;
  const auto r = run_pv({"validate", "--evidence-dir", ev.path, testdata("runners-pytest.yaml")});
  expect_six_outcomes(ev.path, "PVT-RUN-PYTEST", "PVT-PY", "2 + 2 gave 4, expected 5", r);
  // A function with parameters binds its whole family; both items ran.
  const json b1 = bundle(ev.path, "PVT-RUN-PYTEST", "PVT-PY-001");
  EXPECT_EQ(b1["tests"][1]["executed"].size(), 2u) << b1.dump(2);
  pv::testing::record_metric("pytest_falsifiers", 6);
}

// ---------------------------------------------------------------- ctest
TEST(PvHarnessRunners, CtestBuildTree) {
  if (which("ctest").empty() || which("cmake").empty()) PV_SKIP_FIXTURE_ABSENT("ctest");
  TempDir tmp;
  std::string why;
  const std::string build = tmp.path + "/build";
  ASSERT_TRUE(configure_ctest_tree(build, &why)) << why;
  const std::string config = tmp.path + "/pv.yaml";
  write_text(config, "runners:\n  ctest: { dir: build }\n");
  const std::string ev = tmp.path + "/evidence";
  const auto r = run_pv(
      {"validate", "--config", config, "--evidence-dir", ev, testdata("runners-ctest.yaml")});
  expect_six_outcomes(ev, "PVT-RUN-CTEST", "PVT-CT", "checksum 0x1f != 0x2e for block 3", r);
  pv::testing::record_metric("ctest_falsifiers", 6);
}

// ---------------------------------------------------------------- cargo test
TEST(PvHarnessRunners, CargoTestPaths) {
  if (which("cargo").empty()) PV_SKIP_FIXTURE_ABSENT("cargo");
  TempDir tmp;
  const std::string config = tmp.path + "/pv.yaml";
  // The crate's build goes to the scratch directory, not into the source tree.
  write_text(config, "runners:\n  cargo:\n    dir: " + testdata("runners/cargo_crate") +
                         "\n    env: { CARGO_TARGET_DIR: " + tmp.path + "/target }\n");
  const std::string ev = tmp.path + "/evidence";
  const auto r = run_pv(
      {"validate", "--config", config, "--evidence-dir", ev, testdata("runners-cargo.yaml")});
  expect_six_outcomes(ev, "PVT-RUN-CARGO", "PVT-CG", "add(2, 2) is not 5", r);
  pv::testing::record_metric("cargo_falsifiers", 6);
}

// ---------------------------------------------------------------- binding check
TEST(PvHarnessRunners, MissingTestsRefusedBeforeAnythingRuns) {
  TempDir tmp;
  const std::string config = tmp.path + "/pv.yaml";
  std::string why;
  const bool have_ctest = !which("ctest").empty() && !which("cmake").empty();
  if (have_ctest) {
    ASSERT_TRUE(configure_ctest_tree(tmp.path + "/build", &why)) << why;
  }
  write_text(config, "runners:\n  ctest: { dir: build }\n");
  const auto r = run_pv({"validate", "--config", config, "--evidence-dir", tmp.path + "/ev",
                         testdata("runners-missing.yaml")},
                        tmp.path);
  EXPECT_EQ(r.exit_code, 2) << r.describe() << r.stdout_text << r.stderr_text;
  const std::string& err = r.stderr_text;
  const std::string file = "runners-missing.yaml:";
  if (!which("pytest").empty()) {
    EXPECT_NE(err.find(file + "26:13: error: bound test 'test_sample.py::test_passs' is not "
                              "listed by pytest --collect-only"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("did you mean 'test_sample.py::test_passes'?"), std::string::npos) << err;
  }
  if (have_ctest) {
    EXPECT_NE(err.find(file + "27:13: error: bound test 'case_nonexistent' is not listed by "
                              "ctest --show-only"),
              std::string::npos)
        << err;
  }
  EXPECT_NE(err.find(file + "28:13: error: bound test command:gone cannot be checked"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("no_such_case.py is not an executable file"), std::string::npos) << err;
  EXPECT_NE(err.find(file + "29:13: error: bound test command:not-executable"), std::string::npos)
      << err;
  // The one test that exists would have left ran.txt behind: nothing ran.
  EXPECT_FALSE(fs::exists(tmp.path + "/ran.txt")) << "a test ran before the binding check";
  EXPECT_FALSE(fs::exists(tmp.path + "/ev")) << "evidence was written";
}

// ---------------------------------------------------------------- pv.yaml, string forms
TEST(PvHarnessRunners, RepoConfigBinDirsAndStringForms) {
  TempDir tmp;
  // --bin-dir names an empty directory: the gtest binary is found in pv.yaml's bin_dirs,
  // the pytest node by the string form with pv.yaml's runners.pytest.cwd.
  fs::create_directories(tmp.path + "/empty");
  const bool have_pytest = !which("pytest").empty();
  std::string yaml = "bin_dirs: [" + bin_dir() + "]\n";
  if (have_pytest)
    yaml += "runners:\n  pytest: { cwd: " + testdata("runners/pytest_project") + " }\n";
  write_text(tmp.path + "/pv.yaml", yaml);
  std::string contract =
      "metadata: { id: PVT-RUN-CONFIG, version: 1.0.0, description: d }\n"
      "falsifiers:\n"
      "  - id: PVT-CFG-001\n    rule: r\n    prediction: p\n    if_fails: f\n"
      "    status: FUNCTIONAL\n    levels:\n"
      "      PARTIAL_ALGORITHM_LEVEL: { tests: [\"pv_harness_fixture_tests:Fixture.Passes\"] }\n";
  contract +=
      have_pytest
          ? "      FUNCTIONAL: { tests: [\"pytest:test_sample.py::test_passes\"] }\n"
          : "      FUNCTIONAL: { tests: [\"gtest:pv_harness_fixture_tests:Fixture.Passes\"] }\n";
  write_text(tmp.path + "/c.yaml", contract);
  const auto r =
      run_pv({"validate", "--bin-dir", tmp.path + "/empty", "--config", tmp.path + "/pv.yaml",
              "--evidence-dir", tmp.path + "/ev", tmp.path + "/c.yaml"});
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  const json b = bundle(tmp.path + "/ev", "PVT-RUN-CONFIG", "PVT-CFG-001");
  EXPECT_EQ(b["falsifier"]["earned"], "FUNCTIONAL") << b.dump(2);
  EXPECT_EQ(b["tests"][1]["binary"], have_pytest ? "pytest" : "pv_harness_fixture_tests");

  // A config that is wrong is a schema error at its file:line:col, and nothing runs.
  write_text(tmp.path + "/bad.yaml", "bin_dirs: [x]\nrunners:\n  pytest: { cwdd: . }\n");
  const auto bad = run_pv({"validate", "--config", tmp.path + "/bad.yaml", "--evidence-dir",
                           tmp.path + "/ev2", tmp.path + "/c.yaml"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.stderr_text.find("bad.yaml:3:13: error: unknown key 'cwdd' in runner 'pytest'; "
                                 "did you mean 'cwd'?"),
            std::string::npos)
      << bad.stderr_text;
  EXPECT_FALSE(fs::exists(tmp.path + "/ev2"));
}

// ---------------------------------------------------------------- report readers
TEST(PvHarnessRunners, ReportAndListingReaders) {
  // pytest --collect-only -q, with a parameterized family.
  const auto ids = ph::parse_pytest_collect(
      "t.py::test_a\nt.py::test_p[1]\nt.py::test_p[2]\nt.py::K::test_m\n\n4 tests collected\n");
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_TRUE(ph::pytest_id_listed(ids, "t.py::test_a"));
  EXPECT_TRUE(ph::pytest_id_listed(ids, "t.py::test_p"));
  EXPECT_TRUE(ph::pytest_id_listed(ids, "t.py::K"));
  EXPECT_TRUE(ph::pytest_id_listed(ids, "t.py"));
  EXPECT_FALSE(ph::pytest_id_listed(ids, "t.py::test_"));
  EXPECT_FALSE(ph::pytest_id_listed(ids, "t.py::test_b"));

  // cargo test -- --list.
  const auto paths =
      ph::parse_cargo_list("tests::a: test\ntests::b: test\nbench_x: bench\n\n2 tests, 1 bench\n");
  EXPECT_EQ(paths, (std::set<std::string>{"tests::a", "tests::b"}));

  // libtest's lines for one test.
  ph::ProcessResult p;
  p.started = true;
  p.exit_code = 101;
  p.stdout_text =
      "running 1 test\ntest tests::f ... FAILED\n\nfailures:\n\n---- tests::f stdout ----\n"
      "\nthread 'tests::f' panicked at src/lib.rs:3:5:\nboom\nnote: run with RUST_BACKTRACE\n";
  auto o = ph::cargo_outcome("tests::f", p);
  EXPECT_EQ(o.failed, 1);
  EXPECT_NE(o.failure.find("boom"), std::string::npos) << o.failure;
  p.exit_code = 0;
  p.stdout_text = "test tests::s ... ignored, fixture-absent: gpu\n";
  o = ph::cargo_outcome("tests::s", p);
  EXPECT_EQ(o.skipped, 1);
  EXPECT_EQ(o.skip_reason, "fixture-absent: gpu");

  // JUnit: failure, skip with its reason, properties; and a document that is not JUnit.
  std::string err;
  const auto cases = ph::parse_junit(
      "<testsuites><testsuite><testcase classname='m' name='a'><failure message='no'>x"
      "</failure></testcase><testcase classname='m' name='b'><skipped message='fixture-absent: "
      "m'/></testcase><testcase name='c'><properties><property name='metric.e' value='0.5'/>"
      "</properties></testcase></testsuite></testsuites>",
      &err);
  ASSERT_EQ(cases.size(), 3u) << err;
  EXPECT_EQ(cases[0].result, "failed");
  EXPECT_EQ(cases[0].message, "no");
  EXPECT_EQ(cases[1].result, "skipped");
  EXPECT_EQ(cases[1].message, "fixture-absent: m");
  EXPECT_EQ(cases[2].properties.at("metric.e"), "0.5");
  EXPECT_TRUE(ph::parse_junit("<html/>", &err).empty());
  EXPECT_NE(err.find("<html>"), std::string::npos) << err;
  EXPECT_TRUE(ph::parse_junit("<testsuite><testcase", &err).empty());
  EXPECT_NE(err.find("byte"), std::string::npos) << err;

  // The result file: a malformed one is an error, never silently ignored.
  TempDir tmp;
  const std::string rf = tmp.path + "/r.json";
  write_text(rf, R"({"metrics": {"e": 0.25}, "skip_reason": "fixture-absent: m", "seed": 9})");
  auto good = ph::read_result_file(rf);
  EXPECT_TRUE(good.present);
  EXPECT_EQ(good.error, "");
  EXPECT_EQ(good.metrics.at("e"), 0.25);
  EXPECT_EQ(*good.seed, 9u);
  write_text(rf, R"({"metrics": {"e": "high"}})");
  EXPECT_NE(ph::read_result_file(rf).error.find("metric 'e' is not a number"), std::string::npos);
  write_text(rf, R"({"metric": {}})");
  EXPECT_NE(ph::read_result_file(rf).error.find("unknown key 'metric'"), std::string::npos);
  EXPECT_FALSE(ph::read_result_file(tmp.path + "/absent.json").present);
}
