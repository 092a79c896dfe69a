// Reading pv-evidence-v1 bundles for the merge/gc/amend/report tools. The bundle itself is
// read by the one bundle reader (parse_bundle, harness/evidence.h), which is strict about
// the fields every bundle has; this adds where the bundle was read, the machine it came
// from, and the DISCHARGED requirements of its contract.
#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>

#include "harness/contract.h"
#include "harness/evidence_merge.h"
#include "harness/file_bytes.h"
#include "harness/signing.h"
#include "harness/source_tree.h"

namespace pv::harness {
namespace fs = std::filesystem;

namespace {

// Contracts read once per directory scan, by path.
using ContractCache = std::map<std::string, Contract>;

// The DISCHARGED level of the falsifier as its contract declares it, through the contract
// loader with its diagnostics ignored: a missing or unreadable contract simply means "no
// extra requirement known", and the staleness check reports it.
const LevelSpec* discharged_level(const fs::path& contract_path, const std::string& falsifier_id,
                                  ContractCache& cache) {
  const std::string key = contract_path.string();
  auto it = cache.find(key);
  if (it == cache.end()) {
    std::error_code ec;
    Contract k;
    if (fs::is_regular_file(contract_path, ec)) k = load_contract_lenient(key);
    it = cache.emplace(key, std::move(k)).first;
  }
  for (const auto& f : it->second.falsifiers) {
    if (f.id != falsifier_id) continue;
    for (const auto& lv : f.levels) {
      if (lv.level == Status::DISCHARGED) return &lv;
    }
    return nullptr;
  }
  return nullptr;
}

BundleRecord make_record(const fs::path& file, const std::string& bytes, EvidenceBundle parsed,
                         const fs::path& source_root, ContractCache& cache) {
  BundleRecord b;
  static_cast<EvidenceBundle&>(b) = std::move(parsed);
  b.path = file;
  b.file_sha256 = sha256_hex(bytes);
  std::string fp = b.fingerprint;
  if (fp.empty()) fp = b.env.machine_id;
  if (fp.empty()) {
    // Machines are told apart by what makes their results differ (hardware, driver,
    // compiler) and by host name, so two identical boxes still count as two machines.
    std::string ident;
    for (const std::string* k : {&b.env.cpu, &b.env.gpu, &b.env.driver, &b.env.cuda_runtime,
                                 &b.env.compiler, &b.env.host}) {
      ident += *k;
      ident += '\n';
    }
    fp = sha256_hex(ident).substr(0, 12);
  }
  b.machine = fp;
  b.signer_key_id = verified_key_id(nlohmann::json::parse(bytes, nullptr, false));
  b.machine_desc = b.env.host;
  if (!b.env.gpu.empty()) b.machine_desc += " / " + b.env.gpu;
  // Requirements: recorded in the bundle if the harness wrote them, else from the contract.
  if (!b.runs_required && !b.machines_required && !b.contract_file.empty() &&
      contract_file_outside_root(b.contract_file, source_root).empty()) {
    const fs::path cp = fs::path(b.contract_file).is_absolute() ? fs::path(b.contract_file)
                                                                : source_root / b.contract_file;
    if (const LevelSpec* d = discharged_level(cp, b.falsifier_id, cache)) {
      b.runs_required = d->runs;
      b.machines_required = d->machines;
    }
  }
  if (b.marked_stale) b.stale_reason = "marked stale in the bundle";
  return b;
}

std::optional<BundleRecord> read_if_bundle(const fs::path& file, const fs::path& source_root,
                                           ContractCache& cache) {
  std::string bytes = read_file_bytes(file);
  std::optional<EvidenceBundle> parsed = parse_bundle(file.string(), bytes);
  if (!parsed) return std::nullopt;
  return make_record(file, bytes, std::move(*parsed), source_root, cache);
}

}  // namespace

std::string contract_file_outside_root(const std::string& file, const fs::path& root) {
  const fs::path p(file);
  if (p.is_absolute()) return "is an absolute path";
  for (const auto& part : p.lexically_normal()) {
    if (part == "..") return "leaves the source root through '..'";
  }
  std::error_code ec;
  const fs::path real_root = fs::weakly_canonical(root, ec);
  if (ec) return "cannot be resolved: " + ec.message();
  const fs::path real = fs::weakly_canonical(root / p, ec);
  if (ec) return "cannot be resolved: " + ec.message();
  const fs::path rel = real.lexically_relative(real_root);
  if (rel.empty() || *rel.begin() == "..") {
    return "resolves (through a link) outside the source root";
  }
  return "";
}

BundleRecord read_bundle(const fs::path& file, const fs::path& source_root) {
  ContractCache cache;
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
  ContractCache cache;
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
