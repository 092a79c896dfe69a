// libFuzzer target: the safetensors reader on arbitrary bytes, and (inputs starting with
// '{') config.json through the HF loader beside a valid tiny model.safetensors. A refusal
// must be a runtime_error naming the file (fuzz_check.h); anything else is a finding.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "model/fixtures/fixture_gen.h"
#include "model/formats/safetensors.h"
#include "model/loading/loader.h"

namespace {

std::filesystem::path hf_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("pv-fuzz-hf-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    pv::model::FixtureSpec s;
    s.name = "fuzz";
    s.n_layers = 1;
    s.hidden = 32;
    s.n_heads = 2;
    s.n_kv_heads = 1;
    s.ffn = 64;
    s.vocab = 16;
    pv::model::fixture_safetensors(s).write((d / "model.safetensors").string());
    return d;
  }();
  return dir;
}

}  // namespace

PV_FUZZ_TARGET(safetensors) {
  using namespace pv::model;
  try {
    read_safetensors(
        MappedFile::from_bytes("fuzz.safetensors", std::vector<uint8_t>(data, data + size)));
  } catch (...) {
    pv::fuzz::expect_refusal("fuzz.safetensors");
  }
  if (size > 0 && data[0] == '{') {
    const auto dir = hf_dir();
    std::ofstream(dir / "config.json", std::ios::binary)
        .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    try {
      load_hf_model(dir.string());
    } catch (...) {
      // config.json or model.safetensors (checked against it): either names its path.
      pv::fuzz::expect_refusal(dir.string());
    }
  }
  return 0;
}
