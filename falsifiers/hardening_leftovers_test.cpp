// Falsifiers for contracts/hardening-v1.yaml, the last crash and hang classes outside the
// model files: a trace whose lm_head shape product wraps around 2^64 (pv diff and bisect read
// rows x vocab logits far past the data), and a tokenizer.json that is a FIFO or a device
// (the read blocks forever or never ends).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <bit>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "falsifiers/support/trace_helpers.h"
#include "harness/process.h"
#include "harness/testing/pv_test.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/tokenizer/hf_tokenizer.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_json.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

// lm_head's shape [T + 2^64 / vocab, vocab] has the true element count T x vocab modulo 2^64,
// so the stage file's element count matches it; pv diff and pv bisect must refuse the
// shape (exit 2, naming trace.json, the stage and the overflow), not read T + 2^58 rows.
TEST(Hardening, TraceShapeProductsNeverWrap) {
  const uint64_t seed = pv::testing::seed();
  auto m = pv::testing::trace_model(seed, pv::kernels::GgmlType::F32);
  pv::testing::TempDir tmp("trace-wrap");
  pv::kernels::CpuBackend cpu(1);
  pv::testing::trace_all(m->config, m->weights, cpu, {3, 17, 42, 5}, tmp.sub("a"), 1);
  pv::testing::trace_all(m->config, m->weights, cpu, {3, 17, 42, 5}, tmp.sub("b"), 1);
  int changed = 0;
  for (const char* side : {"a", "b"}) {
    const std::string path = tmp.sub(side) + "/trace.json";
    json j = json::parse(slurp(path));
    for (auto& e : j["stages"]) {
      if (e["stage"] != "lm_head") continue;
      const uint64_t rows = e["shape"][0].get<uint64_t>();
      const uint64_t vocab = e["shape"][1].get<uint64_t>();
      ASSERT_EQ(vocab & (vocab - 1), 0u) << "vocab " << vocab << " must be a power of two here";
      // rows + 2^64 / vocab, so rows' * vocab == rows * vocab (mod 2^64).
      e["shape"][0] = rows + (uint64_t{1} << (64 - std::countr_zero(vocab)));
      ++changed;
    }
    std::ofstream(path, std::ios::binary) << j.dump(1);
  }
  ASSERT_EQ(changed, 2);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"diff", tmp.sub("a"), tmp.sub("b")},
        std::vector<std::string>{"bisect", tmp.sub("a"), tmp.sub("b")}}) {
    SCOPED_TRACE(args[0]);
    pv::harness::ProcessOptions po;
    po.argv = {std::string(PV_BINARY_DIR) + "/bin/pv"};
    po.argv.insert(po.argv.end(), args.begin(), args.end());
    po.timeout = std::chrono::seconds(60);
    const pv::harness::ProcessResult r = pv::harness::run_process(po);
    const std::string out = r.stdout_text + r.stderr_text;
    EXPECT_TRUE(r.started && !r.timed_out && r.term_signal == 0) << r.describe() << "\n" << out;
    EXPECT_EQ(r.exit_code, 2) << out;
    const double s = r.duration_ms / 1000.0;
    // Either side's index may be read first; both are hostile.
    EXPECT_TRUE(out.find(tmp.sub("a") + "/trace.json") != std::string::npos ||
                out.find(tmp.sub("b") + "/trace.json") != std::string::npos)
        << out;
    EXPECT_NE(out.find("lm_head"), std::string::npos) << out;
    EXPECT_NE(out.find("overflows 64 bits"), std::string::npos) << out;
    EXPECT_LT(s, 10.0);
  }
}

// A tokenizer.json that is a FIFO (no writer: reading would block forever) or a character
// device (/dev/zero: reading never ends) is refused at once, naming the file.
TEST(Hardening, NonRegularTokenizerJsonIsRefused) {
  pv::testing::TempDir tmp("tok-fifo");
  const std::string fifo = tmp.sub("tokenizer.json");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  struct Case {
    std::string name, path;
    std::function<void(const std::string&)> load;
  };
  const std::vector<Case> cases = {
      {"pv tokenizer.json, FIFO", fifo,
       [](const std::string& p) { pv::model::load_tokenizer_json(p); }},
      {"HF tokenizer.json, FIFO", fifo,
       [](const std::string& p) { pv::model::load_hf_tokenizer(p); }},
      {"pv tokenizer.json, /dev/zero", "/dev/zero",
       [](const std::string& p) { pv::model::load_tokenizer_json(p); }},
      {"HF tokenizer.json, /dev/zero", "/dev/zero",
       [](const std::string& p) { pv::model::load_hf_tokenizer(p); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto t0 = std::chrono::steady_clock::now();
    std::string msg;
    try {
      c.load(c.path);
    } catch (const pv::model::TokenizerError& e) {
      msg = e.what();
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_NE(msg.find(c.path), std::string::npos) << msg;
    EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
    EXPECT_LT(s, 1.0);
  }
}
