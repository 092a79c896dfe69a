// A markdown summary of an evidence index for a CI step summary ($GITHUB_STEP_SUMMARY and
// the like): the tally, then one table per contract (falsifier, earned, claimed, capped
// by), flaky/stale/overclaimed falsifiers called out first. Deterministic.
#pragma once

#include <string>

#include "harness/evidence_merge.h"
#include "harness/spec/spec_state.h"

namespace pv::harness {

// `spec` may be null; when given, the summary says which spec version the evidence is
// measured against and whether an amendment is waiting.
std::string markdown_summary(const MergedIndex& index, const SpecState* spec);

}  // namespace pv::harness

namespace pv::harness {

// Reads every bundle under `evidence_dir` (this run's and any committed ones, merged as in
// `pv evidence merge`) and writes the summary to `file` atomically.
void write_markdown_summary(const std::string& evidence_dir, const std::string& source_root,
                            const std::string& file);

}  // namespace pv::harness
