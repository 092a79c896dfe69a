#include "harness/evidence_gc.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "harness/evidence_merge.h"

namespace pv::harness {
namespace fs = std::filesystem;

GcResult gc_evidence(const fs::path& dir, const fs::path& root, bool dry_run) {
  GcResult r;
  auto bundles = read_bundles(dir, root);
  auto stale = contract_staleness_check(root);
  std::map<std::tuple<std::string, std::string, std::string>, const BundleRecord*> keep;
  std::vector<std::pair<const BundleRecord*, std::string>> drop;
  for (const auto& b : bundles) {
    if (std::string why = stale(b); !why.empty()) {
      drop.emplace_back(&b, "stale: " + why);
      continue;
    }
    auto key = std::make_tuple(b.contract_id, b.falsifier_id, b.machine);
    auto [it, inserted] = keep.emplace(key, &b);
    if (inserted) continue;
    const BundleRecord* cur = it->second;
    bool b_newer = std::tie(b.generated_at, b.path) > std::tie(cur->generated_at, cur->path);
    const BundleRecord* loser = b_newer ? cur : &b;
    if (b_newer) it->second = &b;
    drop.emplace_back(loser, "superseded by a newer run on machine " + b.machine);
  }
  for (const auto& [b, why] : drop) {
    if (!dry_run) fs::remove(b->path);
    r.removed.push_back(b->path.string() + " (" + why + ")");
  }
  std::sort(r.removed.begin(), r.removed.end());
  r.kept = static_cast<int>(keep.size());
  return r;
}

}  // namespace pv::harness
