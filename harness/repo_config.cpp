#include "harness/repo_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pv::harness {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kTopKeys = {"bin_dirs", "env", "runners"};
const std::vector<std::string> kRunnerKeys = {"program", "args", "env", "cwd", "dir"};
const std::vector<std::string> kRunners = {"gtest", "ctest", "pytest", "cargo", "command"};

class Reader {
 public:
  Reader(std::string file, Diagnostics& diags) : file_(std::move(file)), diags_(diags) {}
  SourcePos pos(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    if (m.line < 0) return {file_, 0, 0};
    return {file_, m.line + 1, m.column + 1};
  }
  void error(const YAML::Node& n, std::string msg) { diags_.push_back({pos(n), std::move(msg)}); }

  bool keys(const YAML::Node& n, std::string_view what, const std::vector<std::string>& allowed) {
    if (!n.IsMap()) {
      error(n, fmt::format("{} must be a mapping", what));
      return false;
    }
    bool ok = true;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string k = it->first.IsScalar() ? it->first.Scalar() : std::string();
      if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
      const std::string near = nearest(k, allowed);
      error(it->first, fmt::format("unknown key '{}' in {}{} (allowed: {})", k, what,
                                   near.empty() ? "" : "; did you mean '" + near + "'?",
                                   fmt::join(allowed, ", ")));
      ok = false;
    }
    return ok;
  }
  std::vector<std::string> list(const YAML::Node& n, std::string_view what) {
    std::vector<std::string> out;
    if (!n.IsSequence()) {
      error(n, fmt::format("{} must be a list of text values", what));
      return out;
    }
    for (const auto& e : n) {
      if (!e.IsScalar() || e.Scalar().empty()) {
        error(e, fmt::format("every entry of {} must be a non-empty text value", what));
        continue;
      }
      out.push_back(e.Scalar());
    }
    return out;
  }
  std::map<std::string, std::string> env(const YAML::Node& n, std::string_view what) {
    std::map<std::string, std::string> out;
    if (!n.IsMap()) {
      error(n, fmt::format("{} must map variable names to values", what));
      return out;
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->first.IsScalar() || !it->second.IsScalar() || it->first.Scalar().empty() ||
          it->first.Scalar().find('=') != std::string::npos) {
        error(it->first, fmt::format("{} maps variable names (no '=') to single values", what));
        continue;
      }
      out[it->first.Scalar()] = it->second.Scalar();
    }
    return out;
  }
  std::string path(const YAML::Node& n, std::string_view what, const fs::path& base) {
    if (!n.IsScalar() || n.Scalar().empty()) {
      error(n, fmt::format("{} must be a path", what));
      return {};
    }
    return (base / n.Scalar()).lexically_normal().string();
  }

 private:
  std::string file_;
  Diagnostics& diags_;
};

}  // namespace

namespace {

RepoConfig read_config(const std::string& path, Diagnostics& diags) {
  RepoConfig cfg;
  cfg.file = path;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.push_back({{path, 0, 0}, "cannot open the pv config file"});
    return cfg;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  Reader r(path, diags);
  YAML::Node root;
  try {
    root = YAML::Load(ss.str());
  } catch (const YAML::ParserException& e) {
    diags.push_back({{path, e.mark.line + 1, e.mark.column + 1}, "YAML syntax error: " + e.msg});
    return cfg;
  }
  if (!root || root.IsNull()) return cfg;
  const fs::path base = fs::absolute(path).parent_path();
  if (!r.keys(root, "the pv config", kTopKeys)) return cfg;
  if (root["bin_dirs"]) {
    for (const auto& d : r.list(root["bin_dirs"], "'bin_dirs'")) {
      cfg.bin_dirs.push_back((base / d).lexically_normal().string());
    }
  }
  if (root["env"]) cfg.env = r.env(root["env"], "'env'");
  if (const YAML::Node rs = root["runners"]) {
    if (!r.keys(rs, "'runners'", kRunners)) return cfg;
    for (auto it = rs.begin(); it != rs.end(); ++it) {
      const std::string name = it->first.Scalar();
      const std::string what = "runner '" + name + "'";
      const YAML::Node b = it->second;
      if (!r.keys(b, what, kRunnerKeys)) continue;
      RunnerDefaults d;
      if (b["program"]) d.program = r.list(b["program"], what + " 'program'");
      if (b["args"]) d.args = r.list(b["args"], what + " 'args'");
      if (b["env"]) d.env = r.env(b["env"], what + " 'env'");
      if (b["cwd"]) d.cwd = r.path(b["cwd"], what + " 'cwd'", base);
      if (b["dir"]) d.dir = r.path(b["dir"], what + " 'dir'", base);
      const RunnerKind k = name == "ctest"     ? RunnerKind::kCtest
                           : name == "pytest"  ? RunnerKind::kPytest
                           : name == "cargo"   ? RunnerKind::kCargo
                           : name == "command" ? RunnerKind::kCommand
                                               : RunnerKind::kGtest;
      cfg.runners[k] = std::move(d);
    }
  }
  return cfg;
}

}  // namespace

RepoConfig load_repo_config(const std::string& path, Diagnostics& diags) {
  try {
    return read_config(path, diags);
  } catch (const YAML::Exception& e) {
    // Every access above is guarded; a document that still surprises yaml-cpp is an
    // error in the config, not a crash.
    diags.push_back(
        {{path, e.mark.line + 1, e.mark.column + 1}, std::string("cannot read: ") + e.what()});
    return {};
  }
}

}  // namespace pv::harness
