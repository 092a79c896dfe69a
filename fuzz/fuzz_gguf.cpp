// libFuzzer target: the GGUF reader and loader on arbitrary bytes. Any outcome but a
// FormatError (a crash, a sanitizer report, another exception) is a finding.
#include <cstdint>
#include <vector>

#include "model/formats/gguf.h"
#include "model/loading/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pv::model;
  auto file = MappedFile::from_bytes("fuzz.gguf", std::vector<uint8_t>(data, data + size));
  try {
    read_gguf(file);
    load_gguf_model(file);
  } catch (const FormatError&) {
  }
  return 0;
}
