// What every fuzz target accepts as a refusal of a bad input: a std::runtime_error (pv's
// CLI prints it and exits 2) whose message names the file it read. Anything else is a
// finding and aborts, so libFuzzer saves the input: a crash or sanitizer report, a
// logic_error or nlohmann::json exception escaping a reader (a bug, and a message that
// names neither file nor place), or a refusal that does not say which file it is about.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace pv::fuzz {

[[noreturn]] inline void finding(const char* what, const std::string& message) {
  std::fprintf(stderr, "pv fuzz finding: %s: %s\n", what, message.c_str());
  std::abort();
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
