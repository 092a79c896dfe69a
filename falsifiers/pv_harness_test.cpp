// Falsifiers of contracts/pv-harness-v1.yaml: the harness's own claims, checked by
// driving the real harness library and the real pv binary (build/bin/pv) against the
// deliberately misbehaving pv_harness_fixture_tests binary and the contracts under
// harness/testdata/. Every run writes into a private temporary evidence directory. The
// containment of crashing, hanging and interrupted runs and of interrupted evidence writes
// (FALSIFY-PVH-006/007) is in pv_harness_processes_test.cpp.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "falsifiers/support/harness_cli.h"
#include "falsifiers/support/temp_dir.h"
#include "harness/atomic_file.h"
#include "harness/contract.h"
#include "harness/evidence.h"
#include "harness/grader.h"
#include "harness/gtest_listing.h"
#include "harness/gtest_result.h"
#include "harness/process.h"
#include "harness/runner.h"
#include "harness/sha256.h"
#include "harness/source_tree.h"
#include "harness/testing/pv_test.h"
#include "harness/validate.h"

namespace ph = pv::harness;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using pv::testing::bin_dir;
using pv::testing::read_text;
using pv::testing::run_pv;
using pv::testing::harness_cli::bundle;
using pv::testing::harness_cli::read_json;
using pv::testing::harness_cli::testdata;

// A gtest binding of the made-up binary "bin" (grader tests that never run it).
ph::TestBinding bin_test(std::string test) {
  ph::TestBinding b;
  b.binary = "bin";
  b.test = std::move(test);
  return b;
}

// "# expect: LINE:COL message" lines at the top of each broken contract.
struct Expectation {
  std::string file;
  int line, col;
  std::string message;
};
std::vector<Expectation> broken_expectations(std::vector<std::string>* files) {
  std::vector<Expectation> out;
  const std::regex re("# expect: ([0-9]+):([0-9]+) (.*)");
  for (const auto& e : fs::directory_iterator(testdata("broken"))) {
    if (e.path().extension() != ".yaml") continue;
    files->push_back(e.path().string());
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_match(line, m, re)) {
        out.push_back({e.path().string(), std::stoi(m[1]), std::stoi(m[2]), m[3]});
      }
    }
  }
  std::sort(files->begin(), files->end());
  return out;
}

}  // namespace

// ---------------------------------------------------------------- FALSIFY-PVH-001
TEST(PvHarness, MisspelledKeyRejectedWithLine) {
  ph::Diagnostics diags;
  const auto lc = ph::load_contract(testdata("broken/misspelled-key.yaml"), diags);
  EXPECT_FALSE(lc.ok);
  bool found = false;
  for (const auto& d : diags) {
    if (d.pos.line == 10 && d.pos.col == 5 &&
        d.message.find("unknown key 'prediciton'") != std::string::npos &&
        d.message.find("did you mean 'prediction'?") != std::string::npos) {
      found = true;
    }
  }
  EXPECT_TRUE(found) << "no diagnostic at 10:5 naming 'prediciton'; got " << diags.size();
  pv::testing::record_metric("diagnostics", static_cast<double>(diags.size()));
}

// Any single-character typo in any key of a valid contract is rejected at that key's
// exact line and column (it is never silently dropped).
RC_GTEST_PROP(PvHarness, MisspelledKeyProperty, ()) {
  const std::string path = testdata("good.yaml");
  const std::string text = read_text(path);
  struct Key {
    size_t offset;
    int line, col;
    std::string name;
  };
  std::vector<Key> keys;
  const std::regex key_re("^( *(?:- )?)([a-z_]+):");
  std::istringstream in(text);
  std::string line;
  size_t offset = 0;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    std::smatch m;
    if (std::regex_search(line, m, key_re) && m[2] != "identity") {
      keys.push_back({offset + m[1].length(), lineno, static_cast<int>(m[1].length()) + 1, m[2]});
    }
    offset += line.size() + 1;
  }
  RC_ASSERT(!keys.empty());
  const Key k = *rc::gen::elementOf(keys);
  const size_t pos = *rc::gen::inRange<size_t>(0, k.name.size());
  const int op = *rc::gen::inRange(0, 3);
  std::string typo = k.name;
  if (op == 0) {
    typo.erase(pos, 1);
  } else if (op == 1) {
    typo.insert(pos, 1, *rc::gen::elementOf(std::string("abcdefghijklmnopqrstuvwxyz")));
  } else {
    typo[pos] = typo[pos] == 'x' ? 'q' : 'x';
  }
  const std::vector<std::string> all_keys = {"metadata",   "equations",   "proof_obligations",
                                             "falsifiers", "thresholds",  "id",
                                             "version",    "description", "references",
                                             "depends_on", "formula",     "domain",
                                             "rule",       "prediction",  "if_fails",
                                             "status",     "inputs",      "levels",
                                             "tests",      "fixtures",    "runs",
                                             "machines",   "type",        "property",
                                             "formal",     "applies_to"};
  RC_PRE(!typo.empty() && std::find(all_keys.begin(), all_keys.end(), typo) == all_keys.end());
  std::string mutated = text;
  mutated.replace(k.offset, k.name.size(), typo);
  ph::Diagnostics diags;
  ph::load_contract_text(path, mutated, diags);
  bool found = false;
  for (const auto& d : diags) {
    found = found || (d.pos.line == k.line && d.pos.col == k.col &&
                      d.message.find("unknown key '" + typo + "'") != std::string::npos);
  }
  RC_ASSERT(found);
}

TEST(PvHarness, MisspelledKeyRejectedByCli) {
  const auto r = run_pv({"validate", "--schema-only", testdata("broken/misspelled-key.yaml")});
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  EXPECT_NE(r.stderr_text.find("misspelled-key.yaml:10:5: error: unknown key 'prediciton' in "
                               "falsifier BRK-MISSPELL-001; did you mean 'prediction'?"),
            std::string::npos)
      << r.stderr_text;
}

// ---------------------------------------------------------------- FALSIFY-PVH-002
TEST(PvHarness, BrokenFolderLibrary) {
  std::vector<std::string> files;
  const auto expected = broken_expectations(&files);
  ASSERT_GE(files.size(), 12u);
  ph::ValidateOptions o;
  o.contracts = files;
  o.schema_only = true;
  o.bin_dir = bin_dir();
  const auto r = ph::validate(o);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.binaries_listed, 1) << "each binary must be listed once per run";
  for (const auto& e : expected) {
    bool found = false;
    for (const auto& d : r.diags) {
      found = found || (fs::path(d.pos.file) == fs::path(e.file) && d.pos.line == e.line &&
                        d.pos.col == e.col && d.message.find(e.message) != std::string::npos);
    }
    EXPECT_TRUE(found) << e.file << ":" << e.line << ":" << e.col << " " << e.message;
  }
  // Nothing unexpected either: every problem is one the files announce.
  EXPECT_EQ(r.diags.size(), expected.size());
  pv::testing::record_metric("problems_named", static_cast<double>(r.diags.size()));
}

TEST(PvHarness, BrokenFolderCli) {
  std::vector<std::string> files;
  const auto expected = broken_expectations(&files);
  std::vector<std::string> args = {"validate", "--schema-only"};
  args.insert(args.end(), files.begin(), files.end());
  const auto r = run_pv(args);
  EXPECT_EQ(r.exit_code, 2) << r.describe();
  for (const auto& e : expected) {
    const std::string want =
        e.file + ":" + std::to_string(e.line) + ":" + std::to_string(e.col) + ": error: ";
    const auto at = r.stderr_text.find(want);
    ASSERT_NE(at, std::string::npos) << want << "\n" << r.stderr_text;
    EXPECT_NE(r.stderr_text.find(e.message, at), std::string::npos) << e.message;
  }
}

// ---------------------------------------------------------------- FALSIFY-PVH-003/005
// The grader against an independently written model of the ladder rule, over random
// declared levels and random per-level outcomes.
RC_GTEST_PROP(PvHarness, GraderMatchesLadderModel, ()) {
  const std::vector<ph::Status> all = {ph::Status::PARTIAL_ALGORITHM_LEVEL, ph::Status::FUNCTIONAL,
                                       ph::Status::DISCHARGED};
  ph::Falsifier f;
  f.id = "F";
  std::vector<ph::LevelOutcome> levels;
  std::vector<int> outcome;  // 0 pass, 1 skip, 2 fail
  for (auto st : all) {
    if (!*rc::gen::arbitrary<bool>()) continue;
    ph::LevelSpec spec;
    spec.level = st;
    spec.tests.push_back(bin_test("S.T" + std::to_string(static_cast<int>(st))));
    f.levels.push_back(spec);
    const int o = *rc::gen::inRange(0, 3);
    outcome.push_back(o);
    ph::TestRun t;
    t.binary = "bin";
    t.name = spec.tests[0].test;
    t.result = o == 0 ? ph::TestResult::kPassed
                      : (o == 1 ? ph::TestResult::kSkipped : ph::TestResult::kFailed);
    if (o == 1) t.skip_reason = "fixture-absent: fx" + std::to_string(static_cast<int>(st));
    if (o == 2) t.counterexample = "cx";
    levels.push_back({st, {ph::fold_runs({t})}});
  }
  RC_PRE(!f.levels.empty());
  f.claimed = *rc::gen::elementOf(std::vector<ph::Status>{
      ph::Status::BLOCKER_FIXTURE_ABSENT, ph::Status::PARTIAL_ALGORITHM_LEVEL,
      ph::Status::FUNCTIONAL, ph::Status::DISCHARGED});
  const ph::Grade g = ph::grade_falsifier(f, levels, {}, false, "here");

  // Model: any failure refutes; else the highest L with every declared level <= L passed.
  ph::Status want = ph::Status::BLOCKER_FIXTURE_ABSENT;
  bool any_fail = false;
  for (int o : outcome) any_fail = any_fail || o == 2;
  if (any_fail) {
    want = ph::Status::FALSIFIED;
  } else {
    for (size_t i = 0; i < f.levels.size(); ++i) {
      bool all_below_pass = true;
      for (size_t j = 0; j <= i; ++j) all_below_pass = all_below_pass && outcome[j] == 0;
      if (all_below_pass) want = f.levels[i].level;
    }
  }
  RC_ASSERT(g.earned == want);
  if (want == ph::Status::FALSIFIED) RC_ASSERT(g.counterexample.rfind("cx", 0) == 0);
  if (!any_fail && want != f.levels.back().level) {
    // The cap names the fixture of the first skipped level and that level.
    size_t first_skip = 0;
    while (outcome[first_skip] == 0) ++first_skip;
    const auto lvl = f.levels[first_skip].level;
    RC_ASSERT(g.capped_by == "fixture-absent: fx" + std::to_string(static_cast<int>(lvl)) + " at " +
                                 std::string(ph::status_name(lvl)));
  }
  // Overclaim is exactly claimed > earned.
  RC_ASSERT((f.claimed > g.earned) == (f.claimed > want));
}

TEST(PvHarness, OverclaimFailsValidation) {
  pv::testing::TempDir ev("harness-test");
  const auto over = run_pv({"validate", "--evidence-dir", ev.path(), testdata("overclaim.yaml")},
                           {{"PV_MACHINE_ID", "m1"}, {"PV_GIT_COMMIT", "0123abcd"}});
  EXPECT_EQ(over.exit_code, 1) << over.describe() << over.stdout_text;
  EXPECT_NE(over.stdout_text.find("PVT-OVER-001 OVERCLAIM: status says FUNCTIONAL but only "
                                  "PARTIAL_ALGORITHM_LEVEL was earned"),
            std::string::npos)
      << over.stdout_text;
  const json b = bundle(ev.path(), "m1", "PVT-OVERCLAIM", "PVT-OVER-001");
  EXPECT_EQ(b["falsifier"]["claimed"], "FUNCTIONAL");
  EXPECT_EQ(b["falsifier"]["earned"], "PARTIAL_ALGORITHM_LEVEL");
  // The commit a tree without its .git was built from is the one PV_GIT_COMMIT names.
  EXPECT_EQ(b["environment"]["git_commit"], "0123abcd");
  EXPECT_EQ(b["environment"]["git_dirty"], false);
  // The same tests claimed honestly pass validation: the exit code is about the claim.
  const auto honest = run_pv({"validate", "--evidence-dir", ev.path(), testdata("skip-caps.yaml")},
                             {{"PV_MACHINE_ID", "m1"}});
  EXPECT_EQ(honest.exit_code, 0) << honest.stdout_text;
}

// ---------------------------------------------------------------- FALSIFY-PVH-004
TEST(PvHarness, GtestReportInterpretation) {
  ph::ProcessResult ok;
  ok.started = true;
  ok.exit_code = 0;
  const std::string pass = R"({"testsuites":[{"name":"S","testsuite":[{"name":"T","status":"RUN",
      "result":"COMPLETED","time":"0.25s","metric.cosine_min":"0.5","seed":"77"}]}]})";
  auto r = ph::interpret_gtest_run("b", "S.T", pass, ok, 1);
  EXPECT_EQ(r.result, ph::TestResult::kPassed);
  EXPECT_DOUBLE_EQ(r.metrics["cosine_min"], 0.5);
  EXPECT_EQ(r.seed, 77u);
  EXPECT_DOUBLE_EQ(r.duration_ms, 250.0);
  // Passed in the report, but the process died: a crash is a failure.
  ph::ProcessResult crashed = ok;
  crashed.exit_code = -1;
  crashed.term_signal = SIGSEGV;
  r = ph::interpret_gtest_run("b", "S.T", pass, crashed, 1);
  EXPECT_EQ(r.result, ph::TestResult::kFailed);
  EXPECT_NE(r.failure.find("signal 11"), std::string::npos) << r.failure;
  // Filter matched nothing: not a pass.
  r = ph::interpret_gtest_run("b", "S.T", R"({"testsuites":[]})", ok, 1);
  EXPECT_EQ(r.result, ph::TestResult::kFailed);
  // Skips: fixture-absent is a skip; anything else is a failure.
  const std::string skip = R"({"testsuites":[{"name":"S","testsuite":[{"name":"T","status":"RUN",
      "result":"SKIPPED","skip_reason":"fixture-absent: model:tiny"}]}]})";
  r = ph::interpret_gtest_run("b", "S.T", skip, ok, 1);
  EXPECT_EQ(r.result, ph::TestResult::kSkipped);
  EXPECT_EQ(r.skip_reason, "fixture-absent: model:tiny");
  const std::string bare = R"({"testsuites":[{"name":"S","testsuite":[{"name":"T","status":"RUN",
      "result":"SKIPPED"}]}]})";
  EXPECT_EQ(ph::interpret_gtest_run("b", "S.T", bare, ok, 1).result, ph::TestResult::kFailed);
  // rapidcheck's shrunk value and reproduce string.
  const std::string msg =
      "gtest.h:29\nFailed\nFalsifiable after 18 tests and 3 shrinks\n\nstd::tuple<int, int>:\n"
      "(28, 5)\n\nfile.cpp:10:\nRC_ASSERT(h % k == 0)\n";
  EXPECT_EQ(ph::extract_rapidcheck_counterexample(msg),
            "Falsifiable after 18 tests and 3 shrinks\n\nstd::tuple<int, int>:\n(28, 5)");
  EXPECT_EQ(ph::extract_rapidcheck_reproduce("run with:\nRC_PARAMS=\"reproduce=BUhR_x-9\"\n"),
            "RC_PARAMS=\"reproduce=BUhR_x-9\"");
}

TEST(PvHarness, FailingTestFalsifiedWithCounterexample) {
  pv::testing::TempDir ev("harness-test");
  const auto r =
      run_pv({"validate", "--seed", "4242", "--evidence-dir", ev.path(), testdata("failing.yaml")},
             {{"PV_MACHINE_ID", "m1"}});
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  const json b1 = bundle(ev.path(), "m1", "PVT-FAILING", "PVT-FAIL-001");
  EXPECT_EQ(b1["falsifier"]["earned"], "FALSIFIED");
  EXPECT_EQ(b1["tests"][0]["counterexample"], "h=5 maps to kv=1, expected kv=0");
  const json b2 = bundle(ev.path(), "m1", "PVT-FAILING", "PVT-FAIL-002");
  ASSERT_TRUE(b2.is_object());
  EXPECT_EQ(b2["falsifier"]["earned"], "FALSIFIED");
  const std::string cx = b2["tests"][0]["counterexample"].get<std::string>();
  EXPECT_NE(cx.find("Falsifiable after"), std::string::npos) << cx;
  EXPECT_NE(cx.find("(10)"), std::string::npos) << "shrunk value missing: " << cx;
  EXPECT_NE(b2["tests"][0]["reproduce"].get<std::string>().find("reproduce="), std::string::npos);
  // The recorded seed replays the failure with the same shrunk value.
  const uint64_t seed = b2["tests"][0]["seed"].get<uint64_t>();
  ph::ProcessOptions po;
  po.argv = {bin_dir() + "/pv_harness_fixture_tests", "--gtest_filter=Fixture.PropertyFails"};
  po.env["RC_PARAMS"] = "seed=" + std::to_string(seed);
  po.timeout = std::chrono::seconds(60);
  const auto replay = ph::run_process(po);
  EXPECT_EQ(replay.exit_code, 1);
  EXPECT_NE(replay.stdout_text.find("(10)"), std::string::npos) << replay.stdout_text;
  const json b4 = bundle(ev.path(), "m1", "PVT-FAILING", "PVT-FAIL-004");
  ASSERT_TRUE(b4.is_object());
  const std::string cx4 = b4["tests"][0]["counterexample"].get<std::string>();
  EXPECT_NE(cx4.find("(10)"), std::string::npos) << "rc::check counterexample lost: " << cx4;
  const json b3 = bundle(ev.path(), "m1", "PVT-FAILING", "PVT-FAIL-003");
  EXPECT_EQ(b3["falsifier"]["earned"], "FALSIFIED") << "an unexplained skip must not pass";
  pv::testing::record_metric("replayed_seed", static_cast<double>(seed));
}

TEST(PvHarness, SkipCapsLevelWithReason) {
  pv::testing::TempDir ev("harness-test");
  const auto r = run_pv({"validate", "--evidence-dir", ev.path(), testdata("skip-caps.yaml")},
                        {{"PV_MACHINE_ID", "m1"}});
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text;
  const json b1 = bundle(ev.path(), "m1", "PVT-SKIP-CAPS", "PVT-SKIP-001");
  EXPECT_EQ(b1["falsifier"]["earned"], "PARTIAL_ALGORITHM_LEVEL");
  EXPECT_EQ(b1["falsifier"]["capped_by"], "fixture-absent: cuda-device at FUNCTIONAL");
  EXPECT_EQ(b1["tests"][1]["result"], "skipped");
  EXPECT_EQ(b1["tests"][1]["skip_reason"], "fixture-absent: cuda-device");
  const json b2 = bundle(ev.path(), "m1", "PVT-SKIP-CAPS", "PVT-SKIP-002");
  EXPECT_EQ(b2["falsifier"]["earned"], "BLOCKER_FIXTURE_ABSENT");
  const json index = read_json(ev.path() + "/index.json");
  EXPECT_EQ(index["tally"]["overall"]["PARTIAL_ALGORITHM_LEVEL"], 1);
  EXPECT_EQ(index["tally"]["overall"]["BLOCKER_FIXTURE_ABSENT"], 1);
  EXPECT_EQ(index["tally"]["per_contract"]["PVT-SKIP-CAPS"]["BLOCKER_FIXTURE_ABSENT"], 1);
}

// ---------------------------------------------------------------- FALSIFY-PVH-008
TEST(PvHarness, Sha256KnownAnswers) {
  EXPECT_EQ(ph::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ph::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ph::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  ph::Sha256 h;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) h.update(chunk);
  EXPECT_EQ(h.finish_hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_TRUE(ph::path_glob_match("model/**/*.cpp", "model/gguf.cpp"));
  EXPECT_TRUE(ph::path_glob_match("model/**/*.cpp", "model/a/b/c.cpp"));
  EXPECT_FALSE(ph::path_glob_match("model/*.cpp", "model/a/c.cpp"));
  EXPECT_FALSE(ph::path_glob_match("kernels/cpu/gqa*.cpp", "kernels/cuda/gqa.cu"));
}

TEST(PvHarness, FreshEvidenceCreditedStaleNot) {
  pv::testing::TempDir ev("harness-test");
  const std::string c = testdata("credit.yaml");
  const std::map<std::string, std::string> gpu = {{"PV_MACHINE_ID", "gpu-box"}};
  const std::map<std::string, std::string> ci = {{"PV_MACHINE_ID", "ci-box"}};
  // The "GPU machine" run: here it skips, so plant what a machine with the fixture
  // would have recorded (FUNCTIONAL passed), keeping its real inputs_digest.
  ASSERT_EQ(run_pv({"validate", "--evidence-dir", ev.path(), c}, gpu).exit_code, 0);
  const std::string planted = ev.path() + "/runs/gpu-box/PVT-CREDIT/PVT-CREDIT-001.json";
  // Committed evidence earns credit only signed by a key the allowed-signers file lists
  // (harness/README.md, "Signed evidence"): each planted version is signed by a test key.
  const ph::SigningKey key =
      ph::load_signing_key(ph::generate_key_pair(ev.path() + "/keys", "gpu-box").first);
  const std::string signers = ev.path() + "/allowed_signers";
  ph::write_file_atomic(
      signers, "gpu-box ed25519 " + ph::base64_encode(key.pub.data(), 32) + " machine=gpu-box\n");
  const auto plant = [&](json j) {
    j.erase("signature");
    ph::sign_bundle(j, key);
    ph::write_file_atomic(planted, j.dump(2));
  };
  json b = read_json(planted);
  ASSERT_EQ(b["tests"][1]["result"], "skipped");
  b["tests"][1]["result"] = "passed";
  b["tests"][1]["skip_reason"] = nullptr;
  b["tests"][1]["metrics"] = {{"cosine_min", 0.999}};
  plant(b);

  auto r = run_pv(
      {"validate", "--json", "--evidence-dir", ev.path(), "--allowed-signers", signers, c}, ci);
  EXPECT_EQ(r.exit_code, 0);
  json out = json::parse(r.stdout_text, nullptr, false);
  ASSERT_FALSE(out.is_discarded()) << r.stdout_text;
  auto f = out["contracts"][0]["falsifiers"][0];
  EXPECT_EQ(f["earned"], "FUNCTIONAL") << f.dump(2);
  ASSERT_EQ(f["credited_from"].size(), 1u);
  EXPECT_NE(f["credited_from"][0].get<std::string>().find("runs/gpu-box/"), std::string::npos);
  // The CI machine's own bundle is separate; the GPU bundle is untouched.
  EXPECT_TRUE(fs::exists(ev.path() + "/runs/ci-box/PVT-CREDIT/PVT-CREDIT-001.json"));
  EXPECT_EQ(read_json(planted)["tests"][1]["result"], "passed");

  // Stale: the digest no longer matches the sources -> earns nothing, reported.
  b["environment"]["inputs_digest"] = std::string(64, '0');
  plant(b);
  r = run_pv({"validate", "--json", "--evidence-dir", ev.path(), "--allowed-signers", signers, c},
             ci);
  out = json::parse(r.stdout_text, nullptr, false);
  f = out["contracts"][0]["falsifiers"][0];
  EXPECT_EQ(f["earned"], "PARTIAL_ALGORITHM_LEVEL");
  ASSERT_GE(f["notes"].size(), 1u);
  EXPECT_NE(f["notes"][0].get<std::string>().find("stale evidence"), std::string::npos);

  // Fresh but failed there: the claim is refuted here too.
  b = read_json(planted);
  const json fresh = read_json(ev.path() + "/runs/ci-box/PVT-CREDIT/PVT-CREDIT-001.json");
  b["environment"]["inputs_digest"] = fresh["environment"]["inputs_digest"];
  b["tests"][1]["result"] = "failed";
  b["tests"][1]["counterexample"] = "token 2 differs";
  plant(b);
  r = run_pv({"validate", "--json", "--evidence-dir", ev.path(), "--allowed-signers", signers, c},
             ci);
  EXPECT_EQ(r.exit_code, 1);
  out = json::parse(r.stdout_text, nullptr, false);
  EXPECT_EQ(out["contracts"][0]["falsifiers"][0]["earned"], "FALSIFIED");
}

// ---------------------------------------------------------------- FALSIFY-PVH-010
// harness/testdata/thresholds.yaml through the real pv: a metric beyond its threshold
// refutes with both numbers, an unrecorded one is an error, a skip stays a skip, one
// within earns, and the contract's number reaches the test.
TEST(PvHarness, ThresholdsEnforcedOnRecordedMetrics) {
  pv::testing::TempDir ev("harness-test");
  const auto r = run_pv({"validate", "--evidence-dir", ev.path(), testdata("thresholds.yaml")},
                        {{"PV_MACHINE_ID", "m1"}});
  EXPECT_EQ(r.exit_code, 1) << r.describe() << "\n" << r.stdout_text;
  const auto earned = [&](const std::string& id) {
    return bundle(ev.path(), "m1", "PVT-THRESHOLDS", id)["falsifier"]["earned"];
  };
  EXPECT_EQ(earned("PVT-THR-001"), "FUNCTIONAL");
  EXPECT_EQ(earned("PVT-THR-004"), "BLOCKER_FIXTURE_ABSENT");

  const json b2 = bundle(ev.path(), "m1", "PVT-THRESHOLDS", "PVT-THR-002");
  EXPECT_EQ(b2["falsifier"]["earned"], "FALSIFIED");
  const std::string cx = b2["tests"][0]["counterexample"].get<std::string>();
  EXPECT_NE(cx.find("metric.nmse_max = 1.5e-09"), std::string::npos) << cx;
  EXPECT_NE(cx.find("<= 1.0e-9"), std::string::npos) << cx;
  EXPECT_NE(cx.find("Fixture.PassesToo"), std::string::npos) << cx;
  EXPECT_NE(r.stdout_text.find("1.5e-09"), std::string::npos) << r.stdout_text;

  const json b3 = bundle(ev.path(), "m1", "PVT-THRESHOLDS", "PVT-THR-003");
  EXPECT_EQ(b3["falsifier"]["earned"], "FALSIFIED");
  const std::string why = b3.dump();
  EXPECT_NE(why.find("no bound test recorded metric sqnr_db_min"), std::string::npos) << why;

  const json b5 = bundle(ev.path(), "m1", "PVT-THRESHOLDS", "PVT-THR-005");
  EXPECT_EQ(b5["falsifier"]["earned"], "PARTIAL_ALGORITHM_LEVEL") << b5.dump(2);
  EXPECT_EQ(b5["tests"][0]["metrics"]["echo_max"], 0.125);
  pv::testing::record_metric("threshold_falsifiers", 5);
}

// The environment the runner gives a test, read back by pv::testing::threshold.
TEST(PvHarness, ThresholdEnvironmentNamesEveryBound) {
  ph::Threshold a{"nmse_max", "nmse_max", true, 1e-9, "1.0e-9", {}};
  ph::Threshold b{"cos.floor", "cosine.*", false, 0.97, "0.97", {}};
  const auto env = ph::threshold_env({a, b});
  EXPECT_EQ(env.at("PV_THRESHOLD_NMSE_MAX"), "1.0e-9");
  EXPECT_EQ(env.at("PV_THRESHOLD_COS_FLOOR"), "0.97");
  const json all = json::parse(env.at("PV_THRESHOLDS"));
  EXPECT_EQ(all["nmse_max"]["metric"], "nmse_max");
  EXPECT_EQ(all["nmse_max"]["max"], 1e-9);
  EXPECT_EQ(all["cos.floor"]["metric"], "cosine.*");
  EXPECT_EQ(all["cos.floor"]["min"], 0.97);
  EXPECT_TRUE(ph::threshold_env({}).empty());
}

// Committed evidence credited for a locally skipped test meets the thresholds with the
// metrics it recorded: beyond -> FALSIFIED naming the bundle; within -> credited.
TEST(PvHarness, CreditedEvidenceMeetsThresholds) {
  ph::Falsifier f;
  f.id = "T-1";
  ph::LevelSpec lv;
  lv.tests.push_back(bin_test("Suite.Gpu"));
  f.levels.push_back(lv);
  f.thresholds.push_back({"nmse_max", "nmse_max", true, 1e-9, "1e-9", {"c.yaml", 3, 5}});
  const auto grade_with = [&](double recorded) {
    ph::TestRun skipped;
    skipped.binary = "bin";
    skipped.name = "Suite.Gpu";
    skipped.result = ph::TestResult::kSkipped;
    skipped.skip_reason = "fixture-absent: cuda-device";
    std::vector<ph::LevelOutcome> levels(1);
    levels[0].tests.push_back(ph::fold_runs({skipped}));
    ph::CommittedEvidence ev;
    ev.where = "evidence/runs/gpu/C/T-1.json";
    ev.machine_id = "gpu";
    ev.fresh = true;
    ph::EvidenceTest t;
    t.binary = "bin";
    t.name = "Suite.Gpu";
    t.result = "passed";
    t.metrics["nmse_max"] = recorded;
    ev.bundle.tests.push_back(t);
    return ph::grade_falsifier(f, levels, {ev}, true, "here");
  };
  const auto bad = grade_with(3.2e-7);
  EXPECT_EQ(bad.earned, ph::Status::FALSIFIED);
  EXPECT_NE(bad.counterexample.find("3.2e-07"), std::string::npos) << bad.counterexample;
  EXPECT_NE(bad.counterexample.find("1e-9"), std::string::npos) << bad.counterexample;
  EXPECT_NE(bad.counterexample.find("evidence/runs/gpu/"), std::string::npos) << bad.counterexample;
  const auto good = grade_with(4e-12);
  EXPECT_EQ(good.earned, ph::Status::PARTIAL_ALGORITHM_LEVEL) << good.failure;
  ASSERT_EQ(good.credited_from.size(), 1u);
}

// Every run of a repeated test is held to the thresholds, not only the first.
TEST(PvHarness, ThresholdsCheckEveryRun) {
  ph::Falsifier f;
  f.id = "T-2";
  ph::LevelSpec lv;
  lv.runs = 2;
  lv.tests.push_back(bin_test("Suite.Twice"));
  f.levels.push_back(lv);
  f.thresholds.push_back({"cosine_min", "cosine_min", false, 0.999, "0.999", {}});
  ph::TestRun r1, r2;
  r1.binary = r2.binary = "bin";
  r1.name = r2.name = "Suite.Twice";
  r1.result = r2.result = ph::TestResult::kPassed;
  r1.metrics["cosine_min"] = 0.9999;
  r2.metrics["cosine_min"] = 0.99;
  std::vector<ph::LevelOutcome> levels(1);
  levels[0].tests.push_back(ph::fold_runs({r1, r2}));
  const auto g = ph::grade_falsifier(f, levels, {}, false, "here");
  EXPECT_EQ(g.earned, ph::Status::FALSIFIED);
  EXPECT_NE(g.counterexample.find("0.99,"), std::string::npos) << g.counterexample;
}

// ---------------------------------------------------------------- FALSIFY-PVH-009
TEST(PvHarness, GtestListParsing) {
  const std::string text =
      "Running main() from gtest_main.cc\n"
      "Suite.\n  A\n  B\n"
      "Typed/0.  # TypeParam = int\n  Z\n"
      "Inst/Param.\n  P/0  # GetParam() = 0\n  P/1  # GetParam() = (1, 2)\n";
  const auto s = ph::parse_gtest_list(text);
  const std::set<std::string> want = {"Suite.A", "Suite.B", "Typed/0.Z", "Inst/Param.P/0",
                                      "Inst/Param.P/1"};
  EXPECT_EQ(s, want);
  EXPECT_TRUE(ph::gtest_pattern_match("Inst/Param.*", "Inst/Param.P/1"));
  EXPECT_TRUE(ph::gtest_pattern_match("Typed/?.Z", "Typed/0.Z"));
  EXPECT_FALSE(ph::gtest_pattern_match("Suite.A", "Suite.AB"));
  // The real binary's listing, typed and parameterized tests included.
  ph::ListingCache cache(bin_dir());
  const auto& l = cache.get("pv_harness_fixture_tests");
  ASSERT_TRUE(l.ok) << l.error;
  EXPECT_TRUE(l.tests.count("Evens/FixtureParam.Even/2"));
  EXPECT_TRUE(l.tests.count("FixtureTyped/1.ZeroIsZero"));
  EXPECT_TRUE(l.tests.count("Fixture.PropertyFails"));
  cache.get("pv_harness_fixture_tests");
  EXPECT_EQ(cache.binaries_listed(), 1);
}

TEST(PvHarness, ParameterizedBindingsRunAndRepeat) {
  pv::testing::TempDir ev("harness-test");
  const auto r = run_pv({"validate", "--evidence-dir", ev.path(), testdata("good.yaml"),
                         testdata("parameterized.yaml")},
                        {{"PV_MACHINE_ID", "m1"}});
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("PVT-PARAM-001 promotion waiting to be recorded: earned "
                               "DISCHARGED, status says PARTIAL_ALGORITHM_LEVEL"),
            std::string::npos)
      << r.stdout_text;
  const json b = bundle(ev.path(), "m1", "PVT-PARAM", "PVT-PARAM-001");
  ASSERT_TRUE(b.is_object());
  EXPECT_EQ(b["falsifier"]["earned"], "DISCHARGED");
  const json& seeded = b["tests"][3];
  EXPECT_EQ(seeded["name"], "Fixture.RecordsSeed");
  EXPECT_EQ(seeded["runs"], 2);
  ASSERT_EQ(seeded["seeds"].size(), 2u);
  EXPECT_NE(seeded["seeds"][0], seeded["seeds"][1]) << "each repeated run gets its own seed";
  EXPECT_EQ(b["tests"][2]["executed"].size(), 3u) << "the pattern covers all three params";
  EXPECT_EQ(b["tests"][1]["executed"].size(), 2u) << "the pattern covers both types";
}
