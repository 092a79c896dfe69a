#include "falsifiers/support/pv_cli.h"

#include <fstream>
#include <sstream>

namespace pv::testing {

std::string bin_dir() { return std::string(PV_BINARY_DIR) + "/bin"; }

pv::harness::ProcessResult run_pv(const std::vector<std::string>& args,
                                  const std::map<std::string, std::string>& env,
                                  const std::string& cwd, std::chrono::seconds timeout) {
  pv::harness::ProcessOptions po;
  po.argv = {bin_dir() + "/pv"};
  po.argv.insert(po.argv.end(), args.begin(), args.end());
  po.env = env;
  po.cwd = cwd;
  po.timeout = timeout;
  po.tail_bytes = 1 << 20;
  return pv::harness::run_process(po);
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace pv::testing
