// libFuzzer target: the GGUF reader and loader on arbitrary bytes. A refusal must be a
// runtime_error naming the file (fuzz_check.h); anything else is a finding.
#include <cstdint>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "model/formats/gguf.h"
#include "model/loading/loader.h"

PV_FUZZ_TARGET(gguf) {
  using namespace pv::model;
  auto file = MappedFile::from_bytes("fuzz.gguf", std::vector<uint8_t>(data, data + size));
  try {
    read_gguf(file);
    load_gguf_model(file);
  } catch (...) {
    pv::fuzz::expect_refusal("fuzz.gguf");
  }
  return 0;
}
