// Falsifiers of contracts/pv-spec-v1.yaml about `pv amend`: deterministic, a no-op when
// nothing changed, bump rules, refusal to record an overclaim or stale evidence, prose and
// older amendments preserved. Evidence is written in the harness core's bundle shape.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "falsifiers/support/scratch_files.h"
#include "harness/file_bytes.h"
#include "harness/process.h"
#include "harness/sha256.h"
#include "harness/spec/amend.h"
#include "harness/spec/spec_doc.h"
#include "harness/testing/pv_test.h"

namespace {
namespace fs = std::filesystem;
namespace ph = pv::harness;
using nlohmann::json;

using pv::testing::make_temp_dir;
using pv::testing::write_text;

const char* kContract = R"(metadata:
  id: C-AMEND
  version: 1.0.0
  description: amend fixture contract
falsifiers:
  - id: F-A
    rule: a holds
    prediction: always
    if_fails: a is wrong
    status: PARTIAL_ALGORITHM_LEVEL
  - id: F-B
    rule: b holds
    prediction: always
    if_fails: b is wrong
    status: PARTIAL_ALGORITHM_LEVEL
  - id: F-C
    rule: c holds
    prediction: always
    if_fails: c is wrong
    status: PARTIAL_ALGORITHM_LEVEL
)";

// A source root with the contract and an evidence directory.
struct Tree {
  fs::path root = make_temp_dir("amend");
  std::string version = "1.0.0";  // the contract version bundles record
  fs::path evidence() const { return root / "evidence"; }
  fs::path spec() const { return root / "spec/pv-spec.md"; }
  Tree() {
    write_text(root / "contracts/amend-v1.yaml", kContract);
    fs::create_directories(evidence());
  }
  ~Tree() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  void bundle(const std::string& id, ph::Status earned, const std::string& when,
              ph::Status claimed = ph::Status::PARTIAL_ALGORITHM_LEVEL,
              const std::string& digest = "d1") const {
    json b;
    b["schema"] = "pv-evidence-v1";
    b["contract"] = {
        {"id", "C-AMEND"},
        {"version", version},
        {"file", "contracts/amend-v1.yaml"},
        {"sha256", ph::sha256_hex(ph::read_file_bytes(root / "contracts/amend-v1.yaml"))}};
    b["falsifier"] = {{"id", id},
                      {"claimed", std::string(ph::status_name(claimed))},
                      {"earned", std::string(ph::status_name(earned))},
                      {"capped_by", nullptr}};
    b["tests"] = json::array({{{"binary", "pv_falsifiers"},
                               {"name", "Amend." + id},
                               {"result", earned == ph::Status::FALSIFIED ? "failed" : "passed"}}});
    b["environment"] = {{"machine_id", "m1"}, {"inputs_digest", digest}};
    b["generated_at"] = when;
    write_text(evidence() / "runs/m1/C-AMEND" / (id + ".json"), b.dump(1));
  }
  ph::AmendPlan amend() const {
    ph::AmendOptions o;
    o.spec_file = spec();
    o.evidence_dir = evidence();
    o.root = root;
    return ph::amend_spec(o);
  }
};

constexpr auto P = ph::Status::PARTIAL_ALGORITHM_LEVEL;
constexpr auto F = ph::Status::FUNCTIONAL;

TEST(SpecAmend, NoOpWhenNothingChanged) {
  Tree t;
  t.bundle("F-A", P, "2026-11-20T10:00:00Z");
  auto first = t.amend();
  ASSERT_EQ(first.outcome, ph::AmendOutcome::kAmended) << first.message;
  EXPECT_EQ(first.after.version.str(), "v1.0.0");
  const std::string bytes = ph::read_file_bytes(t.spec());
  const auto mtime = fs::last_write_time(t.spec());
  // Re-running the same falsifier (new generation time, same verdict and inputs) is no change.
  t.bundle("F-A", P, "2026-11-21T10:00:00Z");
  auto second = t.amend();
  EXPECT_EQ(second.outcome, ph::AmendOutcome::kUnchanged) << second.message;
  EXPECT_EQ(ph::read_file_bytes(t.spec()), bytes);
  EXPECT_EQ(fs::last_write_time(t.spec()), mtime);
}

TEST(SpecAmend, BumpRules) {
  Tree t;
  t.bundle("F-A", P, "2026-11-20T10:00:00Z");
  t.bundle("F-B", P, "2026-11-20T10:00:00Z");
  ASSERT_EQ(t.amend().after.version.str(), "v1.0.0");
  // Promotion: minor, with the bundle that earned it in the flips table.
  t.bundle("F-A", F, "2026-11-21T10:00:00Z");
  auto promo = t.amend();
  ASSERT_EQ(promo.outcome, ph::AmendOutcome::kAmended) << promo.message;
  EXPECT_EQ(promo.bump, "minor");
  EXPECT_EQ(promo.after.version.str(), "v1.1.0");
  ASSERT_EQ(promo.flips.size(), 1u);
  EXPECT_EQ(promo.flips[0].bundle, "evidence/runs/m1/C-AMEND/F-A.json");
  const std::string doc = ph::read_file_bytes(t.spec());
  EXPECT_NE(doc.find("| F-A | C-AMEND | PARTIAL_ALGORITHM_LEVEL | FUNCTIONAL | "
                     "`evidence/runs/m1/C-AMEND/F-A.json`"),
            std::string::npos)
      << doc;
  EXPECT_NE(doc.find("### Amendment 2: v1.0.0 -> v1.1.0 (minor), evidence of 2026-11-21"),
            std::string::npos);
  EXPECT_NE(doc.find("| FUNCTIONAL | 0 | 1 (+1) |"), std::string::npos);
  // New falsifier: minor.
  t.bundle("F-C", P, "2026-11-21T11:00:00Z");
  EXPECT_EQ(t.amend().after.version.str(), "v1.2.0");
  // Evidence refresh only (new inputs digest, same status): patch.
  t.bundle("F-C", P, "2026-11-21T12:00:00Z", P, "d2");
  auto patch = t.amend();
  EXPECT_EQ(patch.bump, "patch");
  EXPECT_EQ(patch.after.version.str(), "v1.2.1");
  // Demotion (falsified, with the claim lowered: a claim above FALSIFIED is an overclaim
  // and refused) and retirement: major.
  t.bundle("F-A", ph::Status::FALSIFIED, "2026-11-22T10:00:00Z", ph::Status::FALSIFIED);
  EXPECT_EQ(t.amend().after.version.str(), "v2.0.0");
  fs::remove(t.evidence() / "runs/m1/C-AMEND/F-B.json");
  auto retire = t.amend();
  EXPECT_EQ(retire.after.version.str(), "v3.0.0");
  ASSERT_EQ(retire.retired.size(), 1u);
  EXPECT_EQ(retire.retired[0].id, "F-B");
  // The log keeps every amendment, newest first, and the history has all six.
  const std::string last = ph::read_file_bytes(t.spec());
  EXPECT_LT(last.find("### Amendment 6"), last.find("### Amendment 1"));
  EXPECT_EQ(ph::spec_read_state(last, "spec").history.size(), 6u);
}

TEST(SpecAmend, RefusesOverclaimAndStaleEvidence) {
  Tree t;
  t.bundle("F-A", P, "2026-11-20T10:00:00Z");
  ASSERT_EQ(t.amend().outcome, ph::AmendOutcome::kAmended);
  const std::string before = ph::read_file_bytes(t.spec());
  t.bundle("F-B", P, "2026-11-21T10:00:00Z", F);  // claims FUNCTIONAL, earned PARTIAL
  auto over = t.amend();
  EXPECT_EQ(over.outcome, ph::AmendOutcome::kRefused);
  EXPECT_NE(over.message.find("overclaim: C-AMEND F-B claims FUNCTIONAL but earned "
                              "PARTIAL_ALGORITHM_LEVEL"),
            std::string::npos)
      << over.message;
  EXPECT_EQ(ph::read_file_bytes(t.spec()), before);
  t.bundle("F-B", P, "2026-11-21T10:00:00Z");
  write_text(t.root / "contracts/amend-v1.yaml", std::string(kContract) + "# changed\n");
  auto stale = t.amend();
  EXPECT_EQ(stale.outcome, ph::AmendOutcome::kRefused);
  EXPECT_NE(stale.message.find("stale evidence"), std::string::npos) << stale.message;
  EXPECT_EQ(ph::read_file_bytes(t.spec()), before);
}

// A contract is a versioned set of claims: a file that changed since the last amendment
// under the same version is refused, naming the file and both digests; with the version
// bumped the amendment records the change. A spec written before digests were recorded
// takes the change and records the digest from then on.
TEST(SpecAmend, RefusesContractChangeWithoutVersionBump) {
  Tree t;
  t.bundle("F-A", P, "2026-11-20T10:00:00Z");
  ASSERT_EQ(t.amend().outcome, ph::AmendOutcome::kAmended);
  const std::string before = ph::read_file_bytes(t.spec());
  std::string edited(kContract);
  edited.replace(edited.find("prediction: always"), 18, "prediction: usually");
  write_text(t.root / "contracts/amend-v1.yaml", edited);
  t.bundle("F-A", P, "2026-11-21T10:00:00Z", P, "d2");  // fresh under the edited file
  auto same_version = t.amend();
  EXPECT_EQ(same_version.outcome, ph::AmendOutcome::kRefused);
  EXPECT_NE(same_version.message.find("contracts/amend-v1.yaml (C-AMEND) is still v1.0.0 but "
                                      "its file changed since amendment 1"),
            std::string::npos)
      << same_version.message;
  EXPECT_NE(same_version.message.find("bump metadata.version"), std::string::npos);
  EXPECT_EQ(ph::read_file_bytes(t.spec()), before);

  edited.replace(edited.find("version: 1.0.0"), 14, "version: 1.1.0");
  write_text(t.root / "contracts/amend-v1.yaml", edited);
  t.version = "1.1.0";
  t.bundle("F-A", P, "2026-11-22T10:00:00Z", P, "d3");
  auto bumped = t.amend();
  ASSERT_EQ(bumped.outcome, ph::AmendOutcome::kAmended) << bumped.message;
  EXPECT_NE(ph::read_file_bytes(t.spec()).find("contract v1.0.0 -> v1.1.0"), std::string::npos);

  // A state without digests (written before they were recorded) cannot tell: it records.
  std::string doc = ph::read_file_bytes(t.spec());
  for (size_t at; (at = doc.find("\"contract_sha256\"")) != std::string::npos;) {
    doc.erase(at, doc.find('\n', at) - at + 1);
  }
  write_text(t.spec(), doc);
  edited.replace(edited.find("prediction: usually"), 19, "prediction: mostly");
  write_text(t.root / "contracts/amend-v1.yaml", edited);
  t.bundle("F-A", P, "2026-11-23T10:00:00Z", P, "d4");
  auto legacy = t.amend();
  ASSERT_EQ(legacy.outcome, ph::AmendOutcome::kAmended) << legacy.message;
  EXPECT_NE(
      ph::read_file_bytes(t.spec()).find("\"contract_sha256\": \"" + ph::sha256_hex(edited) + "\""),
      std::string::npos);
}

TEST(SpecAmend, KeepsProseOutsideGeneratedBlocks) {
  Tree t;
  t.bundle("F-A", P, "2026-11-20T10:00:00Z");
  ASSERT_EQ(t.amend().outcome, ph::AmendOutcome::kAmended);
  std::string doc = ph::read_file_bytes(t.spec());
  const std::string note = "\nA note a person wrote about GQA.\n";
  doc.insert(doc.find("## Contracts"), note);
  write_text(t.spec(), doc);
  t.bundle("F-A", F, "2026-11-21T10:00:00Z");
  ASSERT_EQ(t.amend().outcome, ph::AmendOutcome::kAmended);
  EXPECT_NE(ph::read_file_bytes(t.spec()).find(note), std::string::npos);
}

// Property: amend is a function of its inputs. Two trees with the same contract and the
// same random evidence history, amended step by step, give byte-identical specs, whatever
// the directory they live in.
RC_GTEST_PROP(SpecAmend, DeterministicSameInputsSameBytes, ()) {
  const int steps = *rc::gen::inRange(1, 5);
  Tree a, b;
  for (int s = 0; s < steps; ++s) {
    std::string when = "2026-11-2" + std::to_string(s) + "T10:00:00Z";
    for (const char* id : {"F-A", "F-B", "F-C"}) {
      if (*rc::gen::inRange(0, 4) == 0) continue;  // not run this step (retired or new)
      auto earned = static_cast<ph::Status>(*rc::gen::inRange(1, 5));
      a.bundle(id, earned, when, ph::Status::BLOCKER_FIXTURE_ABSENT);
      b.bundle(id, earned, when, ph::Status::BLOCKER_FIXTURE_ABSENT);
    }
    auto pa = a.amend();
    auto pb = b.amend();
    RC_ASSERT(pa.outcome == pb.outcome);
    RC_ASSERT(pa.message == pb.message || pa.outcome != ph::AmendOutcome::kRefused);
  }
  if (fs::exists(a.spec()))
    RC_ASSERT(ph::read_file_bytes(a.spec()) == ph::read_file_bytes(b.spec()));
}

TEST(SpecAmend, CliPromotionThenNoOp) {
  Tree t;
  t.bundle("F-A", P, "2026-11-20T10:00:00Z");
  auto run = [&] {
    ph::ProcessOptions o;
    o.argv = {std::string(PV_BINARY_DIR) + "/bin/pv",
              "amend",
              "--spec",
              t.spec().string(),
              "--evidence",
              t.evidence().string(),
              "--root",
              t.root.string()};
    o.tail_bytes = 1 << 16;
    return ph::run_process(o);
  };
  ASSERT_EQ(run().exit_code, 0);
  t.bundle("F-A", F, "2026-11-21T10:00:00Z");
  auto promo = run();
  EXPECT_EQ(promo.exit_code, 0) << promo.stderr_text;
  EXPECT_NE(promo.stdout_text.find("amendment 2: v1.0.0 -> v1.1.0 (minor)"), std::string::npos)
      << promo.stdout_text;
  auto noop = run();
  EXPECT_EQ(noop.exit_code, 0);
  EXPECT_NE(noop.stdout_text.find("untouched: nothing changed since amendment 2 (v1.1.0)"),
            std::string::npos)
      << noop.stdout_text;
  t.bundle("F-B", P, "2026-11-22T10:00:00Z", F);
  auto refused = run();
  EXPECT_EQ(refused.exit_code, 1) << "an overclaim is refused with exit 1";
}

}  // namespace
