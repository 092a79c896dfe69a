// pv-harness falsifiers for pv's own honesty about evidence: the inputs_digest covers
// every declared input (FALSIFY-PVH-016), committed evidence earns a level only with the
// runs and machines that level asks for, judged by that level's own entry, and a skipped
// run never folds into a pass (FALSIFY-PVH-017).
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "falsifiers/support/scratch_files.h"
#include "harness/evidence.h"
#include "harness/grader.h"
#include "harness/source_tree.h"
#include "harness/testing/pv_test.h"

namespace {

namespace fs = std::filesystem;
namespace ph = pv::harness;

// A gtest binding of the made-up binary "bin" (grader tests never run it).
ph::TestBinding gtest_binding(std::string test) {
  ph::TestBinding b;
  b.binary = "bin";
  b.test = std::move(test);
  return b;
}

using pv::testing::make_temp_dir;
using pv::testing::write_text;

// ---------------------------------------------------------------- FALSIFY-PVH-016

// A scratch source tree with one file per declared glob, and the digest recomputed from
// the files on disk (a fresh SourceTree each time: it caches listings and hashes).
struct ScratchTree {
  fs::path root = make_temp_dir("digest");
  std::vector<std::string> globs = {"kernels/cpu/**", "model/forward*", "fixtures/*.gguf"};
  ScratchTree() {
    write_text(root / "contracts/c.yaml", "metadata: {id: c}\n");
    write_text(root / "kernels/cpu/attention.cpp", "int attention;\n");
    write_text(root / "kernels/cpu/sub/ops.h", "int ops;\n");
    write_text(root / "model/forward.cpp", "int forward;\n");
    write_text(root / "fixtures/a.gguf", "GGUF a\n");
    write_text(root / "unrelated.txt", "not an input\n");
  }
  std::string digest() const {
    ph::SourceTree t(root.string());
    return t.inputs_digest(globs, "contracts/c.yaml");
  }
};

TEST(PvHarness, InputsDigestCoversEveryDeclaredGlob) {
  ScratchTree tree;
  std::string before = tree.digest();
  EXPECT_EQ(before, tree.digest()) << "the digest of unchanged files must not change";
  // An edit to a file of each glob, the last included, changes the digest.
  for (const char* rel : {"kernels/cpu/attention.cpp", "kernels/cpu/sub/ops.h", "model/forward.cpp",
                          "fixtures/a.gguf", "contracts/c.yaml"}) {
    write_text(tree.root / rel, std::string("edited ") + rel + "\n");
    const std::string after = tree.digest();
    EXPECT_NE(after, before) << "editing " << rel << " left the inputs_digest unchanged";
    before = after;
  }
  // A file no glob matches is not an input.
  write_text(tree.root / "unrelated.txt", "edited\n");
  EXPECT_EQ(tree.digest(), before) << "a file outside every glob changed the digest";
}

TEST(PvHarness, InputsDigestSeesInputsAddedAndRemoved) {
  ScratchTree tree;
  // Per glob, the first and the last: a file added, then removed again.
  for (const char* rel : {"kernels/cpu/new.cpp", "model/forward_extra.h", "fixtures/b.gguf"}) {
    const std::string before = tree.digest();
    write_text(tree.root / rel, "new input\n");
    const std::string added = tree.digest();
    EXPECT_NE(added, before) << "adding " << rel << " left the inputs_digest unchanged";
    fs::remove(tree.root / rel);
    EXPECT_EQ(tree.digest(), before) << "removing " << rel << " again did not restore it";
  }
  // Removing an existing input changes it too.
  const std::string before = tree.digest();
  fs::remove(tree.root / "fixtures/a.gguf");
  EXPECT_NE(tree.digest(), before) << "removing fixtures/a.gguf left the inputs_digest unchanged";
}

// ---------------------------------------------------------------- FALSIFY-PVH-017

ph::TestRun run_of(const std::string& name, ph::TestResult r) {
  ph::TestRun t;
  t.binary = "bin";
  t.name = name;
  t.result = r;
  if (r == ph::TestResult::kSkipped) t.skip_reason = "fixture-absent: cuda-device";
  return t;
}

ph::EvidenceTest entry(const std::string& name, ph::Status level, const char* result, int runs) {
  ph::EvidenceTest t;
  t.binary = "bin";
  t.name = name;
  t.level = std::string(ph::status_name(level));
  t.result = result;
  t.runs = runs;
  return t;
}

ph::CommittedEvidence bundle(const std::string& machine, std::vector<ph::EvidenceTest> tests) {
  ph::CommittedEvidence ev;
  ev.where = "evidence/runs/" + machine + "/C/T.json";
  ev.machine_id = machine;
  ev.fresh = true;
  ev.bundle.tests = std::move(tests);
  return ev;
}

// A falsifier binding "Suite.Gpu" at PARTIAL (runs 1) and FUNCTIONAL (runs 2, machines
// `machines`), skipped here at both levels, graded against `others`.
ph::Grade grade_two_levels(int machines, const std::vector<ph::CommittedEvidence>& others) {
  ph::Falsifier f;
  f.id = "T-CREDIT";
  ph::LevelSpec partial, functional;
  partial.level = ph::Status::PARTIAL_ALGORITHM_LEVEL;
  functional.level = ph::Status::FUNCTIONAL;
  functional.runs = 2;
  functional.machines = machines;
  partial.tests.push_back(gtest_binding("Suite.Gpu"));
  functional.tests.push_back(gtest_binding("Suite.Gpu"));
  f.levels = {partial, functional};
  std::vector<ph::LevelOutcome> levels(2);
  levels[0].level = partial.level;
  levels[1].level = functional.level;
  levels[0].tests.push_back(ph::fold_runs({run_of("Suite.Gpu", ph::TestResult::kSkipped)}));
  levels[1].tests.push_back(ph::fold_runs({run_of("Suite.Gpu", ph::TestResult::kSkipped),
                                           run_of("Suite.Gpu", ph::TestResult::kSkipped)}));
  return ph::grade_falsifier(f, levels, others, true, "here");
}

TEST(PvHarness, CreditHonoursRunsPerLevel) {
  using S = ph::Status;
  // Both entries ran once: PARTIAL (runs 1) is credited, FUNCTIONAL (runs 2) is not.
  auto g = grade_two_levels(
      1, {bundle("gpu", {entry("Suite.Gpu", S::PARTIAL_ALGORITHM_LEVEL, "passed", 1),
                         entry("Suite.Gpu", S::FUNCTIONAL, "passed", 1)})});
  EXPECT_EQ(g.earned, S::PARTIAL_ALGORITHM_LEVEL)
      << "a bundle whose FUNCTIONAL entry ran once earned a level that asks for runs: 2 ("
      << g.capped_by << ")";
  // Twice at FUNCTIONAL: both levels credited.
  g = grade_two_levels(1,
                       {bundle("gpu", {entry("Suite.Gpu", S::PARTIAL_ALGORITHM_LEVEL, "passed", 1),
                                       entry("Suite.Gpu", S::FUNCTIONAL, "passed", 2)})});
  EXPECT_EQ(g.earned, S::FUNCTIONAL) << g.capped_by << " " << g.failure;
}

TEST(PvHarness, CreditHonoursMachinesPerLevel) {
  using S = ph::Status;
  const auto good = [](const std::string& m, int runs) {
    return bundle(m, {entry("Suite.Gpu", S::PARTIAL_ALGORITHM_LEVEL, "passed", 1),
                      entry("Suite.Gpu", S::FUNCTIONAL, "passed", runs)});
  };
  // machines: 2 at FUNCTIONAL. Two machines that each ran it twice earn it.
  auto g = grade_two_levels(2, {good("gpu-a", 2), good("gpu-b", 2)});
  EXPECT_EQ(g.earned, S::FUNCTIONAL) << g.capped_by;
  // One machine alone does not.
  g = grade_two_levels(2, {good("gpu-a", 2)});
  EXPECT_EQ(g.earned, S::PARTIAL_ALGORITHM_LEVEL) << g.capped_by;
  // The second machine ran it once: it does not count towards FUNCTIONAL's two machines.
  g = grade_two_levels(2, {good("gpu-a", 2), good("gpu-b", 1)});
  EXPECT_EQ(g.earned, S::PARTIAL_ALGORITHM_LEVEL)
      << "a machine whose entry ran fewer than runs: 2 counted towards machines: 2 (" << g.capped_by
      << ")";
}

TEST(PvHarness, CreditLookupUsesTheLevel) {
  using S = ph::Status;
  // The same test bound at two levels: the FUNCTIONAL entry failed, the PARTIAL one passed.
  // Each level is judged by its own entry, so the claim is refuted.
  auto g = grade_two_levels(
      1, {bundle("gpu", {entry("Suite.Gpu", S::PARTIAL_ALGORITHM_LEVEL, "passed", 2),
                         entry("Suite.Gpu", S::FUNCTIONAL, "failed", 2)})});
  EXPECT_EQ(g.earned, S::FALSIFIED) << "a failed FUNCTIONAL entry was judged by the PARTIAL one";
  // The other order in the bundle: the FUNCTIONAL entry first, failed at PARTIAL.
  g = grade_two_levels(
      1, {bundle("gpu", {entry("Suite.Gpu", S::FUNCTIONAL, "passed", 2),
                         entry("Suite.Gpu", S::PARTIAL_ALGORITHM_LEVEL, "failed", 2)})});
  EXPECT_EQ(g.earned, S::FALSIFIED) << "a failed PARTIAL entry was judged by the FUNCTIONAL one";
}

TEST(PvHarness, SkippedRunNeverFoldsIntoPass) {
  const auto pass = run_of("Suite.T", ph::TestResult::kPassed);
  const auto skip = run_of("Suite.T", ph::TestResult::kSkipped);
  for (const auto& runs : std::vector<std::vector<ph::TestRun>>{
           {skip}, {pass, skip}, {skip, pass}, {pass, pass, skip}}) {
    const auto b = ph::fold_runs(runs);
    EXPECT_EQ(b.agg.result, ph::TestResult::kSkipped) << runs.size() << " run(s)";
    EXPECT_EQ(b.agg.skip_reason, "fixture-absent: cuda-device");
  }
  // A skip caps the level: the grader never earns it from a skipped test.
  ph::Falsifier f;
  f.id = "T-SKIP";
  ph::LevelSpec lv;
  lv.tests.push_back(gtest_binding("Suite.T"));
  f.levels.push_back(lv);
  std::vector<ph::LevelOutcome> levels(1);
  levels[0].tests.push_back(ph::fold_runs({pass, skip}));
  const auto g = ph::grade_falsifier(f, levels, {}, false, "here");
  EXPECT_EQ(g.earned, ph::Status::BLOCKER_FIXTURE_ABSENT) << g.capped_by;
}

}  // namespace
