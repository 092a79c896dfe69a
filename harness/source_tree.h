// The files of the source tree, for the `inputs` globs of falsifiers and the
// inputs_digest that decides whether committed evidence is still fresh.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace pv::harness {

// Glob over '/'-separated relative paths: '*' and '?' stay within a segment, '**'
// matches any number of whole segments ("model/**/*.cpp", "kernels/cpu/gqa*.cpp").
bool path_glob_match(std::string_view pattern, std::string_view path);

class SourceTree {
 public:
  explicit SourceTree(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }
  // Every regular file below root (relative, sorted), skipping .git, hidden directories
  // and build directories (build*): listed once, on first use.
  const std::vector<std::string>& files();
  std::vector<std::string> match(std::string_view glob);
  std::string file_sha256(const std::string& rel);
  // sha256 over "<sha256(file)>  <path>\n" for every file the globs match, plus the
  // contract file, in path order. Any input change makes older evidence stale.
  std::string inputs_digest(const std::vector<std::string>& globs, const std::string& contract_rel);

 private:
  std::string root_;
  std::mutex mu_;
  bool listed_ = false;
  std::vector<std::string> files_;
  std::map<std::string, std::string> sha_cache_;
  std::map<std::string, std::vector<std::string>, std::less<>>
      glob_cache_;  // contracts repeat globs
};

}  // namespace pv::harness
