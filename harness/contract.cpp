#include "harness/contract.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

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

class Checker {
 public:
  Checker(std::string file, Diagnostics& diags) : file_(std::move(file)), diags_(diags) {}

  SourcePos pos(const YAML::Node& n) const {
    const YAML::Mark m = n.Mark();
    if (m.line < 0) return {file_, 0, 0};
    return {file_, m.line + 1, m.column + 1};
  }
  void error(const YAML::Node& n, std::string msg) { error(pos(n), std::move(msg)); }
  void error(SourcePos p, std::string msg) {
    ++errors_;
    diags_.push_back({std::move(p), std::move(msg)});
  }
  int errors() const { return errors_; }

  // Every map in the document, recursively: yaml-cpp keeps duplicate keys in the node
  // (lookups silently return the first), so they are found by walking the pairs.
  void find_duplicate_keys(const YAML::Node& n) {
    if (n.IsMap()) {
      std::map<std::string, YAML::Node> seen;
      for (auto it = n.begin(); it != n.end(); ++it) {
        if (it->first.IsScalar()) {
          const std::string k = it->first.Scalar();
          auto [prev, inserted] = seen.emplace(k, it->first);
          if (!inserted) {
            const SourcePos p = pos(prev->second);
            error(it->first, fmt::format("duplicate key '{}' (first defined at line {}); YAML "
                                         "would silently keep only one of them",
                                         k, p.line));
          }
        }
        find_duplicate_keys(it->second);
      }
    } else if (n.IsSequence()) {
      for (const auto& e : n) find_duplicate_keys(e);
    }
  }

  // Checks that `n` is a map whose keys are all allowed and that the required ones are
  // present. Returns false when `n` is not a map at all.
  bool check_map(const YAML::Node& n, std::string_view what,
                 const std::vector<std::string>& allowed,
                 const std::vector<std::string>& required) {
    if (!n.IsMap()) {
      error(n, fmt::format("{} must be a mapping of keys to values", what));
      return false;
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->first.IsScalar()) {
        error(it->first, fmt::format("{} has a key that is not a plain name", what));
        continue;
      }
      const std::string k = it->first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
      const std::string near = nearest(k, allowed);
      if (!near.empty()) {
        error(it->first, fmt::format("unknown key '{}' in {}; did you mean '{}'?", k, what, near));
      } else {
        error(it->first, fmt::format("unknown key '{}' in {} (allowed: {})", k, what,
                                     fmt::join(allowed, ", ")));
      }
    }
    for (const auto& r : required) {
      if (!n[r]) error(n, fmt::format("{} is missing the required key '{}'", what, r));
    }
    return true;
  }

  // A non-empty scalar string, or "" (with an error when required or of the wrong type).
  std::string str(const YAML::Node& map, const std::string& key, std::string_view what,
                  bool required) {
    const YAML::Node v = map[key];
    if (!v) return {};
    if (!v.IsScalar() || v.Scalar().empty()) {
      if (required || !v.IsNull()) {
        error(v.IsNull() ? map : v,
              fmt::format("'{}' in {} must be a non-empty text value", key, what));
      }
      return {};
    }
    return v.Scalar();
  }

  std::vector<std::string> str_list(const YAML::Node& map, const std::string& key,
                                    std::string_view what,
                                    std::vector<SourcePos>* positions = nullptr) {
    std::vector<std::string> out;
    const YAML::Node v = map[key];
    if (!v || v.IsNull()) return out;
    if (!v.IsSequence()) {
      error(v, fmt::format("'{}' in {} must be a list", key, what));
      return out;
    }
    for (const auto& e : v) {
      if (!e.IsScalar() || e.Scalar().empty()) {
        error(e,
              fmt::format("every entry of '{}' in {} must be a non-empty text value", key, what));
        continue;
      }
      out.push_back(e.Scalar());
      if (positions) positions->push_back(pos(e));
    }
    return out;
  }

  int positive_int(const YAML::Node& map, const std::string& key, std::string_view what, int dflt) {
    const YAML::Node v = map[key];
    if (!v) return dflt;
    int x = 0;
    bool ok = v.IsScalar() && !v.Scalar().empty() && v.Scalar().size() <= 6 &&
              std::all_of(v.Scalar().begin(), v.Scalar().end(),
                          [](char ch) { return ch >= '0' && ch <= '9'; });
    if (ok) x = std::stoi(v.Scalar());
    if (!ok || x < 1) {
      error(v, fmt::format("'{}' in {} must be a whole number of at least 1", key, what));
      return dflt;
    }
    return x;
  }

  std::map<std::string, std::string> scalar_map(const YAML::Node& map, const std::string& key,
                                                std::string_view what) {
    std::map<std::string, std::string> out;
    const YAML::Node v = map[key];
    if (!v || v.IsNull()) return out;
    if (!v.IsMap()) {
      error(v, fmt::format("'{}' in {} must be a mapping of names to values", key, what));
      return out;
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it->first.IsScalar() || !it->second.IsScalar()) {
        error(it->first, fmt::format("'{}' in {} maps names to single values", key, what));
        continue;
      }
      out[it->first.Scalar()] = it->second.Scalar();
    }
    return out;
  }

  // A falsifier's thresholds (see Threshold in contract.h): every entry states its
  // direction, by the key's suffix or by max/min; there is no default direction.
  std::vector<Threshold> thresholds(const YAML::Node& map, std::string_view what) {
    std::vector<Threshold> out;
    const YAML::Node v = map["thresholds"];
    if (!v || v.IsNull()) return out;
    if (!v.IsMap()) {
      error(v, fmt::format("'thresholds' in {} must be a mapping of names to bounds", what));
      return out;
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!it->first.IsScalar() || it->first.Scalar().empty()) {
        error(it->first,
              fmt::format("'thresholds' in {} has a key that is not a plain name", what));
        continue;
      }
      Threshold t;
      t.name = it->first.Scalar();
      t.pos = pos(it->first);
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
          error(it->first,
                fmt::format("{} says no direction: name it <metric>_max or <metric>_min (it then "
                            "bounds the metric of that name), or write {{metric: <name>, max: "
                            "<x>}} or {{metric: <name>, min: <x>}}",
                            where));
          continue;
        }
        t.metric = t.name;
        value = body;
      } else if (body.IsMap()) {
        if (!check_map(body, where, kThresholdKeys, {"metric"})) continue;
        if (body["max"] && body["min"]) {
          error(body,
                fmt::format("{} gives both max and min; write one threshold per bound", where));
          continue;
        }
        if (!body["max"] && !body["min"]) {
          error(body, fmt::format("{} needs a direction: max: <x> (metric <= x) or min: <x> "
                                  "(metric >= x)",
                                  where));
          continue;
        }
        t.metric = str(body, "metric", where, true);
        if (t.metric.empty()) continue;
        t.upper = static_cast<bool>(body["max"]);
        value = t.upper ? body["max"] : body["min"];
      } else {
        error(it->first,
              fmt::format("{} must be a number or {{metric: <name>, max|min: <x>}}", where));
        continue;
      }
      const std::string text = value.IsScalar() ? value.Scalar() : std::string();
      char* end = nullptr;
      const double x = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
      if (text.empty() || end == nullptr || *end != '\0' || !std::isfinite(x)) {
        error(value, fmt::format("{} must bound by a finite number, not '{}'", where, text));
        continue;
      }
      t.bound = x;
      t.text = text;
      out.push_back(std::move(t));
    }
    return out;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  Diagnostics& diags_;
  int errors_ = 0;
};

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
      const std::string s = t.IsScalar() ? t.Scalar() : std::string();
      const auto colon = s.find(':');
      TestBinding b;
      b.pos = c.pos(t);
      if (colon != std::string::npos) {
        b.binary = s.substr(0, colon);
        b.test = s.substr(colon + 1);
      }
      if (colon == std::string::npos || b.test.empty() || b.test.find('.') == std::string::npos) {
        c.error(t, fmt::format("bound test '{}' must have the form binary:Suite.Test "
                               "(e.g. pv_falsifiers:GqaHeadMapping.Falsify001_Property)",
                               s));
        continue;
      }
      if (!is_binary_name(b.binary)) {
        c.error(t, fmt::format("test binary '{}' must be a plain file name in the binary "
                               "directory (no paths, no shell syntax)",
                               b.binary));
        continue;
      }
      if (b.test.find_first_of(" \t:-") != std::string::npos) {
        c.error(t, fmt::format("test name '{}' may not contain spaces, ':' or '-' (those are "
                               "gtest filter syntax)",
                               b.test));
        continue;
      }
      lv.tests.push_back(std::move(b));
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
  f.thresholds = c.thresholds(n, what);
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

std::string Threshold::describe() const {
  return fmt::format("{} {} {}", metric, upper ? "<=" : ">=", text);
}

bool is_semver(std::string_view v) {
  static const std::regex re(
      "(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)"
      "(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?");
  return std::regex_match(v.begin(), v.end(), re);
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  // A typo is a few edits away relative to the word's length.
  const size_t limit = std::max<size_t>(2, std::max(word.size(), best.size()) / 3);
  return best_d <= limit ? best : std::string();
}

std::string find_source_root(const std::string& path) {
  std::error_code ec;
  fs::path dir = fs::absolute(path, ec).parent_path();
  for (fs::path d = dir; !d.empty(); d = d.parent_path()) {
    if (fs::exists(d / ".git", ec)) return d.lexically_normal().string();
    if (d == d.root_path()) break;
  }
  // A copy of the tree without .git (e.g. carried to a GPU machine): the project root
  // is the nearest directory holding both CMakeLists.txt and contracts/.
  for (fs::path d = dir; !d.empty(); d = d.parent_path()) {
    if (fs::exists(d / "CMakeLists.txt", ec) && fs::is_directory(d / "contracts", ec)) {
      return d.lexically_normal().string();
    }
    if (d == d.root_path()) break;
  }
  return dir.lexically_normal().string();
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
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    c.error(SourcePos{path, e.mark.line + 1, e.mark.column + 1}, "YAML syntax error: " + e.msg);
    return out;
  } catch (const YAML::Exception& e) {
    c.error(SourcePos{path, 0, 0}, std::string("cannot read YAML: ") + e.what());
    return out;
  }
  if (!root || root.IsNull()) {
    c.error(SourcePos{path, 0, 0}, "the contract is empty");
    return out;
  }
  c.find_duplicate_keys(root);
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

LoadedContract load_contract(const std::string& path, Diagnostics& diags) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.push_back({{path, 0, 0}, "cannot open the contract file"});
    return {};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_contract_text(path, ss.str(), diags);
}

Contract load_contract_lenient(const std::string& path) {
  Diagnostics ignored;
  try {
    return load_contract(path, ignored).contract;
  } catch (const YAML::Exception&) {
    // The checker guards every access it makes; should a document still surprise
    // yaml-cpp, a describing reader treats it like any other unreadable file.
    return {};
  }
}

std::string peek_contract_id(const std::string& path) {
  try {
    const YAML::Node root = YAML::LoadFile(path);
    if (root.IsMap() && root["metadata"] && root["metadata"].IsMap() && root["metadata"]["id"] &&
        root["metadata"]["id"].IsScalar()) {
      return root["metadata"]["id"].Scalar();
    }
  } catch (const YAML::Exception&) {
  }
  return {};
}

}  // namespace pv::harness
