#include "harness/file_bytes.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pv::harness {

std::string read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot open for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw std::runtime_error(path.string() + ": read error");
  return ss.str();
}

}  // namespace pv::harness
