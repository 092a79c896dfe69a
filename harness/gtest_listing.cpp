#include "harness/gtest_listing.h"

#include <filesystem>

#include "harness/process.h"

namespace pv::harness {
namespace {

std::string_view strip_comment(std::string_view line) {
  // gtest appends "  # GetParam() = ..." / "  # TypeParam = ..." to parameterized names.
  if (auto hash = line.find("  #"); hash != std::string_view::npos) line = line.substr(0, hash);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
  return line;
}

}  // namespace

std::set<std::string> parse_gtest_list(std::string_view text) {
  std::set<std::string> out;
  std::string suite;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    if (line.rfind("  ", 0) == 0) {
      if (suite.empty()) continue;
      std::string_view name = strip_comment(line.substr(2));
      if (!name.empty() && name.find(' ') == std::string_view::npos)
        out.insert(suite + std::string(name));
      continue;
    }
    // A suite line is "Suite." (maybe with a comment); anything else (gtest_main's
    // "Running main() from ..." banner, stray prints) resets the current suite.
    std::string_view s = strip_comment(line);
    if (!s.empty() && s.back() == '.' && s.find(' ') == std::string_view::npos) {
      suite = std::string(s);
    } else {
      suite.clear();
    }
  }
  return out;
}

bool gtest_pattern_match(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      ++pi;
      ++si;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

const Listing& ListingCache::get(const std::string& binary) {
  // One lock for the whole listing: listings are few (one per binary) and must not race.
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = cache_[binary];
  if (slot) return *slot;
  slot = std::make_unique<Listing>();
  const std::string path = path_of(binary);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    slot->error = "no such test binary " + path;
    return *slot;
  }
  ProcessOptions po;
  po.argv = {path, "--gtest_list_tests"};
  po.timeout = std::chrono::seconds(60);
  po.tail_bytes = 64u << 20;
  ProcessResult r = run_process(po);
  ++listed_;
  if (!r.ok()) {
    slot->error = path + " --gtest_list_tests failed: " + r.describe();
    return *slot;
  }
  slot->ok = true;
  slot->tests = parse_gtest_list(r.stdout_text);
  return *slot;
}

void ListingCache::put(const std::string& binary, Listing listing) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_[binary] = std::make_unique<Listing>(std::move(listing));
}

}  // namespace pv::harness
