// The status ladder (DESIGN.md): statuses are earned from evidence, never asserted.
//   FALSIFIED < BLOCKER_FIXTURE_ABSENT < PARTIAL_ALGORITHM_LEVEL < FUNCTIONAL < DISCHARGED
#pragma once

#include <optional>
#include <string_view>

namespace pv::harness {

enum class Status : int {
  FALSIFIED = 0,
  BLOCKER_FIXTURE_ABSENT = 1,
  PARTIAL_ALGORITHM_LEVEL = 2,
  FUNCTIONAL = 3,
  DISCHARGED = 4,
};

std::string_view status_name(Status s);
std::optional<Status> status_from_name(std::string_view name);
// A level a falsifier may declare tests for (the three rungs above the blocker).
bool is_test_level(Status s);

}  // namespace pv::harness
