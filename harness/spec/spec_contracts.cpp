#include "harness/spec/spec_contracts.h"

#include "harness/contract.h"

namespace pv::harness {
namespace fs = std::filesystem;

std::map<std::string, ContractInfo> read_contract_infos(const std::vector<std::string>& files,
                                                        const fs::path& root) {
  std::map<std::string, ContractInfo> out;
  for (const auto& file : files) {
    const fs::path p = fs::path(file).is_absolute() ? fs::path(file) : root / file;
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) continue;
    const Contract k = load_contract_lenient(p.string());
    if (k.id.empty()) continue;
    ContractInfo c;
    c.file = file;
    c.id = k.id;
    c.version = k.version;
    c.description = k.description;
    for (const auto& f : k.falsifiers) {
      ContractFalsifierInfo fi{f.id, f.rule, f.prediction, {}};
      for (const auto& l : f.levels) fi.levels.emplace_back(status_name(l.level));
      c.falsifiers.push_back(std::move(fi));
    }
    out[c.id] = std::move(c);
  }
  return out;
}

}  // namespace pv::harness
