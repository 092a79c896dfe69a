#include "harness/fingerprint.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>

#include "harness/process.h"
#include "harness/sha256.h"

namespace pv::harness {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

ProcessResult run_tool(std::vector<std::string> argv) {
  ProcessOptions po;
  po.argv = std::move(argv);
  po.search_path = true;
  po.timeout = std::chrono::seconds(20);
  po.tail_bytes = 1 << 20;
  return run_process(po);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return trim(line.substr(colon + 1));
    }
  }
  return "unknown";
}

// git reads the repository's own .git/config, and a repository is data from elsewhere:
// core.fsmonitor, a hooks path, or a filter driver's clean command (which `git status`
// runs on files whose stat data changed) would make pv execute what the repository says.
// Every git call turns those off from the command line, which outranks every config file.
ProcessResult run_git(const std::string& root, const std::vector<std::string>& args) {
  ProcessOptions po;
  po.argv = {"git", "-C", root, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null"};
  po.env = {
      {"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_OPTIONAL_LOCKS", "0"}, {"GIT_TERMINAL_PROMPT", "0"}};
  po.search_path = true;
  po.timeout = std::chrono::seconds(20);
  po.tail_bytes = 1 << 20;
  {
    // Filter drivers have names of the repository's choosing: list them (git config runs
    // nothing) and blank each one's commands.
    ProcessOptions list = po;
    list.argv.insert(list.argv.end(),
                     {"config", "--null", "--name-only", "--get-regexp", "^filter\\."});
    const ProcessResult r = run_process(list);
    std::set<std::string> drivers;
    size_t start = 0;
    for (size_t i = 0; r.ok() && i < r.stdout_text.size(); ++i) {
      if (r.stdout_text[i] != '\0') continue;
      const std::string key = r.stdout_text.substr(start, i - start);
      start = i + 1;
      const auto dot = key.rfind('.');
      if (key.size() > 7 && dot != std::string::npos && dot > 7) {
        drivers.insert(key.substr(7, dot - 7));
      }
    }
    for (const auto& d : drivers) {
      for (const char* k : {".clean=", ".smudge=", ".process=", ".required=false"}) {
        po.argv.push_back("-c");
        po.argv.push_back("filter." + d + k);
      }
    }
  }
  po.argv.insert(po.argv.end(), args.begin(), args.end());
  return run_process(po);
}

}  // namespace

std::string machine_id_of(const Environment& env) {
  if (const char* id = std::getenv("PV_MACHINE_ID"); id != nullptr && *id != '\0') return id;
  return sha256_hex(env.cpu + "|" + env.gpu + "|" + env.driver + "|" + env.host).substr(0, 12);
}

Environment collect_environment(const std::string& source_root) {
  Environment e;
  // PV_GIT_COMMIT names the commit of a source tree that travelled without its .git (or
  // with a stale one, as on a lent GPU machine): the caller vouches the tree is that commit.
  if (const char* c = std::getenv("PV_GIT_COMMIT"); c != nullptr && *c != '\0') {
    e.git_commit = c;
    e.git_dirty = false;
  } else {
    if (auto r = run_git(source_root, {"rev-parse", "HEAD"}); r.ok()) {
      e.git_commit = trim(r.stdout_text);
    } else {
      e.git_commit = "unknown";
    }
    if (auto r = run_git(source_root, {"status", "--porcelain", "--untracked-files=no",
                                       "--ignore-submodules=all"});
        r.ok()) {
      e.git_dirty = !trim(r.stdout_text).empty();
    }
  }
#if defined(__clang__)
  e.compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  e.compiler = "gcc " __VERSION__;
#else
  e.compiler = "unknown";
#endif
  e.cpu = cpu_model();
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) e.host = host;
  if (auto r = run_tool({"nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"});
      r.ok()) {
    const std::string first = trim(r.stdout_text.substr(0, r.stdout_text.find('\n')));
    const auto comma = first.rfind(',');
    if (comma != std::string::npos) {
      e.gpu = trim(first.substr(0, comma));
      e.driver = trim(first.substr(comma + 1));
    }
    if (auto s = run_tool({"nvidia-smi"}); s.ok()) {
      std::smatch m;
      static const std::regex re("CUDA Version: *([0-9.]+)");
      if (std::regex_search(s.stdout_text, m, re)) e.cuda_runtime = m[1];
    }
  }
  e.machine_id = machine_id_of(e);
  return e;
}

}  // namespace pv::harness
