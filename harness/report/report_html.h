// `pv report`: one self-contained HTML page (inline CSS and SVG, no network, no external
// fonts or scripts) showing the ladder per contract with what caps each falsifier, the
// coverage tally over spec versions (from the spec's amendment history), and, for each
// `pv bisect --json` output given (schema pv-bisect-v1), per-stage cosine and NMSE curves
// across layers with the first divergence marked. The bytes depend only on the inputs.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/evidence_merge.h"
#include "harness/spec/spec_contracts.h"
#include "harness/spec/spec_state.h"

namespace pv::harness {

struct ReportInputs {
  const SpecState* spec = nullptr;  // null: no spec history section
  std::string spec_name;            // e.g. "spec/pv-spec.md"
  const MergedIndex* index = nullptr;
  std::map<std::string, ContractInfo> contracts;
  std::vector<std::pair<std::string, nlohmann::json>> bisects;  // (name, pv-bisect-v1 JSON)
};

std::string render_report_html(const ReportInputs& in);

// The bisect section alone (an <section> element), exposed for tests.
std::string render_bisect_section(const std::string& name, const nlohmann::json& bisect);

}  // namespace pv::harness
