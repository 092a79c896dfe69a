// `pv evidence gc`: evidence accumulates one bundle per falsifier run; gc removes stale
// bundles (see contract_staleness_check) and, among the fresh ones, keeps only the newest
// per (contract, falsifier, machine), so every machine's latest verdict survives.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace pv::harness {

struct GcResult {
  int kept = 0;
  std::vector<std::string> removed;  // "path (why)", sorted
};

GcResult gc_evidence(const std::filesystem::path& dir, const std::filesystem::path& root,
                     bool dry_run);

}  // namespace pv::harness
