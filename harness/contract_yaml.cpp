// Reading a contract's YAML (see contract_yaml.h): from bytes to one document, and typed
// access to its nodes with every problem at file:line:col; the file-level entry points of
// contract.h (load_contract, load_contract_lenient, peek_contract_id, find_source_root) and
// the "did you mean" helpers (edit_distance, nearest). What the document may contain is
// contract.cpp's business.
#include "harness/contract_yaml.h"

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <sstream>

#include "harness/contract.h"
#include "harness/input_limits.h"

namespace pv::harness {
namespace contract_yaml {

SourcePos Checker::pos(const YAML::Node& n) const {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return {file_, 0, 0};
  return {file_, m.line + 1, m.column + 1};
}

void Checker::error(SourcePos p, std::string msg) {
  ++errors_;
  diags_.push_back({std::move(p), std::move(msg)});
}

void Checker::find_duplicate_keys(const YAML::Node& n) {
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

bool Checker::check_map(const YAML::Node& n, std::string_view what,
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
      error(it->first,
            fmt::format("unknown key '{}' in {} (allowed: {})", k, what, fmt::join(allowed, ", ")));
    }
  }
  for (const auto& r : required) {
    if (!n[r]) error(n, fmt::format("{} is missing the required key '{}'", what, r));
  }
  return true;
}

std::string Checker::str(const YAML::Node& map, const std::string& key, std::string_view what,
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

std::vector<std::string> Checker::str_list(const YAML::Node& map, const std::string& key,
                                           std::string_view what,
                                           std::vector<SourcePos>* positions) {
  std::vector<std::string> out;
  const YAML::Node v = map[key];
  if (!v || v.IsNull()) return out;
  if (!v.IsSequence()) {
    error(v, fmt::format("'{}' in {} must be a list", key, what));
    return out;
  }
  for (const auto& e : v) {
    if (!e.IsScalar() || e.Scalar().empty()) {
      error(e, fmt::format("every entry of '{}' in {} must be a non-empty text value", key, what));
      continue;
    }
    out.push_back(e.Scalar());
    if (positions) positions->push_back(pos(e));
  }
  return out;
}

int Checker::positive_int(const YAML::Node& map, const std::string& key, std::string_view what,
                          int dflt) {
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

std::map<std::string, std::string> Checker::scalar_map(const YAML::Node& map,
                                                       const std::string& key,
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

namespace {

// Deepest nesting of maps and lists a contract may use (the schema needs 5).
constexpr int kMaxYamlDepth = 64;

// line:col (1-based) of byte `at` of `text`.
SourcePos byte_pos(const std::string& path, std::string_view text, size_t at) {
  int line = 1, col = 1;
  for (size_t k = 0; k < at && k < text.size(); ++k) {
    if (text[k] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(text[k]) & 0xC0) != 0x80) {
      ++col;  // columns count characters, not UTF-8 continuation bytes
    }
  }
  return {path, line, col};
}

// Walks the YAML events without building nodes: an alias (whose expansion is what makes a
// 1 KB "billion laughs" document cost minutes), nesting past kMaxYamlDepth, and a second
// document (which YAML::Load would silently ignore) are refused here, at their line:col.
class YamlGuard : public YAML::EventHandler {
 public:
  explicit YamlGuard(std::string path) : path_(std::move(path)) {}
  struct Refused {
    SourcePos pos;
    std::string message;
  };

  void OnDocumentStart(const YAML::Mark& m) override {
    if (++documents_ > 1) {
      throw Refused{at(m), "a second YAML document: a contract file holds exactly one"};
    }
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override {
    throw Refused{at(m), "YAML aliases (*name) are not allowed in contracts: write the value out"};
  }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    enter(m);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    enter(m);
  }
  void OnMapEnd() override { --depth_; }

 private:
  SourcePos at(const YAML::Mark& m) const { return {path_, m.line + 1, m.column + 1}; }
  void enter(const YAML::Mark& m) {
    if (++depth_ > kMaxYamlDepth) {
      throw Refused{at(m),
                    fmt::format("lists and maps nested deeper than {} levels", kMaxYamlDepth)};
    }
  }
  std::string path_;
  int depth_ = 0;
  int documents_ = 0;
};

// Byte-level and event-level checks before YAML::Load; false (with one diagnostic) when the
// text must not be loaded.
bool precheck_yaml(Checker& c, const std::string& path, const std::string& text) {
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    c.error(byte_pos(path, text, nul), fmt::format("NUL byte at byte {}", nul));
    return false;
  }
  if (const auto bad = first_invalid_utf8(text)) {
    c.error(byte_pos(path, text, *bad), fmt::format("invalid UTF-8 at byte {}", *bad));
    return false;
  }
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    YamlGuard guard(path);
    if (parser.HandleNextDocument(guard)) parser.HandleNextDocument(guard);
  } catch (const YamlGuard::Refused& r) {
    c.error(r.pos, r.message);
    return false;
  } catch (const YAML::Exception&) {
    // Syntax errors are reported by YAML::Load below, with their position.
  }
  return true;
}

}  // namespace

std::optional<YAML::Node> read_document(Checker& c, const std::string& path,
                                        const std::string& text) {
  if (!precheck_yaml(c, path, text)) return std::nullopt;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    c.error(SourcePos{path, e.mark.line + 1, e.mark.column + 1}, "YAML syntax error: " + e.msg);
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    c.error(SourcePos{path, 0, 0}, std::string("cannot read YAML: ") + e.what());
    return std::nullopt;
  }
  if (!root || root.IsNull()) {
    c.error(SourcePos{path, 0, 0}, "the contract is empty");
    return std::nullopt;
  }
  c.find_duplicate_keys(root);
  return root;
}

}  // namespace contract_yaml

namespace fs = std::filesystem;

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

LoadedContract load_contract(const std::string& path, Diagnostics& diags) {
  std::string text;
  try {
    text = read_regular_file(path, kMaxContractBytes);
  } catch (const std::exception& e) {
    // e.what() starts with the path; the diagnostic adds it again.
    std::string why = e.what();
    if (why.rfind(path + ": ", 0) == 0) why = why.substr(path.size() + 2);
    diags.push_back({{path, 0, 0}, "cannot read the contract file: " + why});
    return {};
  }
  return load_contract_text(path, text, diags);
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
  // Through the full loader: the same limits (size, aliases, documents) apply to a peek.
  return load_contract_lenient(path).id;
}

}  // namespace pv::harness
