// Presenting a validate result: the human table per contract with the coverage tally,
// machine-readable JSON, and JUnit XML for CI systems.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "harness/validate.h"

namespace pv::harness {

void print_human(std::ostream& out, const ValidateResult& r, bool schema_only);
nlohmann::json to_json(const ValidateResult& r, bool schema_only);
std::string to_junit(const ValidateResult& r);
// "n falsifiers — DISCHARGED a · FUNCTIONAL b · ..." over the verdicts of this run.
std::string tally_line(const ValidateResult& r);

}  // namespace pv::harness
