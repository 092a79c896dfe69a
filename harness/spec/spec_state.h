// The spec's machine-readable state: its semver version, the amendment count, the evidence
// index it was last amended from (digest, date, tally) and the status it records for every
// falsifier, plus the tally history over versions. It lives in spec/pv-spec.md inside a
// fenced JSON block between `<!-- pv:begin state -->` and `<!-- pv:end state -->`.
#pragma once

#include <string>
#include <vector>

#include "harness/evidence_merge.h"
#include "harness/ladder.h"

namespace pv::harness {

struct Semver {
  int major = 0, minor = 0, patch = 0;
  std::string str() const;  // "v1.2.3"
  auto operator<=>(const Semver&) const = default;
};
// Accepts "1.2.3" or "v1.2.3"; throws std::invalid_argument otherwise.
Semver parse_semver(const std::string& text);

struct SpecFalsifier {
  std::string contract, contract_version, id;
  // sha256 of the contract file at that version ("" in states written before it was
  // recorded): a later amendment refuses a changed file that kept its version.
  std::string contract_sha256;
  Status status = Status::FALSIFIED;  // the earned status recorded by the last amendment
  Status claimed = Status::FALSIFIED;
  std::string capped_by;
  bool flaky = false;
  int runs = 0, machines = 0;
  std::string bundle, bundle_sha256;  // the bundle that earned it
  std::vector<std::string> inputs_digests;
};

struct SpecHistoryEntry {
  int amendment = 0;
  std::string version;  // "v1.2.3"
  std::string bump;     // major | minor | patch | initial
  std::string date;     // from the evidence, YYYY-MM-DD
  Tally tally;
};

struct SpecState {
  Semver version;
  int amendment = 0;
  std::string evidence_digest;  // MergedIndex::digest amended from ("" before the first)
  std::string evidence_date;    // latest generated_at of that evidence
  int evidence_bundles = 0;
  Tally tally;
  std::vector<SpecFalsifier> falsifiers;  // sorted by (contract, id)
  std::vector<SpecHistoryEntry> history;  // oldest first
};

std::string spec_state_json(const SpecState& s);
// Throws std::runtime_error naming `where` (file name) and the field on bad input.
SpecState parse_spec_state(const std::string& json_text, const std::string& where);

}  // namespace pv::harness
