#include "falsifiers/support/scratch_files.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace pv::testing {
namespace {

std::mutex g_mu;
std::vector<std::filesystem::path> g_dirs;

// Removes every directory make_temp_dir made once all tests ran, unless a test failed (its
// tree is then kept for inspection, and the paths printed) or PV_KEEP_TMP is set: a passing
// run leaves nothing in the temp dir.
class RemoveTempDirs : public ::testing::Environment {
 public:
  void TearDown() override {
    std::lock_guard<std::mutex> lock(g_mu);
    const bool keep =
        std::getenv("PV_KEEP_TMP") != nullptr || ::testing::UnitTest::GetInstance()->Failed();
    for (const auto& d : g_dirs) {
      if (keep) {
        std::fprintf(stderr, "kept for inspection: %s\n", d.c_str());
        continue;
      }
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
    g_dirs.clear();
  }
};

[[maybe_unused]] ::testing::Environment* const g_env =
    ::testing::AddGlobalTestEnvironment(new RemoveTempDirs);

}  // namespace

std::filesystem::path make_temp_dir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("pv-" + tag + "-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + tmpl);
  std::lock_guard<std::mutex> lock(g_mu);
  g_dirs.emplace_back(tmpl);
  return tmpl;
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace pv::testing
