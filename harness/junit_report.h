// JUnit XML as pytest (--junitxml), ctest (--output-junit) and cargo-nextest write it,
// read with pugixml: one entry per <testcase>.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace pv::harness {

struct JunitCase {
  std::string classname, name;
  std::string result;   // "passed", "failed" (failure or error), "skipped"
  std::string message;  // the failure's / skip's message attribute (or its text)
  std::string text;     // the failure's / skip's body
  double time_s = -1;
  std::map<std::string, std::string> properties;  // <properties><property name value/>
  std::string system_out;
};

// Every testcase in the document; `error` says why the text is not a JUnit report.
std::vector<JunitCase> parse_junit(const std::string& xml, std::string* error);

}  // namespace pv::harness
