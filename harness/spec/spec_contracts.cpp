#include "harness/spec/spec_contracts.h"

#include <yaml-cpp/yaml.h>

namespace pv::harness {
namespace fs = std::filesystem;

namespace {
std::string scalar(const YAML::Node& n, const char* key) {
  if (!n.IsMap() || !n[key] || !n[key].IsScalar()) return {};
  return n[key].as<std::string>();
}
}  // namespace

std::map<std::string, ContractInfo> read_contract_infos(const std::vector<std::string>& files,
                                                        const fs::path& root) {
  std::map<std::string, ContractInfo> out;
  for (const auto& file : files) {
    fs::path p = fs::path(file).is_absolute() ? fs::path(file) : root / file;
    YAML::Node doc;
    try {
      if (!fs::is_regular_file(p)) continue;
      doc = YAML::LoadFile(p.string());
    } catch (const YAML::Exception&) {
      continue;
    }
    if (!doc.IsMap() || !doc["metadata"]) continue;
    ContractInfo c;
    c.file = file;
    c.id = scalar(doc["metadata"], "id");
    c.version = scalar(doc["metadata"], "version");
    c.description = scalar(doc["metadata"], "description");
    if (doc["falsifiers"] && doc["falsifiers"].IsSequence()) {
      for (const auto& f : doc["falsifiers"]) {
        ContractFalsifierInfo fi{scalar(f, "id"), scalar(f, "rule"), scalar(f, "prediction"), {}};
        if (f.IsMap() && f["levels"] && f["levels"].IsMap()) {
          for (const auto& l : f["levels"]) fi.levels.push_back(l.first.as<std::string>(""));
        }
        c.falsifiers.push_back(std::move(fi));
      }
    }
    if (!c.id.empty()) out[c.id] = std::move(c);
  }
  return out;
}

}  // namespace pv::harness
