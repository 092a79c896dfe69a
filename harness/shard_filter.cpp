#include <memory>
#include <set>

#include "harness/contract.h"
#include "harness/shard.h"

namespace pv::harness {

std::function<bool(const std::string&)> shard_filter(const std::vector<std::string>& contract_files,
                                                     ShardSpec s) {
  std::vector<std::string> ids;
  for (const auto& file : contract_files) {
    for (const auto& f : load_contract_lenient(file).falsifiers) ids.push_back(f.id);
  }
  auto mine = shard_select(ids, s);
  auto chosen = std::make_shared<std::set<std::string>>(mine.begin(), mine.end());
  return [chosen](const std::string& id) { return chosen->count(id) > 0; };
}

}  // namespace pv::harness
