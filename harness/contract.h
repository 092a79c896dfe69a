// The contract schema v1 as data (see harness/README.md for the YAML reference).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "harness/diagnostics.h"
#include "harness/ladder.h"

namespace pv::harness {

// Which test runner a bound test belongs to (harness/README.md, "Bound tests").
enum class RunnerKind { kGtest, kCtest, kPytest, kCargo, kCommand };
std::string_view runner_name(RunnerKind k);

// A bound test. GoogleTest: "binary:Suite.Test" — a test the named binary lists; the test
// part may be a gtest filter pattern ('*', '?') for parameterized families and must match
// something. Other runners: "ctest:<name>", "pytest:<node id>", "cargo:<test path>",
// "command:<program>", or the map form {runner, id, binary, argv, args, env, cwd, dir}.
struct TestBinding {
  std::string binary;  // gtest: a binary's file name; else the runner's name ("pytest", ...)
  std::string test;    // gtest filter, ctest test name, pytest node id, cargo path, command id
  SourcePos pos;
  RunnerKind runner = RunnerKind::kGtest;
  std::vector<std::string> argv;           // command: the program and its arguments
  std::vector<std::string> args;           // extra arguments for the runner / binary
  std::map<std::string, std::string> env;  // added to the test's environment
  std::string cwd;  // working directory (relative to the source root); "" -> runner default
  std::string dir;  // ctest: the CTest build tree; cargo: the crate; "" -> pv.yaml's
  std::string text() const { return binary + ":" + test; }
  // Everything that makes two bindings run differently (jobs are shared by key).
  std::string key() const;
};

struct LevelSpec {
  Status level = Status::PARTIAL_ALGORITHM_LEVEL;
  std::vector<TestBinding> tests;
  std::vector<std::string> fixtures;  // what the level needs (documentation + report)
  int runs = 1;                       // each test runs this many times, same verdict
  int machines = 1;                   // distinct machines whose evidence must agree
  SourcePos pos;
};

// One bound on a metric the falsifier's tests record (gtest property metric.<name>).
// `key: x` with a key ending in "_max" bounds the metric named `key` from above, "_min"
// from below; `key: {metric: m, max: x}` / `{metric: m, min: x}` names the metric
// explicitly, and m may be a gtest-style pattern ('*', '?') that every matching metric
// must satisfy. The grader checks it (harness/grader.h); the runner hands it to the test.
struct Threshold {
  std::string name;    // the key as the contract writes it
  std::string metric;  // a metric name, or a pattern over metric names
  bool upper = true;   // true: metric <= bound; false: metric >= bound
  double bound = 0;
  std::string text;  // the bound as written (what the test is given)
  SourcePos pos;
  bool pattern() const { return metric.find_first_of("*?") != std::string::npos; }
  bool holds(double v) const { return upper ? v <= bound : v >= bound; }
  std::string describe() const;  // "nmse_max <= 1e-09" / "cosine.* >= 0.999"
};

struct Falsifier {
  std::string id;
  std::string rule;
  std::string prediction;
  std::string if_fails;
  Status claimed = Status::PARTIAL_ALGORITHM_LEVEL;
  std::vector<std::string> inputs;  // source globs (relative to the source root)
  std::vector<SourcePos> input_pos;
  std::vector<Threshold> thresholds;  // enforced on the metrics of every bound test
  std::vector<LevelSpec> levels;      // ascending on the ladder
  // Planted bugs (mutants/mutant.h) the bound tests must kill; pv mutants checks it.
  std::vector<std::string> must_kill;
  std::vector<SourcePos> must_kill_pos;
  SourcePos pos;
  SourcePos status_pos;
};

struct Equation {
  std::string name;
  std::string formula;
  std::string domain;
  std::string description;
};

struct ProofObligation {
  std::string type;
  std::string property;
  std::string formal;
  std::vector<std::string> applies_to;
};

struct Contract {
  std::string file;      // as given on the command line
  std::string rel_file;  // relative to the source root (what the evidence records)
  std::string root;      // source root the contract lives in
  std::string sha256;
  std::string id;
  std::string version;
  std::string description;
  std::vector<std::string> references;
  std::vector<std::string> depends_on;
  std::vector<SourcePos> depends_on_pos;
  // Named constants the prose and equations refer to; nothing checks them (a bound that
  // is enforced lives in a falsifier's thresholds).
  std::map<std::string, std::string> thresholds;
  std::vector<Equation> equations;
  std::vector<ProofObligation> proof_obligations;
  std::vector<Falsifier> falsifiers;
  SourcePos id_pos;
};

struct LoadedContract {
  bool ok = false;  // parsed and passed every per-file check
  Contract contract;
};

// Parses and checks one contract file on its own (everything that does not need the
// other contracts or the test binaries); appends every problem found to `diags`.
LoadedContract load_contract(const std::string& path, Diagnostics& diags);
LoadedContract load_contract_text(const std::string& path, const std::string& text,
                                  Diagnostics& diags);

// The contract as far as it could be read, its problems ignored: for the readers that
// describe or select contracts (the spec's prose, the report, the --shard selection, the
// DISCHARGED requirements when merging evidence) rather than validate them; reporting the
// problems is pv validate's job. A file that cannot be read gives a contract with no id.
Contract load_contract_lenient(const std::string& path);

// Only metadata.id, leniently: used to resolve depends_on against sibling contracts.
std::string peek_contract_id(const std::string& path);

bool is_semver(std::string_view v);
// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate nearest to `word`, or "" when none is plausibly a typo of it.
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

// The directory holding `.git` above `path`, else the nearest one holding CMakeLists.txt
// and contracts/ (a tree copied without .git), else the file's own directory.
std::string find_source_root(const std::string& path);

}  // namespace pv::harness
