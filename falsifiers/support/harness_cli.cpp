#include "falsifiers/support/harness_cli.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "harness/testing/pv_test.h"

namespace pv::testing::harness_cli {

using nlohmann::json;
namespace ph = pv::harness;

std::string bin_dir() { return std::string(PV_BINARY_DIR) + "/bin"; }
std::string testdata(const std::string& name) {
  return pv::testing::source_dir() + "/harness/testdata/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in, nullptr, false);
}

ph::ProcessResult run_pv(std::vector<std::string> args, std::map<std::string, std::string> env) {
  ph::ProcessOptions po;
  po.argv = {bin_dir() + "/pv"};
  po.argv.insert(po.argv.end(), args.begin(), args.end());
  po.env = std::move(env);
  po.timeout = std::chrono::seconds(120);
  po.tail_bytes = 1 << 20;
  return ph::run_process(po);
}

json bundle(const std::string& evidence, const std::string& machine, const std::string& contract,
            const std::string& falsifier) {
  return read_json(evidence + "/runs/" + machine + "/" + contract + "/" + falsifier + ".json");
}

}  // namespace pv::testing::harness_cli
