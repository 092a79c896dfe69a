// A problem found in a contract, located at file:line:column (1-based) with a plain
// sentence. Every check reports into a list instead of throwing, so one run names
// every problem, not just the first.
#pragma once

#include <string>
#include <vector>

namespace pv::harness {

struct SourcePos {
  std::string file;
  int line = 0;  // 1-based; 0 when the problem concerns the file as a whole
  int col = 0;
};

struct Diagnostic {
  SourcePos pos;
  std::string message;
  // "file:line:col: error: message" (the form compilers use, so editors can jump to it).
  std::string str() const;
};

using Diagnostics = std::vector<Diagnostic>;

}  // namespace pv::harness
