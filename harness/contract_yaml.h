// Private to harness/contract*.cpp (not part of contract.h's API): reading a contract's
// YAML. contract_yaml.cpp turns the text into one document (bytes, events, syntax, duplicate
// keys) and gives typed access to its nodes, every problem at file:line:col; contract.cpp
// checks that document against the schema v1 (which keys and values a contract may have).
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "harness/diagnostics.h"

namespace pv::harness::contract_yaml {

// Appends problems to the caller's diagnostics, each at the position of the node it is
// about, and counts them.
class Checker {
 public:
  Checker(std::string file, Diagnostics& diags) : file_(std::move(file)), diags_(diags) {}

  SourcePos pos(const YAML::Node& n) const;
  void error(const YAML::Node& n, std::string msg) { error(pos(n), std::move(msg)); }
  void error(SourcePos p, std::string msg);
  int errors() const { return errors_; }
  const std::string& file() const { return file_; }

  // Every map in the document, recursively: yaml-cpp keeps duplicate keys in the node
  // (lookups silently return the first), so they are found by walking the pairs.
  void find_duplicate_keys(const YAML::Node& n);

  // Checks that `n` is a map whose keys are all allowed and that the required ones are
  // present. Returns false when `n` is not a map at all.
  bool check_map(const YAML::Node& n, std::string_view what,
                 const std::vector<std::string>& allowed, const std::vector<std::string>& required);

  // A non-empty scalar string, or "" (with an error when required or of the wrong type).
  std::string str(const YAML::Node& map, const std::string& key, std::string_view what,
                  bool required);

  std::vector<std::string> str_list(const YAML::Node& map, const std::string& key,
                                    std::string_view what,
                                    std::vector<SourcePos>* positions = nullptr);

  int positive_int(const YAML::Node& map, const std::string& key, std::string_view what, int dflt);

  std::map<std::string, std::string> scalar_map(const YAML::Node& map, const std::string& key,
                                                std::string_view what);

 private:
  std::string file_;
  Diagnostics& diags_;
  int errors_ = 0;
};

// The one YAML document of `text`, or nothing when there is none to check (the reason
// reported through `c`): NUL bytes, invalid UTF-8, aliases, nesting too deep and a second
// document are refused before yaml-cpp builds nodes, then syntax errors and an empty file.
// Duplicate keys anywhere in the document are reported and the document still returned,
// so the schema checks report what else is wrong with it.
std::optional<YAML::Node> read_document(Checker& c, const std::string& path,
                                        const std::string& text);

}  // namespace pv::harness::contract_yaml
