#include "harness/ladder.h"

#include <array>

namespace pv::harness {
namespace {
constexpr std::array<std::string_view, 5> kNames = {
    "FALSIFIED", "BLOCKER_FIXTURE_ABSENT", "PARTIAL_ALGORITHM_LEVEL", "FUNCTIONAL", "DISCHARGED"};
}

std::string_view status_name(Status s) { return kNames[static_cast<int>(s)]; }

std::optional<Status> status_from_name(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<Status>(i);
  }
  return std::nullopt;
}

bool is_test_level(Status s) {
  return s == Status::PARTIAL_ALGORITHM_LEVEL || s == Status::FUNCTIONAL || s == Status::DISCHARGED;
}

}  // namespace pv::harness
