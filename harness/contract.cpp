// The contract schema v1 (harness/README.md): which keys a contract, its metadata,
// equations, proof obligations, falsifiers, levels, bound tests and thresholds may have, and
// which values they take. The YAML itself (bytes, syntax, positions, the one document) is
// read by contract_yaml.cpp.
#include "harness/contract.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>

#include "harness/contract_yaml.h"
#include "harness/sha256.h"
#include "mutants/mutant.h"

namespace pv::harness {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kTopKeys = {"metadata", "equations", "proof_obligations",
                                           "falsifiers", "thresholds"};
const std::vector<std::string> kMetaKeys = {"id", "version", "description", "references",
                                            "depends_on"};
const std::vector<std::string> kEquationKeys = {"formula", "domain", "description"};
const std::vector<std::string> kObligationKeys = {"type", "property", "formal", "applies_to"};
const std::vector<std::string> kFalsifierKeys = {"id",       "rule",       "prediction",
                                                 "if_fails", "status",     "inputs",
                                                 "levels",   "thresholds", "must_kill"};
const std::vector<std::string> kLevelKeys = {"tests", "fixtures", "runs", "machines"};
const std::vector<std::string> kThresholdKeys = {"metric", "max", "min"};
const std::vector<std::string> kLevelNames = {"PARTIAL_ALGORITHM_LEVEL", "FUNCTIONAL",
                                              "DISCHARGED"};
const std::vector<std::string> kClaimNames = {"BLOCKER_FIXTURE_ABSENT", "PARTIAL_ALGORITHM_LEVEL",
                                              "FUNCTIONAL", "DISCHARGED"};

// Ids become file names in evidence/: keep them to a safe alphabet.
bool safe_name(std::string_view s, std::string_view extra) {
  if (s.empty() || !(std::isalnum(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && extra.find(ch) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}
bool is_id(std::string_view s) { return s[0] != '_' && safe_name(s, "._-"); }
bool is_binary_name(std::string_view s) { return safe_name(s, "._+-"); }

using contract_yaml::Checker;

// A falsifier's thresholds (see Threshold in contract.h): every entry states its
// direction, by the key's suffix or by max/min; there is no default direction.
std::vector<Threshold> parse_thresholds(Checker& c, const YAML::Node& map, std::string_view what) {
  std::vector<Threshold> out;
  const YAML::Node v = map["thresholds"];
  if (!v || v.IsNull()) return out;
  if (!v.IsMap()) {
    c.error(v, fmt::format("'thresholds' in {} must be a mapping of names to bounds", what));
    return out;
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it->first.IsScalar() || it->first.Scalar().empty()) {
      c.error(it->first,
              fmt::format("'thresholds' in {} has a key that is not a plain name", what));
      continue;
    }
    Threshold t;
    t.name = it->first.Scalar();
    t.pos = c.pos(it->first);
    const YAML::Node body = it->second;
    const std::string where = fmt::format("threshold '{}' of {}", t.name, what);
    YAML::Node value;
    if (body.IsScalar()) {
      const auto ends = [&](std::string_view sfx) {
        return t.name.size() > sfx.size() &&
               t.name.compare(t.name.size() - sfx.size(), sfx.size(), sfx) == 0;
      };
      if (ends("_max")) {
        t.upper = true;
      } else if (ends("_min")) {
        t.upper = false;
      } else {
        c.error(it->first,
                fmt::format("{} says no direction: name it <metric>_max or <metric>_min (it then "
                            "bounds the metric of that name), or write {{metric: <name>, max: "
                            "<x>}} or {{metric: <name>, min: <x>}}",
                            where));
        continue;
      }
      t.metric = t.name;
      value = body;
    } else if (body.IsMap()) {
      if (!c.check_map(body, where, kThresholdKeys, {"metric"})) continue;
      if (body["max"] && body["min"]) {
        c.error(body,
                fmt::format("{} gives both max and min; write one threshold per bound", where));
        continue;
      }
      if (!body["max"] && !body["min"]) {
        c.error(body, fmt::format("{} needs a direction: max: <x> (metric <= x) or min: <x> "
                                  "(metric >= x)",
                                  where));
        continue;
      }
      t.metric = c.str(body, "metric", where, true);
      if (t.metric.empty()) continue;
      t.upper = static_cast<bool>(body["max"]);
      value = t.upper ? body["max"] : body["min"];
    } else {
      c.error(it->first,
              fmt::format("{} must be a number or {{metric: <name>, max|min: <x>}}", where));
      continue;
    }
    const std::string text = value.IsScalar() ? value.Scalar() : std::string();
    char* end = nullptr;
    const double x = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
    if (text.empty() || end == nullptr || *end != '\0' || !std::isfinite(x)) {
      c.error(value, fmt::format("{} must bound by a finite number, not '{}'", where, text));
      continue;
    }
    t.bound = x;
    t.text = text;
    out.push_back(std::move(t));
  }
  return out;
}

void parse_metadata(Checker& c, const YAML::Node& m, Contract& out) {
  if (!c.check_map(m, "metadata", kMetaKeys, {"id", "version", "description"})) return;
  out.id = c.str(m, "id", "metadata", true);
  if (m["id"]) out.id_pos = c.pos(m["id"]);
  if (!out.id.empty() && !is_id(out.id)) {
    c.error(m["id"],
            fmt::format("contract id '{}' may only use letters, digits, '.', '_' and '-'", out.id));
  }
  out.version = c.str(m, "version", "metadata", true);
  if (!out.version.empty() && !is_semver(out.version)) {
    c.error(m["version"], fmt::format("version '{}' is not a semantic version MAJOR.MINOR.PATCH "
                                      "(e.g. 1.0.0)",
                                      out.version));
  }
  out.description = c.str(m, "description", "metadata", true);
  out.references = c.str_list(m, "references", "metadata");
  out.depends_on = c.str_list(m, "depends_on", "metadata", &out.depends_on_pos);
}

void parse_equations(Checker& c, const YAML::Node& e, Contract& out) {
  if (!e.IsMap()) {
    c.error(e, "equations must be a mapping of equation names to {formula, domain}");
    return;
  }
  for (auto it = e.begin(); it != e.end(); ++it) {
    Equation eq;
    eq.name = it->first.Scalar();
    const std::string what = fmt::format("equation '{}'", eq.name);
    if (!c.check_map(it->second, what, kEquationKeys, {"formula"})) continue;
    eq.formula = c.str(it->second, "formula", what, true);
    eq.domain = c.str(it->second, "domain", what, false);
    eq.description = c.str(it->second, "description", what, false);
    out.equations.push_back(std::move(eq));
  }
}

void parse_obligations(Checker& c, const YAML::Node& p, Contract& out) {
  if (!p.IsSequence()) {
    c.error(p, "proof_obligations must be a list of {type, property, formal, applies_to}");
    return;
  }
  for (const auto& o : p) {
    if (!c.check_map(o, "a proof obligation", kObligationKeys, {"property"})) continue;
    ProofObligation po;
    po.type = c.str(o, "type", "a proof obligation", false);
    po.property = c.str(o, "property", "a proof obligation", true);
    po.formal = c.str(o, "formal", "a proof obligation", false);
    po.applies_to = c.str_list(o, "applies_to", "a proof obligation");
    out.proof_obligations.push_back(std::move(po));
  }
}

const std::vector<std::string> kBindingKeys = {"runner", "id",  "binary", "argv",
                                               "args",   "env", "cwd",    "dir"};
const std::vector<std::string> kRunnerNames = {"gtest", "ctest", "pytest", "cargo", "command"};

// One entry of a level's `tests:` (harness/README.md, "Bound tests"): the string forms
// "binary:Suite.Test" (GoogleTest, as always), "<runner>:<id>" for the other runners, or a
// map naming the runner. Paths are kept as written; validate resolves them.
bool parse_binding(Checker& c, const YAML::Node& t, TestBinding& b) {
  b.pos = c.pos(t);
  std::string runner = "gtest";
  if (t.IsScalar()) {
    const std::string s = t.Scalar();
    const auto colon = s.find(':');
    const std::string head = colon == std::string::npos ? s : s.substr(0, colon);
    if (colon != std::string::npos && head != "gtest" &&
        std::find(kRunnerNames.begin(), kRunnerNames.end(), head) != kRunnerNames.end()) {
      runner = head;
      b.test = s.substr(colon + 1);
      if (b.test.empty()) {
        c.error(t, fmt::format("bound test '{}' names no test after '{}:'", s, head));
        return false;
      }
      if (runner == "command") b.argv = {b.test};
    } else {
      std::string rest = s;
      if (head == "gtest" && colon != std::string::npos) rest = s.substr(colon + 1);
      const auto c2 = rest.find(':');
      if (c2 != std::string::npos) {
        b.binary = rest.substr(0, c2);
        b.test = rest.substr(c2 + 1);
      }
      if (c2 == std::string::npos || b.test.empty() || b.test.find('.') == std::string::npos) {
        c.error(t, fmt::format("bound test '{}' must have the form binary:Suite.Test "
                               "(e.g. pv_falsifiers:GqaHeadMapping.Falsify001_Property) or "
                               "<runner>:<id> with a runner of {}",
                               s, fmt::join(kRunnerNames, ", ")));
        return false;
      }
    }
  } else if (t.IsMap()) {
    const std::string what = "a bound test";
    if (!c.check_map(t, what, kBindingKeys, {"runner"})) return false;
    runner = c.str(t, "runner", what, true);
    if (runner.empty()) return false;
    if (std::find(kRunnerNames.begin(), kRunnerNames.end(), runner) == kRunnerNames.end()) {
      const std::string near = nearest(runner, kRunnerNames);
      c.error(t["runner"], fmt::format("unknown runner '{}'{} (runners: {})", runner,
                                       near.empty() ? "" : "; did you mean '" + near + "'?",
                                       fmt::join(kRunnerNames, ", ")));
      return false;
    }
    const int before = c.errors();
    b.test = c.str(t, "id", what, runner != "command");
    b.binary = c.str(t, "binary", what, runner == "gtest");
    b.argv = c.str_list(t, "argv", what);
    b.args = c.str_list(t, "args", what);
    b.env = c.scalar_map(t, "env", what);
    b.cwd = c.str(t, "cwd", what, false);
    b.dir = c.str(t, "dir", what, false);
    if (c.errors() != before) return false;
    const auto only_for = [&](const char* key, bool allowed, const char* runners) {
      if (t[key] && !allowed) {
        c.error(t[key],
                fmt::format("'{}' applies to the {} runner{}, not to {}", key, runners,
                            std::string_view(runners).find(',') == std::string::npos ? "" : "s",
                            runner));
        return false;
      }
      return true;
    };
    if (!only_for("binary", runner == "gtest", "gtest") ||
        !only_for("argv", runner == "command", "command") ||
        !only_for("dir", runner == "ctest" || runner == "cargo", "ctest, cargo")) {
      return false;
    }
    if (runner == "command") {
      if (b.argv.empty()) {
        c.error(t,
                "a command test needs 'argv': the program and its arguments (run directly, "
                "never through a shell)");
        return false;
      }
      if (b.test.empty()) b.test = b.argv[0];
    }
  } else {
    c.error(t,
            "a bound test must be 'binary:Suite.Test', '<runner>:<id>' or a map "
            "{runner: ..., id: ...}");
    return false;
  }
  if (runner == "gtest") {
    b.runner = RunnerKind::kGtest;
    if (!is_binary_name(b.binary)) {
      c.error(t, fmt::format("test binary '{}' must be a plain file name in a binary directory "
                             "(no paths, no shell syntax)",
                             b.binary));
      return false;
    }
    if (b.test.find_first_of(" \t:-") != std::string::npos) {
      c.error(t, fmt::format("test name '{}' may not contain spaces, ':' or '-' (those are "
                             "gtest filter syntax)",
                             b.test));
      return false;
    }
    return true;
  }
  b.binary = runner;
  b.runner = runner == "ctest"    ? RunnerKind::kCtest
             : runner == "pytest" ? RunnerKind::kPytest
             : runner == "cargo"  ? RunnerKind::kCargo
                                  : RunnerKind::kCommand;
  return true;
}

void parse_level(Checker& c, const std::string& fid, const YAML::Node& key, const YAML::Node& body,
                 Falsifier& f) {
  const std::string name = key.Scalar();
  const auto st = status_from_name(name);
  if (!st || !is_test_level(*st)) {
    if (st) {
      c.error(key, fmt::format("'{}' is on the ladder but is not a level a falsifier can "
                               "declare tests for (levels: {})",
                               name, fmt::join(kLevelNames, ", ")));
    } else {
      const std::string near = nearest(name, kLevelNames);
      c.error(key, fmt::format("level '{}' of falsifier {} is not on the ladder{} (levels: {})",
                               name, fid, near.empty() ? "" : "; did you mean '" + near + "'?",
                               fmt::join(kLevelNames, ", ")));
    }
    return;
  }
  LevelSpec lv;
  lv.level = *st;
  lv.pos = c.pos(key);
  const std::string what = fmt::format("level {} of falsifier {}", name, fid);
  if (!c.check_map(body, what, kLevelKeys, {"tests"})) return;
  const YAML::Node tests = body["tests"];
  if (tests && (!tests.IsSequence() || tests.size() == 0)) {
    c.error(tests,
            fmt::format("'tests' in {} must be a non-empty list of binary:Suite.Test", what));
  } else if (tests) {
    for (const auto& t : tests) {
      TestBinding b;
      if (parse_binding(c, t, b)) lv.tests.push_back(std::move(b));
    }
  }
  lv.fixtures = c.str_list(body, "fixtures", what);
  // DESIGN.md: DISCHARGED means repeated with the same verdict; two runs unless told.
  const int default_runs = lv.level == Status::DISCHARGED ? 2 : 1;
  lv.runs = c.positive_int(body, "runs", what, default_runs);
  lv.machines = c.positive_int(body, "machines", what, 1);
  if (lv.level == Status::DISCHARGED && lv.runs < 2 && lv.machines < 2) {
    c.error(body["runs"] ? body["runs"] : key,
            fmt::format("{} asks for one run on one machine; DISCHARGED requires a repeated "
                        "verdict (runs >= 2 or machines >= 2)",
                        what));
  }
  f.levels.push_back(std::move(lv));
}

// Every must_kill entry names a CPU-or-GPU bug of the planted-bug catalogue (mutants/).
void check_must_kill(Checker& c, const Falsifier& f, const std::string& what) {
  std::vector<std::string> names;
  for (const auto& i : mutant::catalogue()) {
    if (i.bug != mutant::Bug::None) names.emplace_back(i.name);
  }
  for (size_t i = 0; i < f.must_kill.size(); ++i) {
    const mutant::Info* bug = mutant::find(f.must_kill[i]);
    if (bug != nullptr && bug->bug != mutant::Bug::None) continue;
    const std::string near = nearest(f.must_kill[i], names);
    c.error(
        f.must_kill_pos[i],
        fmt::format("must_kill of {} names '{}', which is not a planted bug{} (pv mutants "
                    "--list prints the catalogue)",
                    what, f.must_kill[i], near.empty() ? "" : "; did you mean '" + near + "'?"));
  }
}

void parse_falsifier(Checker& c, const YAML::Node& n, Contract& out) {
  const std::string named = n.IsMap() && n["id"] && n["id"].IsScalar()
                                ? "falsifier " + n["id"].Scalar()
                                : std::string("a falsifier");
  if (!c.check_map(n, named, kFalsifierKeys,
                   {"id", "rule", "prediction", "if_fails", "status", "levels"})) {
    return;
  }
  Falsifier f;
  f.pos = c.pos(n);
  f.id = c.str(n, "id", "a falsifier", true);
  if (n["id"]) f.pos = c.pos(n["id"]);
  if (!f.id.empty() && !is_id(f.id)) {
    c.error(n["id"],
            fmt::format("falsifier id '{}' may only use letters, digits, '.', '_' and '-'", f.id));
  }
  const std::string what = "falsifier " + (f.id.empty() ? std::string("(no id)") : f.id);
  f.rule = c.str(n, "rule", what, true);
  f.prediction = c.str(n, "prediction", what, true);
  f.if_fails = c.str(n, "if_fails", what, true);
  f.inputs = c.str_list(n, "inputs", what, &f.input_pos);
  f.thresholds = parse_thresholds(c, n, what);
  f.must_kill = c.str_list(n, "must_kill", what, &f.must_kill_pos);
  check_must_kill(c, f, what);
  const std::string claimed = c.str(n, "status", what, true);
  bool claimed_ok = false;
  if (n["status"]) f.status_pos = c.pos(n["status"]);
  if (!claimed.empty()) {
    const auto st = status_from_name(claimed);
    if (!st) {
      const std::string near = nearest(claimed, kClaimNames);
      c.error(n["status"],
              fmt::format("claimed status '{}' of {} is not on the ladder{} "
                          "(FALSIFIED < BLOCKER_FIXTURE_ABSENT < "
                          "PARTIAL_ALGORITHM_LEVEL < FUNCTIONAL < DISCHARGED)",
                          claimed, what, near.empty() ? "" : "; did you mean '" + near + "'?"));
    } else if (*st == Status::FALSIFIED) {
      c.error(n["status"], fmt::format("{} claims FALSIFIED; a refuted claim is fixed or "
                                       "retired, not recorded as a status",
                                       what));
    } else {
      f.claimed = *st;
      claimed_ok = true;
    }
  }
  const YAML::Node levels = n["levels"];
  if (levels) {
    if (!levels.IsMap() || levels.size() == 0) {
      c.error(levels, fmt::format("'levels' of {} must map level names ({}) to their tests", what,
                                  fmt::join(kLevelNames, ", ")));
    } else {
      for (auto it = levels.begin(); it != levels.end(); ++it) {
        parse_level(c, f.id, it->first, it->second, f);
      }
      std::sort(f.levels.begin(), f.levels.end(),
                [](const LevelSpec& a, const LevelSpec& b) { return a.level < b.level; });
      f.levels.erase(
          std::unique(f.levels.begin(), f.levels.end(),
                      [](const LevelSpec& a, const LevelSpec& b) { return a.level == b.level; }),
          f.levels.end());
    }
  }
  if (claimed_ok && f.claimed != Status::BLOCKER_FIXTURE_ABSENT && !f.levels.empty()) {
    const bool declared = std::any_of(f.levels.begin(), f.levels.end(),
                                      [&](const LevelSpec& l) { return l.level == f.claimed; });
    if (!declared) {
      c.error(n["status"], fmt::format("{} claims {} but declares no tests for that level", what,
                                       status_name(f.claimed)));
    }
  }
  out.falsifiers.push_back(std::move(f));
}

}  // namespace

std::string_view runner_name(RunnerKind k) {
  switch (k) {
    case RunnerKind::kCtest:
      return "ctest";
    case RunnerKind::kPytest:
      return "pytest";
    case RunnerKind::kCargo:
      return "cargo";
    case RunnerKind::kCommand:
      return "command";
    case RunnerKind::kGtest:
      break;
  }
  return "gtest";
}

std::string TestBinding::key() const {
  // NUL-separated: no YAML scalar field can forge a boundary.
  std::string k;
  const auto add = [&k](char tag, const std::string& v) {
    k += '\0';
    k += tag;
    k += v;
  };
  add('r', std::string(runner_name(runner)));
  add('b', binary);
  add('t', test);
  add('c', cwd);
  add('d', dir);
  for (const auto& a : argv) add('v', a);
  for (const auto& a : args) add('a', a);
  for (const auto& [n, v] : env) add('e', n + "=" + v);
  return k;
}

std::string Threshold::describe() const {
  return fmt::format("{} {} {}", metric, upper ? "<=" : ">=", text);
}

namespace {

// A semver number: "0" or digits without a leading zero.
bool semver_number(std::string_view s) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// Dot-separated non-empty identifiers of [0-9A-Za-z-].
bool semver_identifiers(std::string_view s) {
  size_t start = 0;
  for (size_t k = 0; k <= s.size(); ++k) {
    if (k == s.size() || s[k] == '.') {
      if (k == start) return false;
      start = k + 1;
    } else if (!std::isalnum(static_cast<unsigned char>(s[k])) && s[k] != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

// Parsed by hand, in one pass: std::regex recurses per character and overflowed the stack
// on a version string of 50 KB.
bool is_semver(std::string_view v) {
  if (v.size() > 256) return false;
  std::string_view build, pre;
  if (const size_t plus = v.find('+'); plus != std::string_view::npos) {
    build = v.substr(plus + 1);
    if (!semver_identifiers(build)) return false;
    v = v.substr(0, plus);
  }
  if (const size_t dash = v.find('-'); dash != std::string_view::npos) {
    pre = v.substr(dash + 1);
    if (!semver_identifiers(pre)) return false;
    v = v.substr(0, dash);
  }
  const size_t a = v.find('.');
  if (a == std::string_view::npos) return false;
  const size_t b = v.find('.', a + 1);
  if (b == std::string_view::npos) return false;
  return semver_number(v.substr(0, a)) && semver_number(v.substr(a + 1, b - a - 1)) &&
         semver_number(v.substr(b + 1));
}

LoadedContract load_contract_text(const std::string& path, const std::string& text,
                                  Diagnostics& diags) {
  LoadedContract out;
  Contract& k = out.contract;
  k.file = path;
  k.root = find_source_root(path);
  std::error_code ec;
  k.rel_file = fs::relative(fs::absolute(path, ec), k.root, ec).lexically_normal().string();
  if (ec || k.rel_file.empty()) k.rel_file = path;
  k.sha256 = sha256_hex(text);
  Checker c(path, diags);
  const std::optional<YAML::Node> doc = contract_yaml::read_document(c, path, text);
  if (!doc) return out;
  YAML::Node root = *doc;
  if (c.check_map(root, "the contract", kTopKeys, {"metadata", "falsifiers"})) {
    if (root["metadata"]) parse_metadata(c, root["metadata"], k);
    if (root["equations"]) parse_equations(c, root["equations"], k);
    if (root["proof_obligations"]) parse_obligations(c, root["proof_obligations"], k);
    k.thresholds = c.scalar_map(root, "thresholds", "the contract");
    const YAML::Node fs_node = root["falsifiers"];
    if (fs_node) {
      if (!fs_node.IsSequence() || fs_node.size() == 0) {
        c.error(fs_node, "falsifiers must be a non-empty list");
      } else {
        for (const auto& f : fs_node) parse_falsifier(c, f, k);
      }
    }
    std::set<std::string> fids;
    for (const auto& f : k.falsifiers) fids.insert(f.id);
    if (const YAML::Node po = root["proof_obligations"]; po && po.IsSequence()) {
      size_t i = 0;
      for (const auto& o : po) {
        const YAML::Node at = o.IsMap() ? o["applies_to"] : YAML::Node();
        if (at && at.IsSequence()) {
          for (const auto& a : at) {
            if (a.IsScalar() && !fids.count(a.Scalar())) {
              c.error(a, fmt::format("proof obligation applies to '{}', which is no falsifier "
                                     "of this contract",
                                     a.Scalar()));
            }
          }
        }
        ++i;
      }
    }
  }
  out.ok = c.errors() == 0;
  return out;
}

}  // namespace pv::harness
