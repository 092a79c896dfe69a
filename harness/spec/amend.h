// `pv amend`: turn an evidence delta into a spec amendment. Compares the merged evidence
// index with the one the spec records and, when they differ, writes the next version with
// a numbered amendment: version step, status flips (with the bundle that earned each), new
// and retired falsifiers, tally before -> after per level. Deterministic: the output is a
// function of the spec text, the bundles and the contract files only (dates come from the
// evidence's generated_at, never from the clock). Bump rules: see spec_template().
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "harness/evidence_merge.h"
#include "harness/spec/spec_contracts.h"
#include "harness/spec/spec_state.h"

namespace pv::harness {

enum class AmendOutcome { kAmended, kUnchanged, kRefused };

struct StatusFlip {
  std::string contract, id;
  Status from, to;
  std::string bundle, bundle_sha256;
};

struct AmendPlan {
  AmendOutcome outcome = AmendOutcome::kUnchanged;
  std::string message;  // what happened, for people (refusal reasons one per line)
  std::string bump;     // initial | major | minor | patch
  SpecState before, after;
  std::vector<StatusFlip> flips;
  std::vector<SpecFalsifier> added, retired;
  std::string new_doc;  // the whole new spec text when outcome == kAmended
};

// Pure planning step: no I/O. `display_path` maps a bundle path to how the spec names it.
AmendPlan plan_amendment(const std::string& old_doc, const std::string& where,
                         const MergedIndex& index,
                         const std::map<std::string, ContractInfo>& contracts,
                         const std::function<std::string(const std::string&)>& display_path);

struct AmendOptions {
  std::filesystem::path spec_file = "spec/pv-spec.md";
  std::filesystem::path evidence_dir = "evidence";
  std::filesystem::path root = ".";  // resolves contract files named by the bundles
};

// Reads the spec (a missing file starts from spec_template()) and the evidence, plans, and
// on kAmended writes the spec atomically. Throws std::runtime_error on unreadable input,
// and, before reading any contract, on a bundle whose contract.file is absolute, climbs out
// with '..' or resolves through a link outside `root` (naming the bundle and the field).
AmendPlan amend_spec(const AmendOptions& options);

}  // namespace pv::harness
