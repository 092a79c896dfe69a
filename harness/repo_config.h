// pv.yaml, the per-repository config: where test binaries and commands live and how each
// runner is invoked (harness/README.md, "pv.yaml"). Found beside contracts/ at the source
// root, or named by `pv validate --config FILE`. Paths in it are relative to its directory
// and are made absolute when it is read.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "harness/contract.h"
#include "harness/diagnostics.h"

namespace pv::harness {

struct RunnerDefaults {
  std::vector<std::string> program;  // the runner's argv prefix ("" -> ctest/pytest/cargo)
  std::vector<std::string> args;     // added before the binding's own args
  std::map<std::string, std::string> env;
  std::string cwd;  // absolute, or ""
  std::string dir;  // ctest build tree / cargo crate (absolute, or "")
};

struct RepoConfig {
  std::string file;                        // "" when there is none
  std::vector<std::string> bin_dirs;       // absolute; searched after --bin-dir
  std::map<std::string, std::string> env;  // added to every bound test
  std::map<RunnerKind, RunnerDefaults> runners;
};

// Reads `path`; every problem goes to `diags` with file:line:col.
RepoConfig load_repo_config(const std::string& path, Diagnostics& diags);

}  // namespace pv::harness
