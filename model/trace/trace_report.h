// Rendering of trace comparisons and bisections: aligned tables for people, JSON for
// machines. Shared by `pv diff`, `pv bisect` and the falsifiers that record them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "model/trace/bisect.h"
#include "model/trace/trace_compare.h"

namespace pv::model {

// Non-finite doubles become JSON strings ("inf", "-inf", "nan"): JSON has no such numbers.
nlohmann::json stage_diff_json(const StageDiff& d);
nlohmann::json trace_diff_json(const TraceDiff& d, const std::string& a, const std::string& b);
nlohmann::json bisect_json(const TraceDiff& d, const BisectResult& r, const BisectCriterion& c,
                           const std::string& ref, const std::string& cand);

std::string diff_table(const TraceDiff& d);
std::string stage_diff_line(const std::string& label, const StageDiff& d);
std::string bisect_table(const BisectResult& r);
std::string bisect_summary(const BisectResult& r, const BisectCriterion& c);

}  // namespace pv::model
