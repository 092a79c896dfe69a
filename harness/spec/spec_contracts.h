// What each contract claims, for the spec's prose: metadata (id, version, description) and
// each falsifier's rule and prediction, read from the contract files the evidence names.
// Read through the contract loader (harness/contract.h) with its diagnostics ignored:
// reporting a contract's problems is pv validate's job; here an unreadable contract just
// leaves its description empty.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace pv::harness {

struct ContractFalsifierInfo {
  std::string id, rule, prediction;
  std::vector<std::string> levels;  // declared ladder levels, ascending
};

struct ContractInfo {
  std::string id, version, file, description;
  std::vector<ContractFalsifierInfo> falsifiers;
};

// Keyed by contract id. `files` are contract paths relative to `root` (or absolute).
std::map<std::string, ContractInfo> read_contract_infos(const std::vector<std::string>& files,
                                                        const std::filesystem::path& root);

}  // namespace pv::harness
