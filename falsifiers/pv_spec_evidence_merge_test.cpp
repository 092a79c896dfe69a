// Falsifiers of contracts/pv-spec-v1.yaml about evidence across runs and machines:
// merge (runs, machines, flakiness, staleness), shard equivalence and gc. Bundles are
// written in the harness core's pv-evidence-v1 shape (harness/evidence.cpp).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "falsifiers/support/scratch_files.h"
#include "harness/evidence_gc.h"
#include "harness/evidence_merge.h"
#include "harness/process.h"
#include "harness/sha256.h"
#include "harness/shard.h"
#include "harness/testing/pv_test.h"

namespace {
namespace fs = std::filesystem;
namespace ph = pv::harness;
using nlohmann::json;

using pv::testing::make_temp_dir;
using pv::testing::write_text;

const char* kContract = R"(metadata:
  id: C-MERGE
  version: 1.0.0
  description: merge fixture
falsifiers:
  - id: F-ONE
    rule: r
    prediction: p
    if_fails: f
    status: PARTIAL_ALGORITHM_LEVEL
    levels:
      PARTIAL_ALGORITHM_LEVEL: { tests: ["pv_falsifiers:M.Partial"] }
      FUNCTIONAL: { tests: ["pv_falsifiers:M.Functional"] }
      DISCHARGED: { tests: ["pv_falsifiers:M.Discharged"], runs: 2, machines: 2 }
)";

struct BundleSpec {
  std::string falsifier = "F-ONE";
  std::string machine = "m1";
  std::string earned = "FUNCTIONAL";
  std::string capped_by;
  std::string generated_at = "2026-11-22T01:00:00Z";
  // (level, result, runs) per test
  std::vector<std::tuple<std::string, std::string, int>> tests = {
      {"PARTIAL_ALGORITHM_LEVEL", "passed", 1}, {"FUNCTIONAL", "passed", 1}};
};

// A bundle in the harness core's shape under dir/runs/<machine>/<contract>/<falsifier>.json.
fs::path write_bundle(const fs::path& dir, const fs::path& root, const BundleSpec& s) {
  json b;
  b["schema"] = "pv-evidence-v1";
  b["contract"] = {{"id", "C-MERGE"},
                   {"version", "1.0.0"},
                   {"file", "contracts/merge-v1.yaml"},
                   {"sha256", ph::sha256_hex(kContract)}};
  b["falsifier"] = {{"id", s.falsifier},
                    {"claimed", "PARTIAL_ALGORITHM_LEVEL"},
                    {"earned", s.earned},
                    {"capped_by", s.capped_by.empty() ? json() : json(s.capped_by)}};
  b["tests"] = json::array();
  int i = 0;
  for (const auto& [level, result, runs] : s.tests) {
    b["tests"].push_back({{"binary", "pv_falsifiers"},
                          {"name", "M.T" + std::to_string(i++) + level},
                          {"level", level},
                          {"result", result},
                          {"runs", runs},
                          {"metrics", {{"cosine_min", 0.5}}},
                          {"credited_from", nullptr}});
  }
  b["environment"] = {{"machine_id", s.machine},
                      {"host", "host-" + s.machine},
                      {"inputs_digest", "d"},
                      {"git_commit", "c"}};
  b["generated_at"] = s.generated_at;
  fs::path p = dir / "runs" / s.machine / "C-MERGE" / (s.falsifier + ".json");
  write_text(p, b.dump(1));
  (void)root;
  return p;
}

fs::path make_root() {
  fs::path root = make_temp_dir("merge-root");
  write_text(root / "contracts/merge-v1.yaml", kContract);
  return root;
}

ph::MergedIndex merge_dirs(const std::vector<fs::path>& dirs, const fs::path& root) {
  std::vector<ph::BundleRecord> all;
  for (const auto& d : dirs) {
    auto bs = ph::read_bundles(d, root);
    all.insert(all.end(), bs.begin(), bs.end());
  }
  return ph::merge_bundles(all, ph::contract_staleness_check(root));
}

TEST(EvidenceMerge, TwoRunsOnTwoMachinesEarnDischarged) {
  fs::path root = make_root();
  fs::path a = make_temp_dir("run-a"), b = make_temp_dir("run-b");
  BundleSpec s;
  s.capped_by = "machines: 1 of 2 at DISCHARGED";
  s.tests.push_back({"DISCHARGED", "passed", 2});
  write_bundle(a, root, s);
  // Alone, one machine's run stays FUNCTIONAL: its grader saw one machine.
  auto alone = merge_dirs({a}, root);
  ASSERT_EQ(alone.falsifiers.size(), 1u);
  EXPECT_EQ(alone.falsifiers[0].earned, ph::Status::FUNCTIONAL);
  // The same machine twice is still one machine.
  BundleSpec again = s;
  again.generated_at = "2026-11-22T02:00:00Z";
  write_bundle(b, root, again);
  auto same = merge_dirs({a, b}, root);
  EXPECT_EQ(same.falsifiers[0].earned, ph::Status::FUNCTIONAL);
  EXPECT_EQ(same.falsifiers[0].machines, 1);
  EXPECT_EQ(same.falsifiers[0].runs, 2);
  // A second machine that passed the DISCHARGED tests completes machines: 2.
  fs::remove_all(b);
  BundleSpec other = s;
  other.machine = "m2";
  write_bundle(b, root, other);
  auto two = merge_dirs({a, b}, root);
  EXPECT_EQ(two.falsifiers[0].earned, ph::Status::DISCHARGED);
  EXPECT_EQ(two.falsifiers[0].machines, 2);
  EXPECT_FALSE(two.falsifiers[0].flaky);
  // ...but not with too few repetitions (runs: 2).
  fs::remove_all(b);
  other.tests.back() = {"DISCHARGED", "passed", 1};
  write_bundle(b, root, other);
  EXPECT_EQ(merge_dirs({a, b}, root).falsifiers[0].earned, ph::Status::FUNCTIONAL);
  pv::testing::record_metric("machines_merged", two.falsifiers[0].machines);
}

// Property: over any set of runs, a test that passed in one run and failed in another
// makes the falsifier flaky and it earns the minimum level of the runs; when no verdict
// differs it earns the best run's level.
RC_GTEST_PROP(EvidenceMerge, FlakyEarnsOnlyWhereRunsAgree, ()) {
  fs::path root = make_root();
  const int n = *rc::gen::inRange(1, 6);
  std::vector<fs::path> dirs;
  std::vector<ph::Status> earned;
  bool any_fail = false, any_pass = false;
  for (int r = 0; r < n; ++r) {
    const bool fails = *rc::gen::arbitrary<bool>();
    BundleSpec s;
    s.machine = "m" + std::to_string(*rc::gen::inRange(0, 3));
    s.generated_at = "2026-11-22T01:00:0" + std::to_string(r) + "Z";
    const auto level =
        fails ? ph::Status::FALSIFIED
              : *rc::gen::element(ph::Status::PARTIAL_ALGORITHM_LEVEL, ph::Status::FUNCTIONAL);
    s.earned = std::string(ph::status_name(level));
    s.tests = {{"PARTIAL_ALGORITHM_LEVEL", fails ? "failed" : "passed", 1}};
    (fails ? any_fail : any_pass) = true;
    earned.push_back(level);
    dirs.push_back(make_temp_dir("prop"));
    write_bundle(dirs.back(), root, s);
  }
  auto idx = merge_dirs(dirs, root);
  RC_ASSERT(idx.falsifiers.size() == 1u);
  const auto& m = idx.falsifiers[0];
  RC_ASSERT(m.flaky == (any_fail && any_pass));
  auto lo = *std::min_element(earned.begin(), earned.end());
  auto hi = *std::max_element(earned.begin(), earned.end());
  RC_ASSERT(m.earned == (m.flaky ? lo : hi));
  RC_ASSERT(m.runs == n);
  for (const auto& d : dirs) fs::remove_all(d);
  fs::remove_all(root);
}

TEST(EvidenceMerge, StaleBundleEarnsNothing) {
  fs::path root = make_root();
  fs::path a = make_temp_dir("stale");
  BundleSpec s;
  write_bundle(a, root, s);
  EXPECT_FALSE(merge_dirs({a}, root).falsifiers[0].stale);
  write_text(root / "contracts/merge-v1.yaml", std::string(kContract) + "# edited\n");
  auto idx = merge_dirs({a}, root);
  ASSERT_EQ(idx.falsifiers.size(), 1u);
  EXPECT_TRUE(idx.falsifiers[0].stale);
  EXPECT_EQ(idx.total.total(), 0) << "stale evidence must not count in the tally";
  ASSERT_EQ(idx.stale_bundles.size(), 1u);
  EXPECT_NE(idx.stale_bundles[0].find("changed since the run"), std::string::npos);
}

// Property: for any set of falsifiers and any shard count, every id lands in exactly one
// shard, and merging the bundles the shards wrote equals the index of one unsharded run.
RC_GTEST_PROP(ShardEquivalence, MergedShardsEqualSingleRun, ()) {
  fs::path root = make_root();
  const int nf = *rc::gen::inRange(1, 25);
  const int n = *rc::gen::inRange(1, 8);
  std::vector<std::string> ids;
  for (int i = 0; i < nf; ++i) ids.push_back("F-" + std::to_string(i));
  fs::path single = make_temp_dir("single");
  std::vector<fs::path> shard_dirs;
  std::map<std::string, int> seen;
  for (int i = 1; i <= n; ++i) shard_dirs.push_back(make_temp_dir("shard"));
  for (const auto& id : ids) {
    BundleSpec s;
    s.falsifier = id;
    s.earned = std::string(ph::status_name(static_cast<ph::Status>(*rc::gen::inRange(0, 4))));
    write_bundle(single, root, s);
    for (int i = 1; i <= n; ++i) {
      if (ph::in_shard(ids, id, {i, n})) {
        ++seen[id];
        write_bundle(shard_dirs[i - 1], root, s);
      }
    }
  }
  for (const auto& id : ids) RC_ASSERT(seen[id] == 1);
  auto one = merge_dirs({single}, root);
  auto merged = merge_dirs(shard_dirs, root);
  RC_ASSERT(one.digest == merged.digest);
  RC_ASSERT(one.total == merged.total);
  RC_ASSERT(one.falsifiers.size() == merged.falsifiers.size());
  for (const auto& d : shard_dirs) fs::remove_all(d);
  fs::remove_all(single);
  fs::remove_all(root);
}

TEST(ShardEquivalence, ParseRejectsBadSpecs) {
  EXPECT_EQ(ph::parse_shard("2/4").index, 2);
  for (const char* bad : {"0/4", "5/4", "1/0", "a/2", "1-2", "2/", ""}) {
    EXPECT_THROW(ph::parse_shard(bad), std::invalid_argument) << bad;
  }
}

TEST(EvidenceGc, KeepsNewestFreshPerFalsifierAndMachine) {
  fs::path root = make_root();
  fs::path dir = make_temp_dir("gc");
  BundleSpec s;
  fs::path newest = write_bundle(dir, root, s);
  // An older run on the same machine (other file name), another machine's run, a stale one.
  BundleSpec older = s;
  older.generated_at = "2026-11-21T00:00:00Z";
  fs::path older_p = write_bundle(dir / "older", root, older);
  BundleSpec m2 = s;
  m2.machine = "m2";
  m2.generated_at = "2026-11-01T00:00:00Z";
  fs::path m2_p = write_bundle(dir, root, m2);
  fs::path stale_p = dir / "stale.json";
  {
    json j = json::parse(std::ifstream(newest));
    j["contract"]["sha256"] = std::string(64, '0');
    j["environment"]["machine_id"] = "m3";
    write_text(stale_p, j.dump());
  }
  auto dry = ph::gc_evidence(dir, root, /*dry_run=*/true);
  EXPECT_EQ(dry.removed.size(), 2u);
  EXPECT_TRUE(fs::exists(older_p));
  auto r = ph::gc_evidence(dir, root, /*dry_run=*/false);
  EXPECT_EQ(r.kept, 2);
  EXPECT_TRUE(fs::exists(newest));
  EXPECT_TRUE(fs::exists(m2_p));
  EXPECT_FALSE(fs::exists(older_p));
  EXPECT_FALSE(fs::exists(stale_p));
}

TEST(EvidenceMerge, CliMergesTwoRunsIntoOneIndex) {
  fs::path root = make_root();
  fs::path a = make_temp_dir("cli-a"), b = make_temp_dir("cli-b"), out = make_temp_dir("cli-out");
  BundleSpec s;
  write_bundle(a, root, s);
  BundleSpec fail = s;
  fail.machine = "m2";
  fail.earned = "FALSIFIED";
  fail.tests = {{"PARTIAL_ALGORITHM_LEVEL", "passed", 1}, {"FUNCTIONAL", "failed", 1}};
  write_bundle(b, root, fail);
  ph::ProcessOptions o;
  o.argv = {std::string(PV_BINARY_DIR) + "/bin/pv",
            "evidence",
            "merge",
            a.string(),
            b.string(),
            "--out",
            out.string(),
            "--root",
            root.string()};
  o.tail_bytes = 1 << 16;
  auto r = ph::run_process(o);
  ASSERT_TRUE(r.started) << r.spawn_error;
  EXPECT_EQ(r.exit_code, 1) << "a flaky falsifier makes merge exit 1\n"
                            << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stdout_text.find("FLAKY"), std::string::npos) << r.stdout_text;
  json idx = json::parse(std::ifstream(out / "index.json"));
  EXPECT_EQ(idx["schema"], "pv-merged-index-v1");
  ASSERT_EQ(idx["falsifiers"].size(), 1u);
  EXPECT_EQ(idx["falsifiers"][0]["earned"], "FALSIFIED");
  EXPECT_EQ(idx["falsifiers"][0]["flaky"], true);
  EXPECT_EQ(idx["falsifiers"][0]["machines"], 2);
  // The merged directory is evidence in its own right: reading it back gives the same index.
  auto again = merge_dirs({out}, root);
  EXPECT_EQ(again.digest, idx["digest"].get<std::string>());
}

// End to end: `pv validate --shard i/3` over the harness's fixture contracts (passing,
// skipping and failing falsifiers), each shard into its own evidence directory; the merged
// shards have the same index digest and statuses as one unsharded run.
TEST(ShardEquivalence, ValidateShardsMergeToSingleRun) {
  const fs::path src = pv::testing::source_dir();
  const std::vector<std::string> contracts = {(src / "harness/testdata/good.yaml").string(),
                                              (src / "harness/testdata/skip-caps.yaml").string(),
                                              (src / "harness/testdata/failing.yaml").string()};
  fs::path work = make_temp_dir("shard-e2e");
  auto validate = [&](const fs::path& ev, const std::string& shard) {
    ph::ProcessOptions o;
    o.argv = {std::string(PV_BINARY_DIR) + "/bin/pv",
              "validate",
              "--evidence-dir",
              ev.string(),
              "--bin-dir",
              std::string(PV_BINARY_DIR) + "/bin",
              "--seed",
              "7"};
    if (!shard.empty()) {
      o.argv.push_back("--shard");
      o.argv.push_back(shard);
    }
    o.argv.insert(o.argv.end(), contracts.begin(), contracts.end());
    o.tail_bytes = 1 << 16;
    o.env["PV_MACHINE_ID"] = "shardtest";
    auto r = ph::run_process(o);
    EXPECT_TRUE(r.started && !r.timed_out && r.term_signal == 0) << r.describe();
    return ph::read_bundles(ev, src).size();
  };
  // One bundle per falsifier of the three contracts (counted, not hard-coded, so the
  // fixture contracts can grow); round-robin shards differ in size by at most one.
  size_t declared = 0;
  for (const auto& c : contracts) {
    std::ifstream in(c);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("  - id:", 0) == 0) ++declared;
    }
  }
  const size_t all = validate(work / "single", "");
  ASSERT_EQ(all, declared);
  std::vector<fs::path> dirs;
  size_t sum = 0;
  for (int i = 1; i <= 3; ++i) {
    dirs.push_back(work / ("shard-" + std::to_string(i)));
    size_t n = validate(dirs.back(), std::to_string(i) + "/3");
    EXPECT_GE(n, all / 3) << "shard " << i;
    EXPECT_LE(n, (all + 2) / 3) << "shard " << i;
    sum += n;
  }
  EXPECT_EQ(sum, all);
  auto one = merge_dirs({work / "single"}, src);
  auto merged = merge_dirs(dirs, src);
  EXPECT_EQ(one.digest, merged.digest);
  EXPECT_EQ(one.total, merged.total);
  ASSERT_EQ(one.falsifiers.size(), merged.falsifiers.size());
  for (size_t i = 0; i < one.falsifiers.size(); ++i) {
    EXPECT_EQ(one.falsifiers[i].falsifier_id, merged.falsifiers[i].falsifier_id);
    EXPECT_EQ(one.falsifiers[i].earned, merged.falsifiers[i].earned);
  }
  pv::testing::record_metric("shards", 3);
  fs::remove_all(work);
}

}  // namespace
