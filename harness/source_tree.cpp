#include "harness/source_tree.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "harness/gtest_listing.h"
#include "harness/sha256.h"
#include "mutants/mutant.h"

namespace pv::harness {
namespace {

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '/') {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

bool match_segments(const std::vector<std::string_view>& p, size_t pi,
                    const std::vector<std::string_view>& s, size_t si) {
  if (pi == p.size()) return si == s.size();
  if (p[pi] == "**") {
    for (size_t k = si; k <= s.size(); ++k) {
      if (match_segments(p, pi + 1, s, k)) return true;
    }
    return false;
  }
  if (si == s.size()) return false;
  // Within one segment the glob rules are gtest filter rules: '*' any run, '?' one char.
  return gtest_pattern_match(p[pi], s[si]) && match_segments(p, pi + 1, s, si + 1);
}

}  // namespace

bool path_glob_match(std::string_view pattern, std::string_view path) {
  return match_segments(split(pattern), 0, split(path), 0);
}

const std::vector<std::string>& SourceTree::files() {
  std::lock_guard<std::mutex> lock(mu_);
  if (listed_) return files_;
  listed_ = true;
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::recursive_directory_iterator it(root_, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_directory(ec)) {
      if ((!name.empty() && name[0] == '.') || name.rfind("build", 0) == 0) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (it->is_regular_file(ec)) {
      files_.push_back(fs::relative(it->path(), root_, ec).generic_string());
    }
  }
  std::sort(files_.begin(), files_.end());
  return files_;
}

std::vector<std::string> SourceTree::match(std::string_view glob) {
  const auto& all = files();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = glob_cache_.find(glob); it != glob_cache_.end()) return it->second;
  }
  std::vector<std::string> out;
  for (const auto& f : all) {
    if (path_glob_match(glob, f)) out.push_back(f);
  }
  std::lock_guard<std::mutex> lock(mu_);
  glob_cache_.emplace(std::string(glob), out);
  return out;
}

std::string SourceTree::file_sha256(const std::string& rel) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = sha_cache_.find(rel); it != sha_cache_.end()) return it->second;
  }
  std::ifstream in(root_ + "/" + rel, std::ios::binary);
  Sha256 h;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0)
    h.update(buf, static_cast<size_t>(in.gcount()));
  std::string hex = in.bad() ? std::string("unreadable") : h.finish_hex();
  std::lock_guard<std::mutex> lock(mu_);
  sha_cache_[rel] = hex;
  return hex;
}

std::string SourceTree::inputs_digest(const std::vector<std::string>& globs,
                                      const std::string& contract_rel) {
  std::set<std::string> paths{contract_rel};
  const size_t n_globs =
      globs.size() - (mutant::planted(mutant::Bug::DigestSkipsLastGlob) && !globs.empty());
  for (size_t i = 0; i < n_globs; ++i) {
    for (auto& f : match(globs[i])) paths.insert(std::move(f));
  }
  Sha256 h;
  for (const auto& p : paths) h.update(file_sha256(p) + "  " + p + "\n");
  return h.finish_hex();
}

}  // namespace pv::harness
