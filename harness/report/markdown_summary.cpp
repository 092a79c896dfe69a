#include "harness/report/markdown_summary.h"

#include <fmt/format.h>

#include <set>

#include "harness/file_bytes.h"
#include "harness/spec/spec_doc.h"

namespace pv::harness {

std::string markdown_summary(const MergedIndex& index, const SpecState* spec) {
  std::string out = "## pv: earned statuses\n\n";
  out += fmt::format("**{} falsifiers**: {}.\n\n", index.total.total(), tally_line(index.total));
  if (spec != nullptr) {
    bool waiting = spec->evidence_digest != index.digest;
    out += fmt::format("Spec {} (amendment {}){}.\n\n", spec->version.str(), spec->amendment,
                       waiting ? ": this evidence differs from the one recorded, run `pv amend`"
                               : ": up to date with this evidence");
  }
  std::vector<std::string> problems;
  for (const auto& m : index.falsifiers) {
    if (m.stale) {
      problems.push_back(
          fmt::format("- :warning: `{}` STALE: {}", m.falsifier_id, md_escape(m.stale_reason)));
    } else if (m.earned == Status::FALSIFIED) {
      problems.push_back(
          fmt::format("- :x: `{}` FALSIFIED: {}", m.falsifier_id, md_escape(m.capped_by)));
    } else if (m.flaky) {
      problems.push_back(
          fmt::format("- :warning: `{}` flaky: {}", m.falsifier_id, md_escape(m.capped_by)));
    }
    if (!m.stale && m.claimed > m.earned) {
      problems.push_back(fmt::format("- :x: `{}` overclaim: claims {}, earned {}", m.falsifier_id,
                                     status_name(m.claimed), status_name(m.earned)));
    }
  }
  if (!problems.empty()) {
    out += "### Needs attention\n\n";
    for (const auto& p : problems) out += p + "\n";
    out += "\n";
  }
  std::set<std::string> contracts;
  for (const auto& m : index.falsifiers) contracts.insert(m.contract_id);
  for (const auto& cid : contracts) {
    auto it = index.per_contract.find(cid);
    out += fmt::format("### {}\n\n{}\n\n", cid,
                       it == index.per_contract.end() ? "" : tally_line(it->second));
    out +=
        "| Falsifier | Earned | Claimed | Capped by | Runs / machines |\n|---|---|---|---|---|\n";
    for (const auto& m : index.falsifiers) {
      if (m.contract_id != cid) continue;
      std::string cap = m.stale ? "stale: " + m.stale_reason : m.capped_by;
      out += fmt::format("| `{}` | {}{} | {} | {} | {} / {} |\n", m.falsifier_id,
                         status_name(m.earned), m.flaky ? " (flaky)" : "", status_name(m.claimed),
                         cap.empty() ? "-" : md_escape(cap), m.runs, m.machines);
    }
    out += "\n";
  }
  return out;
}

}  // namespace pv::harness

namespace pv::harness {

void write_markdown_summary(const std::string& evidence_dir, const std::string& source_root,
                            const std::string& file) {
  auto bundles = read_bundles(evidence_dir, source_root);
  MergedIndex idx = merge_bundles(bundles, contract_staleness_check(source_root));
  write_file_atomic(file, markdown_summary(idx, nullptr));
}

}  // namespace pv::harness
