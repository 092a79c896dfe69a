// libFuzzer target: the trace readers (model/trace/FORMAT.md) on arbitrary bytes, by the
// input's first bytes:
//   "APRT..."  one APRT stage file (aprt_decode);
//   "{..."     an APRT directory: the bytes up to the first NUL are trace.json, the bytes
//              after it (if any) are written as every stage file trace.json names, so both
//              the index and the index-vs-file checks of read_stage are reached;
//   otherwise  a safetensors trace (open_trace, then every stage it lists).
// A refusal must be a runtime_error naming the file (fuzz_check.h); anything else is a
// finding.
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz/fuzz_check.h"
#include "model/trace/aprt.h"
#include "model/trace/trace_store.h"

namespace {

namespace fs = std::filesystem;

const fs::path& work_dir() {
  static const fs::path dir = [] {
    auto d = fs::temp_directory_path() / ("pv-fuzz-trace-" + std::to_string(::getpid()));
    fs::create_directories(d / "dir");
    return d;
  }();
  return dir;
}

void write_file(const fs::path& p, const uint8_t* data, size_t size) {
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

// Reads the index and every stage it lists; each stage may be refused on its own.
// `stage_bytes` (APRT directories only): written as each listed stage file first.
void read_trace(const std::string& path, const std::string& named, const uint8_t* stage_bytes,
                size_t stage_size) {
  pv::model::OpenTrace t;
  try {
    t = pv::model::open_trace(path);
  } catch (...) {
    pv::fuzz::expect_refusal(named);
    return;
  }
  for (const auto& e : t.meta.entries) {
    const fs::path rel(e.file);
    // open_trace only accepts the names layer-<N>/<stage>.bin and <stage>.bin; the guard
    // keeps a reader bug from making the fuzzer write outside its directory.
    if (stage_bytes == nullptr || rel.is_absolute() || e.file.find("..") != std::string::npos) {
      continue;
    }
    const fs::path file = fs::path(path) / rel;
    fs::create_directories(file.parent_path());
    write_file(file, stage_bytes, stage_size);
  }
  for (const auto& e : t.meta.entries) {
    try {
      pv::model::read_stage(t, e);
    } catch (...) {
      pv::fuzz::expect_refusal(named);
    }
  }
}

}  // namespace

PV_FUZZ_TARGET(trace) {
  if (size >= 4 && std::memcmp(data, "APRT", 4) == 0) {
    try {
      pv::model::aprt_decode(data, size, "fuzz.bin");
    } catch (...) {
      pv::fuzz::expect_refusal("fuzz.bin");
    }
  } else if (size > 0 && data[0] == '{') {
    const fs::path dir = work_dir() / "dir";
    fs::remove_all(dir);
    fs::create_directories(dir);
    const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
    const size_t index_size = nul == nullptr ? size : static_cast<size_t>(nul - data);
    write_file(dir / "trace.json", data, index_size);
    read_trace(dir.string(), dir.string(), nul == nullptr ? nullptr : nul + 1,
               nul == nullptr ? 0 : size - index_size - 1);
  } else {
    const fs::path file = work_dir() / "fuzz.safetensors";
    write_file(file, data, size);
    read_trace(file.string(), "fuzz.safetensors", nullptr, 0);
  }
  return 0;
}
