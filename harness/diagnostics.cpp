#include "harness/diagnostics.h"

#include <fmt/format.h>

namespace pv::harness {

std::string Diagnostic::str() const {
  if (pos.line <= 0) return fmt::format("{}: error: {}", pos.file, message);
  return fmt::format("{}:{}:{}: error: {}", pos.file, pos.line, pos.col, message);
}

}  // namespace pv::harness
