// FALSIFY-PVH-018: `pv mutants` (the real binary) plants a catalogued bug, names the
// falsifiers that kill it, and refuses a falsifier whose declared must_kill bug survives;
// a must_kill entry that names no catalogued bug is a schema error with its line:col.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "falsifiers/support/scratch_files.h"
#include "harness/process.h"
#include "harness/testing/pv_test.h"
#include "mutants/mutant.h"

namespace {

namespace fs = std::filesystem;
namespace ph = pv::harness;
using nlohmann::json;

std::string bin_dir() { return std::string(PV_BINARY_DIR) + "/bin"; }

// stdout followed by stderr, as one text to search.
struct PvRun {
  int exit_code;
  std::string output_tail;
};

PvRun run_pv(std::vector<std::string> args) {
  ph::ProcessOptions po;
  po.argv = {bin_dir() + "/pv"};
  po.argv.insert(po.argv.end(), args.begin(), args.end());
  po.timeout = std::chrono::seconds(300);
  po.tail_bytes = 1 << 20;
  const ph::ProcessResult r = ph::run_process(po);
  return {r.exit_code, r.stdout_text + r.stderr_text};
}

// A contract with one falsifier per (id, bound test, must_kill list).
struct F {
  std::string id, test, must_kill;
};
fs::path scratch_contract(const std::string& tag, const std::vector<F>& fs_) {
  const fs::path dir = pv::testing::make_temp_dir(tag);
  std::string y =
      "metadata:\n  id: PVT-MUTANTS\n  version: 1.0.0\n  description: pv mutants subject\n"
      "falsifiers:\n";
  for (const auto& f : fs_) {
    y += "  - id: " + f.id +
         "\n    rule: r\n    prediction: p\n    if_fails: f\n"
         "    status: PARTIAL_ALGORITHM_LEVEL\n"
         "    must_kill: [" +
         f.must_kill + "]\n    levels:\n      PARTIAL_ALGORITHM_LEVEL: { tests: [\"" + f.test +
         "\"] }\n";
  }
  pv::testing::write_text(dir / "contracts/c.yaml", y);
  return dir / "contracts/c.yaml";
}

TEST(PvHarness, MutantsListNamesEveryBug) {
  const auto r = run_pv({"mutants", "--list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output_tail;
  ASSERT_NE(r.output_tail.find('['), std::string::npos) << r.output_tail;
  const json j = json::parse(r.output_tail.substr(r.output_tail.find('[')), nullptr, false);
  ASSERT_TRUE(j.is_array()) << r.output_tail;
  std::set<std::string> listed;
  for (const auto& b : j) {
    listed.insert(b["name"].get<std::string>());
    // Every bug names the contract that claims its code, and that contract exists.
    const std::string contract = b["contract"].get<std::string>();
    EXPECT_TRUE(fs::exists(pv::testing::source_dir() + "/" + contract))
        << b["name"] << " claims " << contract;
    EXPECT_FALSE(b["code"].get<std::string>().empty()) << b["name"];
  }
  for (const auto& i : pv::mutant::catalogue()) {
    if (i.bug != pv::mutant::Bug::None) {
      EXPECT_TRUE(listed.count(std::string(i.name))) << i.name;
    }
  }
  pv::testing::record_metric("bugs_listed", static_cast<double>(listed.size()));
}

TEST(PvHarness, MutantsKillMatrixAndBrokenMustKill) {
  // PVT-KILLS binds a test that sees a skip folded into a pass; PVT-BLIND binds one that
  // cannot, yet promises to kill the same bug.
  const auto contract = scratch_contract(
      "mutants",
      {{"PVT-KILLS", "pv_falsifiers:PvHarness.SkippedRunNeverFoldsIntoPass", "skip-counts-as-pass"},
       {"PVT-BLIND", "pv_falsifiers:PvHarness.Sha256KnownAnswers", "skip-counts-as-pass"}});
  const auto r = run_pv({"mutants", "--json", "--bin-dir", bin_dir(), "--bug",
                         "skip-counts-as-pass", contract.string()});
  EXPECT_EQ(r.exit_code, 1) << "a broken must_kill promise must fail\n" << r.output_tail;
  ASSERT_NE(r.output_tail.find('{'), std::string::npos) << r.output_tail;
  const json j = json::parse(r.output_tail.substr(r.output_tail.find('{')), nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.output_tail;
  ASSERT_EQ(j["bugs"].size(), 1u) << r.output_tail;
  const json& bug = j["bugs"][0];
  EXPECT_EQ(bug["name"], "skip-counts-as-pass");
  EXPECT_EQ(bug["status"], "killed");
  std::map<std::string, std::string> verdict;
  for (const auto& f : bug["falsifiers"]) verdict[f["id"]] = f["verdict"];
  EXPECT_EQ(verdict["PVT-KILLS"], "killed") << r.output_tail;
  EXPECT_EQ(verdict["PVT-BLIND"], "survived") << r.output_tail;
  ASSERT_EQ(j["must_kill_broken"].size(), 1u) << r.output_tail;
  const std::string broken = j["must_kill_broken"][0];
  EXPECT_NE(broken.find("PVT-BLIND"), std::string::npos) << broken;
  EXPECT_NE(broken.find("FALSIFIED"), std::string::npos) << broken;
  EXPECT_NE(broken.find("skip-counts-as-pass"), std::string::npos) << broken;
  EXPECT_EQ(j["contracts"][contract.string()]["killed"], 1);

  // Without the blind falsifier every promise holds: exit 0, one line per bug off a tty.
  const auto honest = scratch_contract(
      "mutants-ok", {{"PVT-KILLS", "pv_falsifiers:PvHarness.SkippedRunNeverFoldsIntoPass",
                      "skip-counts-as-pass"}});
  const auto ok =
      run_pv({"mutants", "--bin-dir", bin_dir(), "--bug", "skip-counts-as-pass", honest.string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.output_tail;
  EXPECT_NE(ok.output_tail.find("skip-counts-as-pass: killed by 1 of 1: PVT-KILLS"),
            std::string::npos)
      << ok.output_tail;
  EXPECT_NE(ok.output_tail.find("mutation score 100.0%"), std::string::npos) << ok.output_tail;
}

// `pv validate --mutants` checks every must_kill promise while it grades: a falsifier
// whose tests pass with a declared bug planted is capped at BLOCKER_FIXTURE_ABSENT (its
// passing is no evidence), so its claim is an overclaim and validate exits 1; the
// falsifier that kills the bug keeps what it earned. Without --mutants nothing is capped.
TEST(PvHarness, ValidateMutantsCapsBlindFalsifier) {
  const auto contract = scratch_contract(
      "validate-mutants",
      {{"PVT-KILLS", "pv_falsifiers:PvHarness.SkippedRunNeverFoldsIntoPass", "skip-counts-as-pass"},
       {"PVT-BLIND", "pv_falsifiers:PvHarness.Sha256KnownAnswers", "skip-counts-as-pass"}});
  const fs::path ev = contract.parent_path().parent_path() / "evidence";
  auto earned = [](const std::string& out) {
    std::map<std::string, std::pair<std::string, std::string>> m;  // id -> (earned, capped_by)
    const json j = json::parse(out.substr(out.find('{')), nullptr, false);
    if (!j.is_object()) return m;
    for (const auto& c : j["contracts"]) {
      for (const auto& f : c["falsifiers"]) {
        m[f["id"]] = {f["earned"], f["capped_by"].is_string() ? f["capped_by"] : ""};
      }
    }
    return m;
  };
  const auto plain = run_pv({"validate", "--json", "--bin-dir", bin_dir(), "--evidence-dir",
                             ev.string(), contract.string()});
  EXPECT_EQ(plain.exit_code, 0) << plain.output_tail;
  auto m = earned(plain.output_tail);
  EXPECT_EQ(m["PVT-BLIND"].first, "PARTIAL_ALGORITHM_LEVEL") << plain.output_tail;

  const auto r = run_pv({"validate", "--mutants", "--json", "--bin-dir", bin_dir(),
                         "--evidence-dir", ev.string(), contract.string()});
  EXPECT_EQ(r.exit_code, 1) << "a broken must_kill promise must fail validate\n" << r.output_tail;
  m = earned(r.output_tail);
  EXPECT_EQ(m["PVT-KILLS"].first, "PARTIAL_ALGORITHM_LEVEL") << r.output_tail;
  EXPECT_EQ(m["PVT-BLIND"].first, "BLOCKER_FIXTURE_ABSENT") << r.output_tail;
  EXPECT_NE(m["PVT-BLIND"].second.find("skip-counts-as-pass survived"), std::string::npos)
      << r.output_tail;
  // The cap reaches the evidence bundle, so CI's record shows why the claim was not earned.
  json bundle;
  for (const auto& e : fs::recursive_directory_iterator(ev)) {
    if (e.path().filename() == "PVT-BLIND.json") {
      std::ifstream in(e.path());
      bundle = json::parse(in, nullptr, false);
    }
  }
  ASSERT_TRUE(bundle.is_object()) << "no bundle for PVT-BLIND under " << ev;
  EXPECT_EQ(bundle["falsifier"]["earned"], "BLOCKER_FIXTURE_ABSENT") << bundle.dump(1);
}

TEST(PvHarness, MustKillUnknownBugIsSchemaError) {
  const auto contract = scratch_contract(
      "mutants-bad",
      {{"PVT-TYPO", "pv_falsifiers:PvHarness.Sha256KnownAnswers", "skip-counts-as-pas"}});
  const auto r = run_pv({"validate", "--schema-only", "--bin-dir", bin_dir(), contract.string()});
  EXPECT_EQ(r.exit_code, 2) << r.output_tail;
  // The entry sits on line 11 of the generated contract, after "    must_kill: [".
  EXPECT_NE(r.output_tail.find(contract.string() + ":11:17:"), std::string::npos) << r.output_tail;
  EXPECT_NE(r.output_tail.find("did you mean 'skip-counts-as-pass'"), std::string::npos)
      << r.output_tail;
}

}  // namespace
