// pv evidence merge|gc|verify|keygen: evidence across runs and machines (see
// harness/evidence_merge.h, harness/evidence_gc.h and harness/signing.h).
#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "harness/evidence_gc.h"
#include "harness/evidence_merge.h"
#include "harness/file_bytes.h"
#include "harness/fingerprint.h"
#include "harness/input_limits.h"
#include "harness/signing.h"
#include "tools/command.h"

namespace {
namespace fs = std::filesystem;
using namespace pv::harness;

struct EvidenceOptions {
  std::vector<fs::path> dirs;
  fs::path out;
  fs::path root = ".";
  bool json = false;
  fs::path gc_dir = "evidence";
  bool dry_run = false;
  fs::path verify_dir = "evidence";
  fs::path allowed_signers;  // "" -> <root>/evidence/allowed_signers
  std::string key_name = "pv-signer";
};

int run_merge(const EvidenceOptions& o) {
  std::vector<BundleRecord> all;
  for (const auto& d : o.dirs) {
    auto bs = read_bundles(d, o.root);
    std::cout << fmt::format("{}: {} bundles\n", d.string(), bs.size());
    all.insert(all.end(), std::make_move_iterator(bs.begin()), std::make_move_iterator(bs.end()));
  }
  MergedIndex idx = merge_bundles(all, contract_staleness_check(o.root));
  if (!o.out.empty()) {
    int copied = copy_bundles_into(all, o.out);
    write_file_atomic(o.out / "index.json", merged_index_json(idx));
    std::cout << fmt::format("wrote {} ({} bundles copied)\n", (o.out / "index.json").string(),
                             copied);
  }
  if (o.json) {
    std::cout << merged_index_json(idx);
  } else {
    std::cout << format_merged_table(idx);
  }
  int flaky = 0;
  for (const auto& m : idx.falsifiers) flaky += m.flaky ? 1 : 0;
  return flaky > 0 ? 1 : 0;
}

// Bundles validate credits from: runs/<machine>/<contract>/<falsifier>.json of a machine
// other than this one. Each is checked as the grader checks it; other bundles are listed.
int run_verify(const EvidenceOptions& o) {
  const fs::path allowed_file =
      o.allowed_signers.empty() ? o.root / "evidence" / "allowed_signers" : o.allowed_signers;
  const AllowedSigners allowed = load_allowed_signers(allowed_file.string());
  const std::string local = collect_environment(o.root.string()).machine_id;
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(o.verify_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == ".json" &&
        !it->path().filename().string().starts_with(".")) {
      files.push_back(it->path());
    }
  }
  if (ec) throw std::runtime_error(o.verify_dir.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  int trusted = 0, refused = 0, refused_credited = 0, listed = 0, own_unsigned = 0;
  for (const auto& f : files) {
    const std::string bytes = read_regular_file(f, kMaxEvidenceFileBytes);
    if (!parse_bundle(f.string(), bytes)) continue;  // index.json and other JSON
    ++listed;
    // runs/<machine>/<contract>/<falsifier>.json relative to the directory verified.
    const fs::path rel = fs::relative(f, o.verify_dir, ec);
    std::vector<std::string> parts;
    for (const auto& p : rel) parts.push_back(p.string());
    std::string machine_dir;
    if (parts.size() == 4 && parts[0] == "runs") machine_dir = parts[1];
    const bool credited_kind = !machine_dir.empty() && machine_dir != local;
    const SignatureCheck c =
        check_bundle_signature(nlohmann::json::parse(bytes, nullptr, false), allowed, machine_dir);
    if (c.trusted()) {
      ++trusted;
      std::cout << fmt::format("{}: ok: {}\n", f.string(), c.reason);
    } else if (credited_kind) {
      ++refused;
      ++refused_credited;
      std::cout << fmt::format("{}: REFUSED: {}\n", f.string(), c.reason);
    } else if (machine_dir == local && c.state == SignatureState::kUnsigned) {
      ++own_unsigned;  // this machine's own results: they need no signature here
    } else {
      ++refused;
      std::cout << fmt::format("{}: not credited: {}\n", f.string(), c.reason);
    }
  }
  std::cout << fmt::format(
      "pv evidence verify: {}: {} bundles, {} verified, {} refused ({} of them from other "
      "machines, which validate would credit from), {} unsigned of this machine ({}); allowed "
      "signers {} ({} keys)\n",
      o.verify_dir.string(), listed, trusted, refused, refused_credited, own_unsigned, local,
      allowed_file.string(), allowed.signers.size());
  return refused_credited > 0 ? 1 : 0;
}

int run_keygen(const EvidenceOptions& o) {
  const auto [key, pub] = generate_key_pair(o.out.string(), o.key_name);
  const SigningKey k = load_signing_key(key);
  std::cout << fmt::format(
      "wrote {} (private, mode 0600: keep it on the machine that signs) and {}\n"
      "key id {}\n"
      "to let it vouch, add to evidence/allowed_signers:\n  {} ed25519 {} "
      "machine=<its machine id>\n",
      key, pub, key_id(k.pub), k.name, base64_encode(k.pub.data(), k.pub.size()));
  return 0;
}

int run_gc(const EvidenceOptions& o) {
  GcResult r = gc_evidence(o.gc_dir, o.root, o.dry_run, o.allowed_signers);
  for (const auto& line : r.removed)
    std::cout << (o.dry_run ? "would remove " : "removed ") << line << "\n";
  std::cout << fmt::format("pv evidence gc: {}: kept {} ({} signature-verified), {} {}\n",
                           o.gc_dir.string(), r.kept, r.kept_verified,
                           o.dry_run ? "would remove" : "removed", r.removed.size());
  return 0;
}

std::function<int()> setup_evidence(CLI::App& sub) {
  auto o = std::make_shared<EvidenceOptions>();
  sub.require_subcommand(1);
  CLI::App* merge =
      sub.add_subcommand("merge", "Merge bundles of several runs/machines into one index");
  merge->add_option("dirs", o->dirs, "evidence directories (one per run or machine)")
      ->required()
      ->check(CLI::ExistingDirectory);
  merge->add_option("--out", o->out, "write the merged bundles and index.json here");
  merge->add_option("--root", o->root, "source root the bundles' contract paths are relative to");
  merge->add_flag("--json", o->json, "print the merged index as JSON");
  merge->footer("Exit codes: 0 merged; 1 merged but some falsifier is flaky; 2 bad input.");
  CLI::App* gc = sub.add_subcommand(
      "gc", "Drop stale bundles; keep one fresh bundle per falsifier and machine, verified first");
  gc->add_option("--evidence-dir", o->gc_dir, "evidence directory (default evidence)");
  gc->add_option("--root", o->root, "source root the bundles' contract paths are relative to");
  gc->add_flag("--dry-run", o->dry_run, "only say what would be removed");
  gc->add_option("--allowed-signers", o->allowed_signers,
                 "allowed-signers file (default <root>/evidence/allowed_signers)")
      ->check(CLI::ExistingFile);
  gc->footer(
      "Per (contract, falsifier, machine) the newest bundle whose signature verifies against "
      "the allowed signers is kept, and every bundle that does not verify is removed beside "
      "it; a group with no verified bundle keeps its newest (harness/evidence_gc.h). Exit "
      "codes: 0 done; 2 bad input.");
  CLI::App* verify = sub.add_subcommand(
      "verify", "Check each bundle's signature against the allowed signers, as validate does");
  verify->add_option("dir", o->verify_dir, "evidence directory (default evidence)")
      ->check(CLI::ExistingDirectory);
  verify->add_option("--root", o->root, "source root (default .)");
  verify
      ->add_option("--allowed-signers", o->allowed_signers,
                   "allowed-signers file (default <root>/evidence/allowed_signers)")
      ->check(CLI::ExistingFile);
  verify->footer(
      "Exit codes: 0 every bundle of another machine under runs/ verifies; 1 some such bundle "
      "is unsigned, edited, signed by an unknown, revoked or out-of-scope key, or lies under "
      "another machine's id; 2 bad input.");
  CLI::App* keygen = sub.add_subcommand("keygen", "Write a new ed25519 key pair for signing");
  keygen->add_option("--out", o->out, "directory for <name>.key (0600) and <name>.pub")->required();
  keygen->add_option("--name", o->key_name, "signer name (default pv-signer)");
  keygen->footer("Refuses to overwrite an existing key. Exit codes: 0 written; 2 error.");
  return [o, merge, gc, verify, keygen]() {
    if (merge->parsed()) return run_merge(*o);
    if (gc->parsed()) return run_gc(*o);
    if (verify->parsed()) return run_verify(*o);
    if (keygen->parsed()) return run_keygen(*o);
    return 2;
  };
}

}  // namespace

PV_COMMAND("evidence",
           "Merge evidence of several runs/machines; garbage-collect stale bundles; sign and "
           "verify",
           setup_evidence);
