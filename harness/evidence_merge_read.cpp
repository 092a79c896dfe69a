// Reading pv-evidence-v1 bundles for the merge/amend/report tools. Tolerant of fields it
// does not use (the harness core owns the bundle's full shape), strict about the ones it
// does: a bundle with a missing falsifier id or an off-ladder status is an error naming
// the file and the field, never silently skipped.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "harness/evidence_merge.h"
#include "harness/file_bytes.h"
#include "harness/source_tree.h"

namespace pv::harness {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string str_field(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

Status status_field(const json& obj, const char* key, const fs::path& file, const char* where) {
  std::string name = str_field(obj, key);
  auto s = status_from_name(name);
  if (!s) {
    throw std::runtime_error(file.string() + ": " + where + "." + key + " is '" + name +
                             "', not a ladder status");
  }
  return *s;
}

std::optional<int> positive_int(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  int v = it->get<int>();
  if (v < 1) return std::nullopt;
  return v;
}

// The DISCHARGED level's runs/machines as the contract states them. Read loosely: the
// strict schema check is the contract loader's job; here a missing or unreadable contract
// simply means "no extra requirement known", and the staleness check reports it.
struct Requirements {
  std::optional<int> runs, machines;
};

Requirements contract_requirements(const fs::path& contract_path, const std::string& falsifier_id,
                                   std::map<std::string, YAML::Node>& cache) {
  Requirements req;
  std::string key = contract_path.string();
  auto it = cache.find(key);
  if (it == cache.end()) {
    YAML::Node doc;
    try {
      if (fs::is_regular_file(contract_path)) doc = YAML::LoadFile(key);
    } catch (const YAML::Exception&) {
      doc = YAML::Node();
    }
    it = cache.emplace(key, doc).first;
  }
  const YAML::Node& doc = it->second;
  if (!doc.IsMap() || !doc["falsifiers"] || !doc["falsifiers"].IsSequence()) return req;
  for (const auto& f : doc["falsifiers"]) {
    if (!f.IsMap() || !f["id"] || f["id"].as<std::string>("") != falsifier_id) continue;
    YAML::Node d = f["levels"] && f["levels"].IsMap() ? f["levels"]["DISCHARGED"] : YAML::Node();
    if (!d || !d.IsMap()) return req;
    if (d["runs"]) {
      int v = d["runs"].as<int>(0);
      if (v >= 1) req.runs = v;
    }
    if (d["machines"]) {
      int v = d["machines"].as<int>(0);
      if (v >= 1) req.machines = v;
    }
    return req;
  }
  return req;
}

BundleRecord parse_bundle(const fs::path& file, const std::string& bytes, const json& j,
                          const fs::path& source_root, std::map<std::string, YAML::Node>& cache) {
  BundleRecord b;
  b.path = file;
  b.file_sha256 = sha256_hex(bytes);
  const json& c = j.contains("contract") ? j["contract"] : json::object();
  const json& f = j.contains("falsifier") ? j["falsifier"] : json::object();
  const json& env = j.contains("environment") ? j["environment"] : json::object();
  b.contract_id = str_field(c, "id");
  b.contract_version = str_field(c, "version");
  b.contract_file = str_field(c, "file");
  b.contract_sha256 = str_field(c, "sha256");
  b.falsifier_id = str_field(f, "id");
  if (b.falsifier_id.empty()) throw std::runtime_error(file.string() + ": falsifier.id missing");
  if (b.contract_id.empty()) throw std::runtime_error(file.string() + ": contract.id missing");
  b.claimed = status_field(f, "claimed", file, "falsifier");
  b.earned = status_field(f, "earned", file, "falsifier");
  b.capped_by = str_field(f, "capped_by");
  if (auto r = positive_int(f, "runs")) b.runs = *r;
  if (j.contains("tests") && j["tests"].is_array()) {
    for (const auto& t : j["tests"]) {
      BundleTest bt;
      bt.name = str_field(t, "binary").empty()
                    ? str_field(t, "name")
                    : str_field(t, "binary") + ":" + str_field(t, "name");
      bt.result = str_field(t, "result");
      bt.skip_reason = str_field(t, "skip_reason");
      bt.level = str_field(t, "level");
      if (auto r = positive_int(t, "runs")) bt.runs = *r;
      bt.credited = !str_field(t, "credited_from").empty();
      if (t.contains("metrics") && t["metrics"].is_object()) {
        for (auto it = t["metrics"].begin(); it != t["metrics"].end(); ++it) {
          if (it.value().is_number()) bt.metrics[it.key()] = it.value().get<double>();
        }
      }
      b.tests.push_back(std::move(bt));
    }
  }
  b.inputs_digest = str_field(env, "inputs_digest");
  if (env.is_object() && env.contains("inputs") && env["inputs"].is_array()) {
    b.has_inputs = true;
    for (const auto& g : env["inputs"]) {
      if (g.is_string()) b.inputs.push_back(g.get<std::string>());
    }
  }
  b.git_commit = str_field(env, "git_commit");
  b.git_dirty = env.is_object() && env.value("git_dirty", false);
  b.generated_at = str_field(j, "generated_at");
  std::string fp = str_field(env, "fingerprint");
  if (fp.empty()) fp = str_field(env, "machine_id");
  if (fp.empty()) {
    // Machines are told apart by what makes their results differ (hardware, driver,
    // compiler) and by host name, so two identical boxes still count as two machines.
    std::string ident;
    for (const char* k : {"cpu", "gpu", "driver", "cuda_runtime", "compiler", "host"}) {
      ident += str_field(env, k);
      ident += '\n';
    }
    fp = sha256_hex(ident).substr(0, 12);
  }
  b.machine = fp;
  b.machine_desc = str_field(env, "host");
  if (std::string gpu = str_field(env, "gpu"); !gpu.empty()) b.machine_desc += " / " + gpu;
  // Requirements: recorded in the bundle if the harness wrote them, else from the contract.
  const json& req = f.contains("requires") ? f["requires"] : json::object();
  b.runs_required = positive_int(req, "runs");
  b.machines_required = positive_int(req, "machines");
  if (!b.runs_required && !b.machines_required && !b.contract_file.empty()) {
    fs::path cp = fs::path(b.contract_file).is_absolute() ? fs::path(b.contract_file)
                                                          : source_root / b.contract_file;
    Requirements r = contract_requirements(cp, b.falsifier_id, cache);
    b.runs_required = r.runs;
    b.machines_required = r.machines;
  }
  if (j.value("stale", false)) b.stale_reason = "marked stale in the bundle";
  return b;
}

std::optional<BundleRecord> read_if_bundle(const fs::path& file, const fs::path& source_root,
                                           std::map<std::string, YAML::Node>& cache) {
  std::string bytes = read_file_bytes(file);
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Not ours to judge unless it claims to be a bundle; a torn bundle is an error.
    if (bytes.find("pv-evidence-v1") != std::string::npos) {
      throw std::runtime_error(file.string() + ": not valid JSON (a torn evidence bundle?)");
    }
    return std::nullopt;
  }
  if (!j.is_object() || j.value("schema", "") != "pv-evidence-v1") return std::nullopt;
  return parse_bundle(file, bytes, j, source_root, cache);
}

}  // namespace

BundleRecord read_bundle(const fs::path& file, const fs::path& source_root) {
  std::map<std::string, YAML::Node> cache;
  auto b = read_if_bundle(file, source_root, cache);
  if (!b) throw std::runtime_error(file.string() + ": not a pv-evidence-v1 bundle");
  return *b;
}

std::vector<BundleRecord> read_bundles(const fs::path& dir, const fs::path& source_root) {
  if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + ": not a directory");
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().extension() != ".json") continue;
    if (e.path().filename().string().starts_with(".")) continue;  // temp files of atomic writes
    files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::map<std::string, YAML::Node> cache;
  std::vector<BundleRecord> out;
  for (const auto& f : files) {
    if (auto b = read_if_bundle(f, source_root, cache)) out.push_back(std::move(*b));
  }
  return out;
}

StalenessCheck contract_staleness_check(fs::path source_root) {
  auto cache = std::make_shared<std::map<std::string, std::string>>();
  auto tree = std::make_shared<SourceTree>(source_root.string());
  return [root = std::move(source_root), cache, tree](const BundleRecord& b) -> std::string {
    if (!b.stale_reason.empty()) return b.stale_reason;
    if (b.has_inputs && !b.contract_file.empty()) {
      if (!fs::is_regular_file(root / b.contract_file)) {
        return "contract " + b.contract_file + " no longer exists";
      }
      std::string now = tree->inputs_digest(b.inputs, b.contract_file);
      if (now == b.inputs_digest) return {};
      return "inputs changed since the run (inputs_digest " + b.inputs_digest.substr(0, 12) +
             " -> " + now.substr(0, 12) + ")";
    }
    if (b.contract_file.empty() || b.contract_sha256.empty()) return {};
    fs::path cp = fs::path(b.contract_file).is_absolute() ? fs::path(b.contract_file)
                                                          : root / b.contract_file;
    auto it = cache->find(cp.string());
    if (it == cache->end()) {
      std::string digest;
      if (fs::is_regular_file(cp)) digest = sha256_hex(read_file_bytes(cp));
      it = cache->emplace(cp.string(), digest).first;
    }
    if (it->second.empty()) return "contract " + b.contract_file + " no longer exists";
    if (it->second != b.contract_sha256) {
      return "contract " + b.contract_file + " changed since the run (sha256 " +
             b.contract_sha256.substr(0, 12) + " -> " + it->second.substr(0, 12) + ")";
    }
    return {};
  };
}

}  // namespace pv::harness
