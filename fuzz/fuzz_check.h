// What every fuzz target accepts as a refusal of a bad input: a std::runtime_error (pv's
// CLI prints it and exits 2) whose message names the file it read. Anything else is a
// finding and aborts, so libFuzzer saves the input: a crash or sanitizer report, a
// logic_error or nlohmann::json exception escaping a reader (a bug, and a message that
// names neither file nor place), or a refusal that does not say which file it is about.
//
// Each fuzz_<target>.cpp defines its one-input function with PV_FUZZ_TARGET(<target>). The
// libFuzzer build makes it LLVMFuzzerTestOneInput; built with PV_FUZZ_REPLAY (the gcc
// build of pv_falsifiers) it is pv_fuzz_one_<target>, and a finding throws Finding, so the
// committed regression inputs (fuzz/regressions/<target>/) replay through exactly the code
// that fuzzes them, in the normal ctest run.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#ifdef PV_FUZZ_REPLAY
#define PV_FUZZ_TARGET(name) int pv_fuzz_one_##name(const uint8_t* data, size_t size)
#else
#define PV_FUZZ_TARGET(name) extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
#endif

namespace pv::fuzz {

// Thrown for a finding in the replay build; deliberately no std::exception, so no handler
// of the code under test can take it for a refusal.
struct Finding {
  std::string message;
};

[[noreturn]] inline void finding(const char* what, const std::string& message) {
#ifdef PV_FUZZ_REPLAY
  throw Finding{std::string(what) + ": " + message};
#else
  std::fprintf(stderr, "pv fuzz finding: %s: %s\n", what, message.c_str());
  std::abort();
#endif
}

// Call from a catch (...) block: accepts the current exception or reports a finding.
// `file` empty: the refusal need not name a file (the code that threw never saw one).
inline void expect_refusal(const std::string& file) {
  try {
    throw;
  } catch (const nlohmann::json::exception& e) {
    finding("a JSON library exception escaped the reader", e.what());
  } catch (const std::runtime_error& e) {
    if (!file.empty() && std::string(e.what()).find(file) == std::string::npos) {
      finding(("the error does not name the file " + file).c_str(), e.what());
    }
  } catch (const std::exception& e) {
    finding("an exception other than runtime_error escaped the reader", e.what());
  } catch (...) {
    finding("a non-std exception escaped the reader", "");
  }
}

}  // namespace pv::fuzz
