// Falsifiers for contracts/hardening-v1.yaml, the evidence tools around signed evidence:
// `pv evidence gc` decides what to keep by signature, not by a date anyone can write;
// `pv amend` reads no contract file outside the source root a bundle names; and one
// signing key never counts as more than one machine for `machines: N`, in `pv evidence
// merge` and in `pv validate`. Keys are made in the test with the real libsodium; every
// CLI behaviour is driven through the real pv binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "falsifiers/support/pv_cli.h"
#include "falsifiers/support/scratch_files.h"
#include "harness/evidence_merge.h"
#include "harness/sha256.h"
#include "harness/signing.h"
#include "harness/testing/pv_test.h"

namespace ph = pv::harness;
namespace fs = std::filesystem;
using nlohmann::json;
using pv::testing::make_temp_dir;
using pv::testing::read_text;
using pv::testing::run_pv;
using pv::testing::write_text;

namespace {

// A contract whose falsifier needs DISCHARGED on two machines.
const char* kContract = R"(metadata:
  id: C-TOOLS
  version: 1.0.0
  description: evidence tools fixture
falsifiers:
  - id: F-ONE
    rule: r
    prediction: p
    if_fails: f
    status: PARTIAL_ALGORITHM_LEVEL
    levels:
      PARTIAL_ALGORITHM_LEVEL: { tests: ["pv_falsifiers:T.Partial"] }
      FUNCTIONAL: { tests: ["pv_falsifiers:T.Functional"] }
      DISCHARGED: { tests: ["pv_falsifiers:T.Discharged"], runs: 2, machines: 2 }
)";

struct Key {
  ph::SigningKey key;
  std::string pub_b64;
};

Key make_key(const fs::path& dir, const std::string& name) {
  Key k;
  k.key = ph::load_signing_key(ph::generate_key_pair(dir.string(), name).first);
  k.pub_b64 = ph::base64_encode(k.key.pub.data(), k.key.pub.size());
  return k;
}

// A bundle of F-ONE in validate's shape that passed every level's test on `machine`
// (DISCHARGED twice) and is capped at FUNCTIONAL because its own grader saw one machine.
json tools_bundle(const std::string& machine, const std::string& generated_at) {
  json tests = json::array();
  for (const auto& [level, name, runs] : std::vector<std::tuple<std::string, std::string, int>>{
           {"PARTIAL_ALGORITHM_LEVEL", "T.Partial", 1},
           {"FUNCTIONAL", "T.Functional", 1},
           {"DISCHARGED", "T.Discharged", 2}}) {
    tests.push_back({{"binary", "pv_falsifiers"},
                     {"name", name},
                     {"level", level},
                     {"result", "passed"},
                     {"runs", runs},
                     {"credited_from", nullptr}});
  }
  return {{"schema", "pv-evidence-v1"},
          {"contract",
           {{"id", "C-TOOLS"},
            {"version", "1.0.0"},
            {"file", "contracts/tools-v1.yaml"},
            {"sha256", ph::sha256_hex(kContract)}}},
          {"falsifier",
           {{"id", "F-ONE"},
            {"claimed", "PARTIAL_ALGORITHM_LEVEL"},
            {"earned", "FUNCTIONAL"},
            {"capped_by", "machines: 1 of 2 at DISCHARGED"}}},
          {"tests", tests},
          {"environment", {{"machine_id", machine}, {"host", "host-" + machine}}},
          {"generated_at", generated_at}};
}

// A source root holding the contract.
struct ToolsRoot {
  fs::path root;
  explicit ToolsRoot(const std::string& tag) {
    root = make_temp_dir("evtools-" + tag);
    write_text(root / "contracts/tools-v1.yaml", kContract);
  }
};

json signed_by(json b, const Key& k) {
  // Signed as validate signs: over the bundle as it reads back from the written file.
  b = json::parse(b.dump(2));
  ph::sign_bundle(b, k.key);
  return b;
}

void write_bundle(const fs::path& file, const json& b) { write_text(file, b.dump(2)); }

}  // namespace

// pv evidence gc over one machine's bundles of one falsifier: the bundle the machine's
// allowed key signed survives every newer-looking bundle that does not verify (unsigned,
// edited after signing, signed by an unlisted key, signed by the revoked key), each removed
// with its reason; an older verified bundle goes as superseded by the newer verified one; a
// machine no key vouches for keeps its newest bundle as before.
TEST(Hardening, GcKeepsTheVerifiedBundleOverNewerUnverifiedOnes) {
  ToolsRoot t("gc");
  const fs::path keys = make_temp_dir("evtools-gc-keys");
  const Key gpu = make_key(keys, "gpu-h200");
  const Key stranger = make_key(keys, "stranger");
  const Key old = make_key(keys, "old-a100");
  // Scoped as the repository's real GPU key is: its contracts, any machine id.
  write_text(t.root / "evidence/allowed_signers",
             "gpu-h200 ed25519 " + gpu.pub_b64 + " contract=C-TOOLS\n@revoked old-a100 ed25519 " +
                 old.pub_b64 + " contract=C-TOOLS  # key lost\n");
  const fs::path ev = t.root / "evidence";
  const fs::path genuine = ev / "runs/gpubox/C-TOOLS/F-ONE.json";
  const json good = signed_by(tools_bundle("gpubox", "2026-11-30T07:00:00Z"), gpu);
  write_bundle(genuine, good);
  // Copies pv evidence merge would make (out/bundles/<machine>/...), all claiming gpubox.
  const fs::path copies = ev / "bundles/gpubox";
  write_bundle(copies / "0-older-signed.json",
               signed_by(tools_bundle("gpubox", "2026-11-29T07:00:00Z"), gpu));
  write_bundle(copies / "1-unsigned.json", tools_bundle("gpubox", "2026-12-01T00:00:00Z"));
  json edited = good;
  edited["generated_at"] = "2026-12-02T00:00:00Z";
  edited["falsifier"]["earned"] = "DISCHARGED";
  write_bundle(copies / "2-edited.json", edited);
  write_bundle(copies / "3-stranger.json",
               signed_by(tools_bundle("gpubox", "2026-12-03T00:00:00Z"), stranger));
  write_bundle(copies / "4-revoked.json",
               signed_by(tools_bundle("gpubox", "2026-12-04T00:00:00Z"), old));
  // A machine no key vouches for: its newest bundle stays.
  write_bundle(ev / "runs/ci/C-TOOLS/F-ONE.json", tools_bundle("ci", "2026-11-30T08:00:00Z"));
  write_bundle(ev / "bundles/ci/old.json", tools_bundle("ci", "2026-11-30T06:00:00Z"));

  auto dry = run_pv(
      {"evidence", "gc", "--evidence-dir", ev.string(), "--root", t.root.string(), "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.stdout_text << dry.stderr_text;
  EXPECT_TRUE(fs::exists(copies / "1-unsigned.json")) << "--dry-run removed a file";

  auto r = run_pv({"evidence", "gc", "--evidence-dir", ev.string(), "--root", t.root.string()});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  const std::string& out = r.stdout_text;
  EXPECT_TRUE(fs::exists(genuine)) << "gc deleted the verified bundle\n" << out;
  if (fs::exists(genuine)) {
    EXPECT_EQ(json::parse(read_text(genuine)), good) << "the verified bundle changed";
  }
  EXPECT_TRUE(fs::exists(ev / "runs/ci/C-TOOLS/F-ONE.json")) << out;
  const std::vector<std::pair<std::string, std::string>> gone = {
      {"0-older-signed.json", "superseded by a newer verified run on machine gpubox"},
      {"1-unsigned.json", "not verified (unsigned"},
      {"2-edited.json", "not verified (signature does not verify"},
      {"3-stranger.json",
       "does not list); the verified run of machine gpubox is kept: " + genuine.string()},
      {"4-revoked.json", "revoked at " + (ev / "allowed_signers").string() + ":2"}};
  for (const auto& [file, why] : gone) {
    EXPECT_FALSE(fs::exists(copies / file)) << file << " kept\n" << out;
    EXPECT_NE(out.find("removed " + (copies / file).string() + " ("), std::string::npos) << out;
    EXPECT_NE(out.find(why), std::string::npos) << file << ": no '" << why << "' in\n" << out;
  }
  EXPECT_FALSE(fs::exists(ev / "bundles/ci/old.json")) << out;
  EXPECT_NE(out.find("kept 2 (1 signature-verified), removed 6"), std::string::npos) << out;

  // What gc kept is what validate would credit: pv evidence verify passes every bundle of
  // another machine under runs/ except ci's own unsigned one, which it names.
  auto v = run_pv({"evidence", "verify", ev.string(), "--root", t.root.string()},
                  {{"PV_MACHINE_ID", "ci"}});
  EXPECT_EQ(v.exit_code, 0) << v.stdout_text << v.stderr_text;
  EXPECT_NE(v.stdout_text.find("gpubox/C-TOOLS/F-ONE.json: ok: signed by gpu-h200"),
            std::string::npos)
      << v.stdout_text;
  int unverified_removed = 0;
  for (size_t at = out.find("not verified ("); at != std::string::npos;
       at = out.find("not verified (", at + 1)) {
    ++unverified_removed;
  }
  EXPECT_EQ(unverified_removed, 4) << out;
  pv::testing::record_metric("gc_unverified_removed", unverified_removed);
}

// pv amend reads the contract file each bundle names (its hash, its falsifiers' prose into
// the spec). A bundle naming one outside the source root (absolute, climbing out with ..,
// or through a link) is refused with exit 2 naming the bundle and /contract/file, and the
// outside file's text reaches no spec; the same tree without that bundle amends.
TEST(Hardening, AmendRefusesContractFilesOutsideTheRoot) {
  const fs::path base = make_temp_dir("evtools-amend");
  const fs::path root = base / "repo";
  const std::string secret = "SECRET-OUTSIDE-THE-REPO-5c1e";
  std::string outside_text = kContract;
  outside_text.replace(outside_text.find("evidence tools fixture"), 22, secret);
  outside_text.replace(outside_text.find("C-TOOLS"), 7, "C-OUT");
  write_text(base / "outside.yaml", outside_text);
  write_text(root / "contracts/tools-v1.yaml", kContract);
  fs::create_symlink(base / "outside.yaml", root / "contracts/link.yaml");
  const fs::path spec = root / "spec/pv-spec.md";
  int n = 0;
  for (const std::string& file :
       {(base / "outside.yaml").string(), std::string("../outside.yaml"),
        std::string("contracts/../../outside.yaml"), std::string("contracts/link.yaml")}) {
    SCOPED_TRACE(file);
    const fs::path ev = base / ("ev" + std::to_string(n++));
    const json inside = tools_bundle("m1", "2026-11-30T07:00:00Z");
    write_bundle(ev / "runs/m1/C-TOOLS/F-ONE.json", inside);
    json b = inside;
    b["contract"]["id"] = "C-OUT";
    b["contract"]["file"] = file;
    b["contract"]["sha256"] = ph::sha256_hex(outside_text);  // fresh, were it read
    const fs::path hostile = ev / "runs/m1/C-OUT/F-ONE.json";
    write_bundle(hostile, b);
    const std::vector<std::string> args = {"amend",     "--spec", spec.string(), "--evidence",
                                           ev.string(), "--root", root.string()};
    auto r = run_pv(args);
    EXPECT_EQ(r.exit_code, 2) << r.stdout_text << r.stderr_text;
    EXPECT_NE(r.stderr_text.find(hostile.string() + ": /contract/file '" + file + "'"),
              std::string::npos)
        << r.stderr_text;
    EXPECT_FALSE(fs::exists(spec)) << "a spec was written";
    const std::string written = read_text(spec);
    EXPECT_EQ(written.find(secret), std::string::npos) << "outside text in the spec:\n" << written;
    EXPECT_EQ((r.stdout_text + r.stderr_text).find(secret), std::string::npos);
    // Control: without the hostile bundle the tree amends, so the refusal was that bundle's.
    fs::remove(hostile);
    r = run_pv(args);
    EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
    EXPECT_NE(read_text(spec).find("evidence tools fixture"), std::string::npos);
    EXPECT_EQ(read_text(spec).find(secret), std::string::npos);
    fs::remove(spec);
  }
}

// machines: 2 over merged evidence. One key signing F-ONE's bundle under two machine ids
// (a scope such as contract=..., or machine=*, allows it) is one machine: merge reports
// machines 1, stays FUNCTIONAL and prints why; two keys on two machines earn DISCHARGED.
TEST(Hardening, OneKeyIsOneMachineInMerge) {
  ToolsRoot t("merge");
  const fs::path keys = make_temp_dir("evtools-merge-keys");
  const Key a = make_key(keys, "box-a");
  const Key b = make_key(keys, "box-b");
  const fs::path one = t.root / "one-key", two = t.root / "two-keys";
  for (const std::string m : {"m1", "m2"}) {
    write_bundle(one / "runs" / m / "C-TOOLS/F-ONE.json",
                 signed_by(tools_bundle(m, "2026-11-30T07:00:00Z"), a));
    write_bundle(two / "runs" / m / "C-TOOLS/F-ONE.json",
                 signed_by(tools_bundle(m, "2026-11-30T07:00:00Z"), m == "m1" ? a : b));
  }
  auto merged = [&](const fs::path& dir) {
    return ph::merge_bundles(ph::read_bundles(dir, t.root), ph::contract_staleness_check(t.root));
  };
  const auto same = merged(one);
  ASSERT_EQ(same.falsifiers.size(), 1u);
  EXPECT_EQ(same.falsifiers[0].machines, 1);
  EXPECT_EQ(same.falsifiers[0].earned, ph::Status::FUNCTIONAL);
  EXPECT_NE(same.falsifiers[0].capped_by.find("machines: 1 of 2"), std::string::npos)
      << same.falsifiers[0].capped_by;
  const auto diff = merged(two);
  ASSERT_EQ(diff.falsifiers.size(), 1u);
  EXPECT_EQ(diff.falsifiers[0].machines, 2);
  EXPECT_EQ(diff.falsifiers[0].earned, ph::Status::DISCHARGED) << diff.falsifiers[0].capped_by;

  // The real pv evidence merge prints the reason.
  auto r = run_pv({"evidence", "merge", one.string(), "--root", t.root.string()});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stdout_text.find("machines: 1 of 2 at DISCHARGED over merged runs (machine ids m1, "
                               "m2 are signed by one key " +
                               ph::key_id(a.key.pub) + ")"),
            std::string::npos)
      << r.stdout_text;
  r = run_pv({"evidence", "merge", two.string(), "--root", t.root.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stdout_text.find("\"earned\": \"DISCHARGED\""), std::string::npos) << r.stdout_text;
  pv::testing::record_metric("machines_one_key_two_ids", same.falsifiers[0].machines);
}

namespace {

// A repository whose falsifier claims FUNCTIONAL through a command test that passes only
// where SIG_HAS_GPU=1 (elsewhere it skips as fixture-absent) and needs two machines.
struct TwoMachineRepo {
  fs::path root, contract;
  explicit TwoMachineRepo(const std::string& tag) {
    root = make_temp_dir("evtools-repo-" + tag);
    contract = root / "contracts/two-v1.yaml";
    write_text(root / "gpu_test.sh",
               "#!/bin/sh\n[ \"$SIG_HAS_GPU\" = 1 ] && exit 0\n"
               "printf '{\"skip_reason\":\"fixture-absent: gpu\"}' > \"$PV_RESULT_FILE\"\n"
               "exit 77\n");
    fs::permissions(root / "gpu_test.sh", fs::perms::owner_all);
    write_text(contract,
               "metadata:\n  id: TWO-DEMO\n  version: 1.0.0\n  description: two machines\n"
               "falsifiers:\n  - id: TWO-DEMO-001\n    rule: r\n    prediction: p\n"
               "    if_fails: f\n    status: FUNCTIONAL\n    inputs: [gpu_test.sh]\n"
               "    levels:\n      FUNCTIONAL:\n        machines: 2\n        tests:\n"
               "          - { runner: command, id: gpu, argv: [./gpu_test.sh] }\n");
  }
  ph::ProcessResult validate(const std::string& machine, const std::string& key_file) const {
    std::vector<std::string> args = {"validate", "--source-root", root.string(), "--bin-dir",
                                     pv::testing::bin_dir()};
    if (!key_file.empty()) {
      args.push_back("--sign-key");
      args.push_back(key_file);
    }
    args.push_back(contract.string());
    return run_pv(args, {{"PV_MACHINE_ID", machine},
                         {"SIG_HAS_GPU", key_file.empty() ? "0" : "1"},
                         {"PV_SIGN_KEY", ""}});
  }
};

}  // namespace

// machines: 2 in pv validate, from committed evidence: bundles signed by one allowed key
// under two machine ids credit one machine (exit 1, "machines: 1 of 2" naming both ids and
// the key); signed by two allowed keys they credit two.
TEST(Hardening, OneKeyIsOneMachineInValidate) {
  const fs::path keys = make_temp_dir("evtools-validate-keys");
  const auto [ka, pa] = ph::generate_key_pair(keys.string(), "box-a");
  const auto [kb, pb] = ph::generate_key_pair(keys.string(), "box-b");
  const ph::SigningKey a = ph::load_signing_key(ka), b = ph::load_signing_key(kb);
  const std::string allowed =
      "box-a ed25519 " + ph::base64_encode(a.pub.data(), a.pub.size()) + " contract=TWO-DEMO\n" +
      "box-b ed25519 " + ph::base64_encode(b.pub.data(), b.pub.size()) + " contract=TWO-DEMO\n";

  TwoMachineRepo one("one-key");
  write_text(one.root / "evidence/allowed_signers", allowed);
  for (const std::string m : {"m1", "m2"}) {
    const auto r = one.validate(m, ka);
    ASSERT_NE(r.exit_code, 2) << r.stdout_text << r.stderr_text;
  }
  auto r = one.validate("ci", "");
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stdout_text.find("machines: 1 of 2 at FUNCTIONAL (machine ids m1, m2 are signed "
                               "by one key " +
                               ph::key_id(a.pub) + ")"),
            std::string::npos)
      << r.stdout_text;

  TwoMachineRepo two("two-keys");
  write_text(two.root / "evidence/allowed_signers", allowed);
  ASSERT_NE(two.validate("m1", ka).exit_code, 2);
  ASSERT_NE(two.validate("m2", kb).exit_code, 2);
  r = two.validate("ci", "");
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.stdout_text.find("machines: 1 of 2"), std::string::npos) << r.stdout_text;
}
