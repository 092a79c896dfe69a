#include "falsifiers/support/harness_cli.h"

#include <fstream>

#include "harness/testing/pv_test.h"

namespace pv::testing::harness_cli {

using nlohmann::json;

std::string testdata(const std::string& name) {
  return pv::testing::source_dir() + "/harness/testdata/" + name;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in, nullptr, false);
}

json bundle(const std::string& evidence, const std::string& machine, const std::string& contract,
            const std::string& falsifier) {
  return read_json(evidence + "/runs/" + machine + "/" + contract + "/" + falsifier + ".json");
}

}  // namespace pv::testing::harness_cli
