// Falsifiers for contracts/hardening-v1.yaml, security side: evidence nobody can forge
// (ed25519 signatures through libsodium, the allowed-signers file, crediting only what an
// allowed signer vouched for), and the escapes a hostile repository or bundle tried: git
// running the repository's fsmonitor or filter commands, `pv evidence merge` writing
// outside --out, `pv report` embedding a file outside the source root. Every key is made in
// the test with the real libsodium; every CLI test drives the real pv binary.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "falsifiers/support/pv_cli.h"
#include "falsifiers/support/scratch_files.h"
#include "harness/process.h"
#include "harness/signing.h"
#include "harness/testing/pv_test.h"

namespace ph = pv::harness;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using pv::testing::bin_dir;
using pv::testing::read_text;
using pv::testing::run_pv;

ph::ProcessResult run_cmd(std::vector<std::string> argv, const std::string& cwd = "") {
  ph::ProcessOptions po;
  po.argv = std::move(argv);
  po.search_path = true;
  po.cwd = cwd;
  po.timeout = std::chrono::seconds(60);
  po.tail_bytes = 1 << 20;
  return ph::run_process(po);
}

// A bundle shaped like the ones validate writes for a CUDA falsifier.
json gpu_bundle(const std::string& machine) {
  return {{"schema", "pv-evidence-v1"},
          {"contract",
           {{"id", "C-KERNEL-PARITY"},
            {"version", "1.4.0"},
            {"file", "contracts/kernel-parity-v1.yaml"},
            {"sha256", std::string(64, 'a')}}},
          {"falsifier",
           {{"id", "FALSIFY-KP-010"},
            {"claimed", "PARTIAL_ALGORITHM_LEVEL"},
            {"earned", "PARTIAL_ALGORITHM_LEVEL"},
            {"capped_by", nullptr},
            {"credited_from", json::array()},
            {"notes", json::array()}}},
          {"tests",
           {{{"binary", "pv_falsifiers"},
             {"name", "KernelParity.CudaMatchesCpu"},
             {"level", "PARTIAL_ALGORITHM_LEVEL"},
             {"result", "passed"},
             {"skip_reason", nullptr},
             {"duration_ms", 812.5},
             {"metrics", {{"max_abs_err", 1.1920928955078125e-07}, {"cosine", 0.9999999}}},
             {"seed", 18446744073709551557ull},
             {"runs", 2},
             {"executed", true}}}},
          {"environment",
           {{"git_commit", "565f065"},
            {"git_dirty", false},
            {"inputs_digest", std::string(64, 'b')},
            {"inputs", {"kernels/**", "falsifiers/kernel_parity*"}},
            {"gpu", "NVIDIA H200"},
            {"host", "gpu-box \xc3\xa9t\xc3\xa9"},
            {"machine_id", machine}}},
          {"artifacts", json::array()},
          {"generated_at", "2026-11-30T07:00:00Z"}};
}

struct Keys {
  fs::path dir;
  ph::SigningKey gpu, other;
  std::string gpu_pub_b64, other_pub_b64;
  explicit Keys(const std::string& tag) {
    dir = pv::testing::make_temp_dir("sig-keys-" + tag);
    gpu = ph::load_signing_key(ph::generate_key_pair(dir.string(), "gpu-h200").first);
    other = ph::load_signing_key(ph::generate_key_pair(dir.string(), "someone").first);
    gpu_pub_b64 = ph::base64_encode(gpu.pub.data(), gpu.pub.size());
    other_pub_b64 = ph::base64_encode(other.pub.data(), other.pub.size());
  }
};

ph::AllowedSigners allowed_from(const fs::path& dir, const std::string& text) {
  const fs::path f = dir / "allowed_signers";
  pv::testing::write_text(f, text);
  return ph::load_allowed_signers(f.string());
}

// As the bundle reaches a reader: serialized the way validate writes it, read back.
json written_and_read(const json& j) { return json::parse(j.dump(2)); }

// Every leaf of `j` outside /signature, as a JSON pointer.
void leaves(const json& j, const std::string& at, std::vector<std::string>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (at.empty() && it.key() == "signature") continue;
      leaves(*it, at + "/" + it.key(), out);
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) leaves(j[i], at + "/" + std::to_string(i), out);
  } else {
    out.push_back(at);
  }
}

json edited(const json& v) {
  if (v.is_string()) return v.get<std::string>() + "0";
  if (v.is_boolean()) return !v.get<bool>();
  if (v.is_number_unsigned()) return v.get<uint64_t>() ^ 1u;
  if (v.is_number_integer()) return v.get<int64_t>() + 1;
  if (v.is_number_float()) return std::nextafter(v.get<double>(), 1e300);
  return "x";  // null
}

}  // namespace

// A signed bundle verifies after being written and read back; the key files are what the
// docs say (private 0600, refusing to overwrite).
TEST(Hardening, SignedBundleVerifiesAfterWriteAndRead) {
  Keys k("roundtrip");
  struct stat st {};
  ASSERT_EQ(::stat((k.dir / "gpu-h200.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THROW(ph::generate_key_pair(k.dir.string(), "gpu-h200"), std::runtime_error);
  EXPECT_EQ(read_text(k.dir / "gpu-h200.pub"), "gpu-h200 ed25519 " + k.gpu_pub_b64 + "\n");

  const auto allowed =
      allowed_from(k.dir, "# machines whose evidence counts\ngpu-h200 ed25519 " + k.gpu_pub_b64 +
                              " machine=0404dcf8e947,contract=C-KERNEL-PARITY  # the H200\n");
  ASSERT_EQ(allowed.signers.size(), 1u);
  json b = gpu_bundle("0404dcf8e947");
  ph::sign_bundle(b, k.gpu);
  const json back = written_and_read(b);
  const auto c = ph::check_bundle_signature(back, allowed, "0404dcf8e947");
  EXPECT_TRUE(c.trusted()) << c.reason;
  EXPECT_EQ(c.signer, "gpu-h200");
  EXPECT_EQ(back["signature"]["key_id"], ph::key_id(k.gpu.pub));
  // The canonical form is documented: compact dump with the signature removed.
  json unsigned_copy = back;
  unsigned_copy.erase("signature");
  EXPECT_EQ(ph::canonical_bundle_bytes(back), unsigned_copy.dump());
  // A bundle signed by a key read back from its file verifies the same way.
  const ph::SigningKey again = ph::load_signing_key((k.dir / "gpu-h200.key").string());
  json b2 = gpu_bundle("0404dcf8e947");
  ph::sign_bundle(b2, again);
  EXPECT_TRUE(ph::check_bundle_signature(written_and_read(b2), allowed, "").trusted());
}

// Any change to the signed content — every leaf, a renamed key, an added or removed
// member — makes the signature fail.
TEST(Hardening, EditedSignedBundleEarnsNothing) {
  Keys k("edited");
  const auto allowed = allowed_from(k.dir, "gpu-h200 ed25519 " + k.gpu_pub_b64 + " machine=*\n");
  json b = gpu_bundle("0404dcf8e947");
  ph::sign_bundle(b, k.gpu);
  b = written_and_read(b);
  std::vector<std::string> ptrs;
  leaves(b, "", ptrs);
  int refused = 0;
  for (const auto& p : ptrs) {
    json e = b;
    const json::json_pointer jp(p);
    e[jp] = edited(e[jp]);
    const auto c = ph::check_bundle_signature(written_and_read(e), allowed, "");
    EXPECT_EQ(c.state, ph::SignatureState::kBadSignature) << p << ": " << c.reason;
    refused += c.state == ph::SignatureState::kBadSignature;
  }
  json added = b;
  added["environment"]["gpu_count"] = 8;
  EXPECT_EQ(ph::check_bundle_signature(added, allowed, "").state,
            ph::SignatureState::kBadSignature);
  json removed = b;
  removed["tests"][0].erase("metrics");
  EXPECT_EQ(ph::check_bundle_signature(removed, allowed, "").state,
            ph::SignatureState::kBadSignature);
  json renamed = b;
  renamed["falsifier"]["earned_"] = renamed["falsifier"]["earned"];
  renamed["falsifier"].erase("earned");
  EXPECT_EQ(ph::check_bundle_signature(renamed, allowed, "").state,
            ph::SignatureState::kBadSignature);
  // A signature moved onto another bundle does not fit it.
  json other = gpu_bundle("0404dcf8e947");
  other["falsifier"]["id"] = "FALSIFY-KP-011";
  other["signature"] = b["signature"];
  EXPECT_EQ(ph::check_bundle_signature(other, allowed, "").state,
            ph::SignatureState::kBadSignature);
  pv::testing::record_metric("signed_leaf_edits_refused", refused);
  pv::testing::record_metric("signed_leaf_edits", static_cast<double>(ptrs.size()));
  EXPECT_GE(ptrs.size(), 25u);
}

// The forgery of the issue: a GPU bundle copied under a new machine id with a fresh
// inputs_digest pasted in. Re-signing needs an allowed key; a plain copy under another
// machine's directory is not a second machine.
TEST(Hardening, CopiedBundleUnderNewMachineIdIsRefused) {
  Keys k("forged");
  const auto allowed = allowed_from(k.dir, "gpu-h200 ed25519 " + k.gpu_pub_b64 + " machine=*\n");
  json b = gpu_bundle("0404dcf8e947");
  ph::sign_bundle(b, k.gpu);
  b = written_and_read(b);
  json forged = b;
  forged["environment"]["machine_id"] = "deadbeef0001";
  forged["environment"]["inputs_digest"] = std::string(64, 'c');
  auto c = ph::check_bundle_signature(forged, allowed, "deadbeef0001");
  EXPECT_EQ(c.state, ph::SignatureState::kBadSignature) << c.reason;
  EXPECT_NE(c.reason.find("does not verify"), std::string::npos) << c.reason;
  // The forger re-signs with a key of their own: not listed.
  ph::sign_bundle(forged, k.other);
  c = ph::check_bundle_signature(written_and_read(forged), allowed, "deadbeef0001");
  EXPECT_EQ(c.state, ph::SignatureState::kUnknownSigner) << c.reason;
  // The forger copies the bytes unchanged into another machine's directory.
  c = ph::check_bundle_signature(b, allowed, "deadbeef0001");
  EXPECT_EQ(c.state, ph::SignatureState::kWrongPlace) << c.reason;
  EXPECT_NE(c.reason.find("runs/deadbeef0001"), std::string::npos) << c.reason;
}

// Unsigned, unknown, revoked, out-of-scope and malformed signatures each earn nothing and
// say why; a key revoked on any line stays revoked.
TEST(Hardening, OnlyAllowedUnrevokedInScopeSignersAreTrusted) {
  Keys k("signers");
  json b = gpu_bundle("0404dcf8e947");
  EXPECT_EQ(ph::check_bundle_signature(b, allowed_from(k.dir, ""), "").state,
            ph::SignatureState::kUnsigned);
  ph::sign_bundle(b, k.gpu);
  b = written_and_read(b);
  auto state = [&](const std::string& text) {
    const auto c = ph::check_bundle_signature(b, allowed_from(k.dir, text), "0404dcf8e947");
    EXPECT_FALSE(c.reason.empty());
    return c.state;
  };
  const std::string gpu = "gpu-h200 ed25519 " + k.gpu_pub_b64 + " ";
  EXPECT_EQ(state(gpu + "machine=0404dcf8e947\n"), ph::SignatureState::kTrusted);
  EXPECT_EQ(state("someone ed25519 " + k.other_pub_b64 + " machine=*\n"),
            ph::SignatureState::kUnknownSigner);
  EXPECT_EQ(state("@revoked " + gpu + "machine=*\n"), ph::SignatureState::kRevoked);
  EXPECT_EQ(state(gpu + "machine=*\n@revoked " + gpu + "machine=*  # key left the lab\n"),
            ph::SignatureState::kRevoked);
  EXPECT_EQ(state(gpu + "machine=ffff*\n"), ph::SignatureState::kOutOfScope);
  EXPECT_EQ(state(gpu + "machine=*,contract=C-CPU-VS-GPU-OUTPUT-PARITY\n"),
            ph::SignatureState::kOutOfScope);
  EXPECT_EQ(state(gpu + "contract=C-KERNEL-PARITY,falsifier=FALSIFY-KP-01?\n"),
            ph::SignatureState::kTrusted);
  EXPECT_EQ(state(gpu + "falsifier=FALSIFY-CG-*\n"), ph::SignatureState::kOutOfScope);
  // One in-scope line is enough; the out-of-scope one does not veto it.
  EXPECT_EQ(state(gpu + "machine=ffff*\n" + gpu + "machine=0404*\n"), ph::SignatureState::kTrusted);
  json bad = b;
  bad["signature"]["value"] = "AAAA";
  EXPECT_EQ(ph::check_bundle_signature(bad, allowed_from(k.dir, gpu + "machine=*\n"), "").state,
            ph::SignatureState::kMalformed);
  bad["signature"] = "signed, trust me";
  EXPECT_EQ(ph::check_bundle_signature(bad, allowed_from(k.dir, gpu + "machine=*\n"), "").state,
            ph::SignatureState::kMalformed);

  // A malformed allowed-signers line is an error naming file:line:col.
  const fs::path f = k.dir / "allowed_signers";
  auto error_of = [&](const std::string& text) {
    pv::testing::write_text(f, text);
    try {
      ph::load_allowed_signers(f.string());
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(error_of("# ok\n" + gpu + "gpu=*\n").rfind(f.string() + ":2:", 0), 0u);
  EXPECT_NE(error_of("x ed25519 notbase64 machine=*\n").find(":1:11: public key"),
            std::string::npos);
  EXPECT_NE(error_of("x rsa " + k.gpu_pub_b64 + " machine=*\n").find(":1:3: key type 'rsa'"),
            std::string::npos);
  EXPECT_NE(error_of("@trusted " + gpu + "machine=*\n").find(":1:1: unknown marker"),
            std::string::npos);
  EXPECT_NE(error_of(gpu + "\n").find(":1:"), std::string::npos);
  // A private key others can read is refused.
  ASSERT_EQ(::chmod((k.dir / "gpu-h200.key").c_str(), 0644), 0);
  EXPECT_THROW(ph::load_signing_key((k.dir / "gpu-h200.key").string()), std::runtime_error);
}

namespace {

// A repository with one contract whose falsifier claims FUNCTIONAL through a command test
// that passes only where SIG_HAS_GPU=1 and otherwise skips as fixture-absent: elsewhere it
// earns FUNCTIONAL only from a committed bundle.
struct CreditRepo {
  fs::path root, contract, allowed;
  explicit CreditRepo(const std::string& tag) {
    root = pv::testing::make_temp_dir("sig-repo-" + tag);
    contract = root / "contracts" / "sig-demo-v1.yaml";
    allowed = root / "evidence" / "allowed_signers";
    pv::testing::write_text(root / "gpu_test.sh",
                            "#!/bin/sh\n[ \"$SIG_HAS_GPU\" = 1 ] && exit 0\n"
                            "printf '{\"skip_reason\":\"fixture-absent: gpu\"}' > "
                            "\"$PV_RESULT_FILE\"\nexit 77\n");
    fs::permissions(root / "gpu_test.sh", fs::perms::owner_all);
    pv::testing::write_text(
        contract,
        "metadata:\n  id: SIG-DEMO\n  version: 1.0.0\n  description: credit from signed "
        "evidence\nfalsifiers:\n  - id: SIG-DEMO-001\n    rule: r\n    prediction: p\n"
        "    if_fails: f\n    status: FUNCTIONAL\n    inputs: [gpu_test.sh]\n    levels:\n"
        "      FUNCTIONAL:\n        tests:\n"
        "          - { runner: command, id: gpu, argv: [./gpu_test.sh] }\n");
  }
  fs::path bundle(const std::string& machine) const {
    return root / "evidence" / "runs" / machine / "SIG-DEMO" / "SIG-DEMO-001.json";
  }
  ph::ProcessResult validate(const std::string& machine, bool gpu,
                             std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {"validate", "--source-root", root.string(), "--bin-dir",
                                     bin_dir()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(contract.string());
    return run_pv(
        args, {{"PV_MACHINE_ID", machine}, {"SIG_HAS_GPU", gpu ? "1" : "0"}, {"PV_SIGN_KEY", ""}});
  }
};

}  // namespace

// The real pv validate: a bundle signed by an allowed key earns CI its credit; the same
// bundle forged under a new machine id (or unsigned, or signed by an unknown key) earns
// nothing, and one line names the file and the reason.
TEST(Hardening, ValidateCreditsOnlySignedCommittedEvidence) {
  Keys k("cli");
  CreditRepo repo("credit");
  // The GPU machine runs it for real and signs its bundle.
  auto r = repo.validate("gpubox", true, {"--sign-key", (k.dir / "gpu-h200.key").string()});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  const json signed_bundle = json::parse(read_text(repo.bundle("gpubox")));
  ASSERT_TRUE(signed_bundle.contains("signature")) << signed_bundle.dump(2);
  const std::string gpu_line = "gpu-h200 ed25519 " + k.gpu_pub_b64 + " machine=gpubox\n";
  pv::testing::write_text(repo.allowed, gpu_line);

  // CI has no GPU: credited from the signed bundle.
  r = repo.validate("ci", false);
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stdout_text.find("earned from evidence/runs/gpubox/SIG-DEMO/SIG-DEMO-001.json"),
            std::string::npos)
      << r.stdout_text;

  // pv evidence verify agrees; so does it after pv evidence merge copied the bundle.
  auto v = run_pv(
      {"evidence", "verify", (repo.root / "evidence").string(), "--root", repo.root.string()},
      {{"PV_MACHINE_ID", "ci"}});
  EXPECT_EQ(v.exit_code, 0) << v.stdout_text << v.stderr_text;
  EXPECT_NE(v.stdout_text.find("gpubox/SIG-DEMO/SIG-DEMO-001.json: ok: signed by gpu-h200"),
            std::string::npos)
      << v.stdout_text;
  const fs::path merged = repo.root / "merged";
  auto m = run_pv({"evidence", "merge", (repo.root / "evidence" / "runs" / "gpubox").string(),
                   "--out", merged.string(), "--root", repo.root.string()});
  ASSERT_EQ(m.exit_code, 0) << m.stdout_text << m.stderr_text;
  int copies = 0;
  const auto allowed = ph::load_allowed_signers(repo.allowed.string());
  for (const auto& e : fs::recursive_directory_iterator(merged / "bundles")) {
    if (e.path().extension() != ".json") continue;
    ++copies;
    EXPECT_TRUE(ph::check_bundle_signature(json::parse(read_text(e.path())), allowed, "").trusted())
        << e.path();
  }
  EXPECT_EQ(copies, 1);

  // The forgery: the GPU bundle copied under a new machine id with a pasted inputs_digest.
  json forged = signed_bundle;
  forged["environment"]["machine_id"] = "forged01";
  forged["environment"]["inputs_digest"] = signed_bundle["environment"]["inputs_digest"];
  pv::testing::write_text(repo.bundle("forged01"), forged.dump(2));
  fs::remove(repo.bundle("gpubox"));
  r = repo.validate("ci", false);
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("OVERCLAIM"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("no credit from evidence/runs/forged01/SIG-DEMO/"
                               "SIG-DEMO-001.json: signature does not verify"),
            std::string::npos)
      << r.stdout_text;
  EXPECT_EQ(r.stdout_text.find("earned from"), std::string::npos) << r.stdout_text;
  v = run_pv(
      {"evidence", "verify", (repo.root / "evidence").string(), "--root", repo.root.string()},
      {{"PV_MACHINE_ID", "ci"}});
  EXPECT_EQ(v.exit_code, 1) << v.stdout_text;
  EXPECT_NE(v.stdout_text.find("forged01/SIG-DEMO/SIG-DEMO-001.json: REFUSED: signature does "
                               "not verify"),
            std::string::npos)
      << v.stdout_text;

  // The unchanged signed bytes under another machine's directory.
  pv::testing::write_text(repo.bundle("forged01"), signed_bundle.dump(2));
  r = repo.validate("ci", false);
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("lies under runs/forged01"), std::string::npos) << r.stdout_text;

  // Unsigned: the GPU machine ran without its key.
  fs::remove(repo.bundle("forged01"));
  r = repo.validate("gpubox", true);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  r = repo.validate("ci", false);
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("no credit from evidence/runs/gpubox/SIG-DEMO/"
                               "SIG-DEMO-001.json: unsigned"),
            std::string::npos)
      << r.stdout_text;

  // Signed by a key the repository does not list, then by a revoked one.
  r = repo.validate("gpubox", true, {"--sign-key", (k.dir / "someone.key").string()});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  r = repo.validate("ci", false);
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("which " + repo.allowed.string() + " does not list"),
            std::string::npos)
      << r.stdout_text;
  r = repo.validate("gpubox", true, {"--sign-key", (k.dir / "gpu-h200.key").string()});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  pv::testing::write_text(repo.allowed, "@revoked " + gpu_line);
  r = repo.validate("ci", false);
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("revoked at " + repo.allowed.string() + ":1"), std::string::npos)
      << r.stdout_text;
  // Out of scope.
  pv::testing::write_text(repo.allowed,
                          "gpu-h200 ed25519 " + k.gpu_pub_b64 + " machine=gpubox,contract=OTHER\n");
  r = repo.validate("ci", false);
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("does not cover machine gpubox, contract SIG-DEMO"),
            std::string::npos)
      << r.stdout_text;

  // A bad key file or allowed-signers file is a usage error naming it.
  r = repo.validate("gpubox", true, {"--sign-key", (k.dir / "gpu-h200.pub").string()});
  EXPECT_EQ(r.exit_code, 2) << r.stdout_text;
  EXPECT_NE(r.stderr_text.find("gpu-h200.pub"), std::string::npos) << r.stderr_text;
  pv::testing::write_text(repo.allowed, "gpu-h200 ed25519 AAAA machine=*\n");
  r = repo.validate("ci", false);
  EXPECT_EQ(r.exit_code, 2) << r.stdout_text;
  EXPECT_NE((r.stdout_text + r.stderr_text).find(repo.allowed.string() + ":1:"), std::string::npos)
      << r.stdout_text << r.stderr_text;
}

// pv evidence keygen writes a usable pair and never overwrites one.
TEST(Hardening, KeygenWritesPrivateKeyOnceAndMode0600) {
  const fs::path dir = pv::testing::make_temp_dir("sig-keygen") / "keys";
  auto r = run_pv({"evidence", "keygen", "--out", dir.string(), "--name", "lab-a100"});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  struct stat st {};
  ASSERT_EQ(::stat((dir / "lab-a100.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string before = read_text(dir / "lab-a100.key");
  const ph::SigningKey k = ph::load_signing_key((dir / "lab-a100.key").string());
  EXPECT_NE(r.stdout_text.find(ph::key_id(k.pub)), std::string::npos) << r.stdout_text;
  r = run_pv({"evidence", "keygen", "--out", dir.string(), "--name", "lab-a100"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.stderr_text.find("refusing to overwrite"), std::string::npos) << r.stderr_text;
  EXPECT_EQ(read_text(dir / "lab-a100.key"), before);
}

// A repository's own config names commands git would run (core.fsmonitor; a filter's
// clean command on a file whose stat data changed). pv validate asks git for the commit
// and dirtiness of that repository, and neither command may run.
TEST(Hardening, GitNeverRunsTheRepositorysCommands) {
  CreditRepo repo("git");
  const fs::path marker_fs = repo.root.parent_path() / (repo.root.filename().string() + ".fsmon");
  const fs::path marker_filter =
      repo.root.parent_path() / (repo.root.filename().string() + ".filter");
  const std::string root = repo.root.string();
  ASSERT_TRUE(run_cmd({"git", "init", "-q", root}).ok());
  pv::testing::write_text(repo.root / ".gitattributes", "*.sh filter=evil\n");
  for (auto args : std::vector<std::vector<std::string>>{
           {"config", "user.email", "t@example.invalid"},
           {"config", "user.name", "t"},
           {"add", "-A"},
           {"commit", "-q", "-m", "x"},
           {"config", "core.fsmonitor", "touch '" + marker_fs.string() + "'; false"},
           {"config", "filter.evil.clean", "touch '" + marker_filter.string() + "'; cat"},
       }) {
    args.insert(args.begin(), {"git", "-C", root});
    const auto r = run_cmd(args);
    ASSERT_TRUE(r.ok()) << r.stderr_text;
  }
  // Stat data changed, content not: git status hashes the file through the clean filter.
  auto touch_script = [&] {
    fs::last_write_time(repo.root / "gpu_test.sh",
                        fs::last_write_time(repo.root / "gpu_test.sh") + std::chrono::seconds(7));
  };
  // Control: the repository really is hostile to a plain `git status`.
  touch_script();
  run_cmd({"git", "-C", root, "status", "--porcelain"});
  ASSERT_TRUE(fs::exists(marker_fs)) << "core.fsmonitor did not run under plain git status";
  ASSERT_TRUE(fs::exists(marker_filter)) << "the clean filter did not run under plain git status";
  fs::remove(marker_fs);
  fs::remove(marker_filter);

  touch_script();
  const auto r = repo.validate("gitbox", true);
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_FALSE(fs::exists(marker_fs)) << "pv validate ran the repository's core.fsmonitor";
  EXPECT_FALSE(fs::exists(marker_filter)) << "pv validate ran the repository's clean filter";
  // The commit is still known.
  const json b = json::parse(read_text(repo.bundle("gitbox")));
  const auto head = run_cmd({"git", "-C", root, "rev-parse", "HEAD"});
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(b["environment"]["git_commit"].get<std::string>() + "\n", head.stdout_text);
}

// pv evidence merge --out refuses a bundle whose machine_id or fingerprint is not a plain
// name, naming the bundle and the field, and writes nothing outside --out.
TEST(Hardening, MergeNeverWritesOutsideOut) {
  const fs::path base = pv::testing::make_temp_dir("sig-merge");
  for (const auto& [field, value] : std::vector<std::pair<std::string, std::string>>{
           {"machine_id", "../../escaped"},
           {"fingerprint", "../../escaped"},
           {"machine_id", (base / "abs-escaped").string()},
           {"fingerprint", "a/../../../escaped"},
           {"machine_id", ".."}}) {
    SCOPED_TRACE(field + "=" + value);
    const fs::path in = base / ("in-" + std::to_string(std::hash<std::string>{}(field + value)));
    json b = gpu_bundle("0404dcf8e947");
    b["environment"].erase("machine_id");
    b["environment"][field] = value;
    const fs::path file = in / "runs" / "m" / "C-KERNEL-PARITY" / "FALSIFY-KP-010.json";
    pv::testing::write_text(file, b.dump(2));
    const fs::path out = base / "out" / "deep";
    const auto r =
        run_pv({"evidence", "merge", in.string(), "--out", out.string(), "--root", base.string()});
    EXPECT_EQ(r.exit_code, 2) << r.stdout_text << r.stderr_text;
    EXPECT_NE(r.stderr_text.find(file.string() + ": /environment/" + field + " is '" + value + "'"),
              std::string::npos)
        << r.stderr_text;
    EXPECT_FALSE(fs::exists(base / "escaped"));
    EXPECT_FALSE(fs::exists(base / "out" / "escaped"));
    EXPECT_FALSE(fs::exists(base / "abs-escaped"));
    EXPECT_FALSE(fs::exists(out / "bundles")) << "a bundle was copied before the refusal";
  }
}

// pv report embeds each contract's text; a bundle naming /abs/path or ../ as its contract
// file is skipped with a line naming the bundle and the field, and the page holds none of
// that file's text.
TEST(Hardening, ReportEmbedsNoFileOutsideTheRoot) {
  const fs::path base = pv::testing::make_temp_dir("sig-report");
  const fs::path root = base / "repo";
  const std::string secret = "SECRET-OUTSIDE-THE-REPO-7f3a";
  const std::string contract_text =
      "metadata:\n  id: C-KERNEL-PARITY\n  version: 1.4.0\n  description: " + secret +
      "\nfalsifiers:\n  - id: FALSIFY-KP-010\n    rule: " + secret +
      "\n    prediction: p\n    if_fails: f\n    status: PARTIAL_ALGORITHM_LEVEL\n    levels:\n"
      "      PARTIAL_ALGORITHM_LEVEL: { tests: [\"pv_falsifiers:A.B\"] }\n";
  pv::testing::write_text(base / "outside.yaml", contract_text);
  pv::testing::write_text(root / "contracts" / "inside.yaml",
                          "metadata:\n  id: C-INSIDE\n  version: 1.0.0\n  description: "
                          "INSIDE-TEXT\nfalsifiers: []\n");
  fs::create_symlink(base / "outside.yaml", root / "contracts" / "link.yaml");
  int n = 0;
  for (const std::string& file :
       {(base / "outside.yaml").string(), std::string("../outside.yaml"),
        std::string("contracts/../../outside.yaml"), std::string("contracts/link.yaml")}) {
    SCOPED_TRACE(file);
    json b = gpu_bundle("0404dcf8e947");
    b["contract"]["file"] = file;
    b["falsifier"]["id"] = "FALSIFY-KP-01" + std::to_string(n);
    const fs::path ev = base / ("ev" + std::to_string(n++));
    pv::testing::write_text(ev / "runs" / "m" / "b.json", b.dump(2));
    json in = gpu_bundle("0404dcf8e947");
    in["contract"] = {{"id", "C-INSIDE"},
                      {"version", "1.0.0"},
                      {"file", "contracts/inside.yaml"},
                      {"sha256", ""}};
    pv::testing::write_text(ev / "runs" / "m" / "in.json", in.dump(2));
    const fs::path out = base / ("report" + std::to_string(n));
    const auto r = run_pv({"report", "--out", out.string(), "--evidence", ev.string(), "--root",
                           root.string(), "--spec", (base / "none.md").string()});
    ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
    EXPECT_NE(r.stderr_text.find((ev / "runs" / "m" / "b.json").string() + ": /contract/file '" +
                                 file + "'"),
              std::string::npos)
        << r.stderr_text;
    const std::string page = read_text(out / "index.html");
    EXPECT_EQ(page.find(secret), std::string::npos) << "the outside file was embedded";
    EXPECT_NE(page.find("INSIDE-TEXT"), std::string::npos) << "the inside contract is missing";
  }
}
