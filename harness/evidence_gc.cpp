#include "harness/evidence_gc.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "harness/evidence_merge.h"
#include "harness/input_limits.h"
#include "harness/signing.h"

namespace pv::harness {
namespace fs = std::filesystem;

namespace {

struct Candidate {
  const BundleRecord* b;
  SignatureCheck sig;
};

// The machine directory of dir/runs/<m>/<contract>/<falsifier>.json, else "": where a
// bundle lies is part of what validate checks.
std::string machine_dir_of(const fs::path& file, const fs::path& dir) {
  std::error_code ec;
  const fs::path rel = fs::relative(file, dir, ec);
  if (ec) return "";
  std::vector<std::string> parts;
  for (const auto& p : rel) parts.push_back(p.string());
  return parts.size() == 4 && parts[0] == "runs" ? parts[1] : "";
}

bool newer(const BundleRecord& a, const BundleRecord& b) {
  return std::tie(a.generated_at, a.path) > std::tie(b.generated_at, b.path);
}

}  // namespace

GcResult gc_evidence(const fs::path& dir, const fs::path& root, bool dry_run,
                     const fs::path& allowed_signers) {
  GcResult r;
  const AllowedSigners allowed = load_allowed_signers(
      (allowed_signers.empty() ? root / "evidence" / "allowed_signers" : allowed_signers).string());
  auto bundles = read_bundles(dir, root);
  auto stale = contract_staleness_check(root);
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<Candidate>> groups;
  std::vector<std::pair<const BundleRecord*, std::string>> drop;
  for (const auto& b : bundles) {
    if (std::string why = stale(b); !why.empty()) {
      drop.emplace_back(&b, "stale: " + why);
      continue;
    }
    const SignatureCheck sig = check_bundle_signature(
        nlohmann::json::parse(read_regular_file(b.path, kMaxEvidenceFileBytes), nullptr, false),
        allowed, machine_dir_of(b.path, dir));
    groups[std::make_tuple(b.contract_id, b.falsifier_id, b.machine)].push_back({&b, sig});
  }
  for (auto& [key, cands] : groups) {
    const Candidate* keep = nullptr;
    for (const auto& c : cands) {
      const bool better = keep == nullptr || (c.sig.trusted() && !keep->sig.trusted()) ||
                          (c.sig.trusted() == keep->sig.trusted() && newer(*c.b, *keep->b));
      if (better) keep = &c;
    }
    ++r.kept;
    if (keep->sig.trusted()) ++r.kept_verified;
    const std::string& machine = std::get<2>(key);
    for (const auto& c : cands) {
      if (&c == keep) continue;
      std::string why;
      if (!keep->sig.trusted()) {
        why = "superseded by a newer run on machine " + machine + ": " + keep->b->path.string();
      } else if (c.sig.trusted()) {
        why = "superseded by a newer verified run on machine " + machine + ": " +
              keep->b->path.string();
      } else {
        why = "not verified (" + c.sig.reason + "); the verified run of machine " + machine +
              " is kept: " + keep->b->path.string();
      }
      drop.emplace_back(c.b, why);
    }
  }
  for (const auto& [b, why] : drop) {
    if (!dry_run) fs::remove(b->path);
    r.removed.push_back(b->path.string() + " (" + why + ")");
  }
  std::sort(r.removed.begin(), r.removed.end());
  return r;
}

}  // namespace pv::harness
