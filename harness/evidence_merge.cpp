#include "harness/evidence_merge.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "harness/file_bytes.h"
#include "harness/signing.h"
#include "mutants/mutant.h"

namespace pv::harness {
namespace {

bool newer(const BundleRecord* a, const BundleRecord* b) {
  if (a->generated_at != b->generated_at) return a->generated_at > b->generated_at;
  return a->path > b->path;
}

// The newest bundle among `bs` (non-empty).
const BundleRecord* newest(const std::vector<const BundleRecord*>& bs) {
  const BundleRecord* best = bs.front();
  for (const auto* b : bs) {
    if (newer(b, best)) best = b;
  }
  return best;
}

// Every DISCHARGED-level test of the bundle ran on its machine (not credited), passed, and
// was repeated at least `runs` times.
bool discharged_tests_passed(const BundleRecord& b, int runs) {
  int n = 0;
  for (const auto& t : b.tests) {
    if (t.level != "DISCHARGED") continue;
    if (!t.credited_from.empty() || t.result != "passed" || t.runs < runs) return false;
    ++n;
  }
  return n > 0;
}

bool is_failure(const std::string& result) { return result != "passed" && result != "skipped"; }

// Tests that passed in one run and failed in another, as "name passed in a of n runs".
std::vector<std::string> flaky_tests(const std::vector<const BundleRecord*>& runs) {
  std::map<std::string, std::pair<int, int>> seen;  // name -> (passed, failed)
  for (const auto* b : runs) {
    for (const auto& t : b->tests) {
      auto& [p, f] = seen[t.bound_name()];
      if (t.result == "passed") ++p;
      if (is_failure(t.result)) ++f;
    }
  }
  std::vector<std::string> out;
  for (const auto& [name, pf] : seen) {
    if (pf.first > 0 && pf.second > 0) {
      out.push_back(
          fmt::format("{} passed in {} of {} runs", name, pf.first, pf.first + pf.second));
    }
  }
  return out;
}

MergedFalsifier merge_one(const std::vector<const BundleRecord*>& fresh) {
  MergedFalsifier m;
  std::set<std::string> digests;
  std::vector<MachineClaim> machines;
  Status lo = Status::DISCHARGED, hi = Status::FALSIFIED;
  for (const auto* b : fresh) {
    m.runs += b->runs;
    machines.push_back({b->machine, b->signer_key_id});
    if (!b->inputs_digest.empty()) digests.insert(b->inputs_digest);
    lo = std::min(lo, b->earned);
    hi = std::max(hi, b->earned);
    m.verdicts.emplace_back(b->machine, b->earned);
  }
  std::sort(m.verdicts.begin(), m.verdicts.end());
  m.machines = count_machines(machines).machines;
  m.inputs_digests.assign(digests.begin(), digests.end());

  std::vector<std::string> flaky = flaky_tests(fresh);
  // A run that was FALSIFIED (crash, timeout, failure) next to one that was not is a
  // verdict that differs between runs even when the test lists cannot show it.
  bool verdicts_disagree = lo == Status::FALSIFIED && hi != Status::FALSIFIED;
  m.flaky =
      (!flaky.empty() || verdicts_disagree) && !mutant::planted(mutant::Bug::MergeIgnoresFlaky);

  auto pick = [&](Status level) {
    std::vector<const BundleRecord*> at;
    for (const auto* b : fresh) {
      if (b->earned == level) at.push_back(b);
    }
    return newest(at);
  };
  const BundleRecord* chosen = nullptr;
  if (m.flaky) {
    m.earned = lo;
    chosen = pick(lo);
    std::string why = flaky.empty() ? fmt::format("verdicts {}..{} differ between runs",
                                                  status_name(lo), status_name(hi))
                                    : flaky.front();
    m.capped_by = "flaky: " + why;
  } else {
    m.earned = hi;
    chosen = pick(hi);
    m.capped_by = chosen->capped_by;
    // machines: N is the one requirement a single run cannot meet on its own: each
    // machine's grader sees only the evidence it had. Across merged runs, count the
    // distinct machines on which every DISCHARGED test ran here and passed (plus the
    // runs that already earned DISCHARGED).
    std::optional<int> need_runs, need_machines;
    for (const auto* b : fresh) {
      if (b->runs_required) need_runs = std::max(need_runs.value_or(0), *b->runs_required);
      if (b->machines_required) {
        need_machines = std::max(need_machines.value_or(0), *b->machines_required);
      }
    }
    if (hi == Status::FUNCTIONAL && need_machines && *need_machines > 1 && fresh.size() > 1) {
      std::vector<MachineClaim> ms;
      for (const auto* b : fresh) {
        if (b->earned == Status::DISCHARGED || discharged_tests_passed(*b, need_runs.value_or(1))) {
          ms.push_back({b->machine, b->signer_key_id});
        }
      }
      const MachineCount n = count_machines(ms);
      if (n.machines >= *need_machines) {
        m.earned = Status::DISCHARGED;
        m.capped_by.clear();
      } else if (n.machines > 0) {
        m.capped_by = fmt::format("machines: {} of {} at DISCHARGED over merged runs", n.machines,
                                  *need_machines);
        if (!n.note.empty()) m.capped_by += " (" + n.note + ")";
      }
    }
  }
  m.contract_id = chosen->contract_id;
  m.contract_version = chosen->contract_version;
  m.contract_file = chosen->contract_file;
  m.contract_sha256 = chosen->contract_sha256;
  m.falsifier_id = chosen->falsifier_id;
  m.claimed = newest(fresh)->claimed;
  m.bundle = chosen->path.string();
  m.bundle_sha256 = chosen->file_sha256;
  m.generated_at = chosen->generated_at;
  for (const auto& t : chosen->tests) {
    for (const auto& [k, v] : t.metrics) m.metrics.emplace(k, v);
  }
  return m;
}

}  // namespace

int Tally::total() const {
  int n = 0;
  for (int c : count) n += c;
  return n;
}

std::string tally_line(const Tally& t) {
  std::string out;
  for (int i = 4; i >= 0; --i) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {}", status_name(static_cast<Status>(i)), t.count[i]);
  }
  return out;
}

MergedIndex merge_bundles(const std::vector<BundleRecord>& bundles, const StalenessCheck& stale) {
  MergedIndex idx;
  idx.bundles_read = static_cast<int>(bundles.size());
  // Group by falsifier; the same bundle reached through two directories (a merged copy
  // next to its original) is one run, not two.
  std::map<std::pair<std::string, std::string>, std::vector<const BundleRecord*>> fresh, old;
  std::map<std::pair<std::string, std::string>, std::string> stale_why;
  std::set<std::string> seen_bytes;
  for (const auto& b : bundles) {
    if (!seen_bytes.insert(b.file_sha256).second) continue;
    auto key = std::make_pair(b.contract_id, b.falsifier_id);
    std::string why = stale ? stale(b) : b.stale_reason;
    if (why.empty()) {
      fresh[key].push_back(&b);
      idx.latest_generated_at = std::max(idx.latest_generated_at, b.generated_at);
    } else {
      old[key].push_back(&b);
      idx.stale_bundles.push_back(b.path.string() + ": " + why);
      stale_why[key] = why;
    }
  }
  std::sort(idx.stale_bundles.begin(), idx.stale_bundles.end());
  std::set<std::pair<std::string, std::string>> keys;
  for (const auto& [k, v] : fresh) keys.insert(k);
  for (const auto& [k, v] : old) keys.insert(k);
  for (const auto& key : keys) {
    MergedFalsifier m;
    if (auto it = fresh.find(key); it != fresh.end()) {
      m = merge_one(it->second);
    } else {
      const BundleRecord* b = newest(old[key]);
      m.contract_id = b->contract_id;
      m.contract_version = b->contract_version;
      m.contract_file = b->contract_file;
      m.contract_sha256 = b->contract_sha256;
      m.falsifier_id = b->falsifier_id;
      m.claimed = b->claimed;
      m.earned = b->earned;
      m.capped_by = b->capped_by;
      m.stale = true;
      m.stale_reason = stale_why[key];
      m.bundle = b->path.string();
      m.bundle_sha256 = b->file_sha256;
      m.generated_at = b->generated_at;
    }
    if (!m.stale) {
      idx.per_contract[m.contract_id].count[static_cast<int>(m.earned)]++;
      idx.total.count[static_cast<int>(m.earned)]++;
    }
    idx.falsifiers.push_back(std::move(m));
  }
  std::string canon;
  for (const auto& m : idx.falsifiers) {
    std::string digests;
    for (const auto& d : m.inputs_digests) digests += d + ",";
    canon +=
        fmt::format("{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}\n", m.contract_id, m.contract_version,
                    m.falsifier_id, status_name(m.claimed), status_name(m.earned), m.capped_by,
                    m.flaky ? "flaky" : "", m.stale ? "stale" : "", m.runs, m.machines, digests);
  }
  idx.digest = sha256_hex(canon);
  return idx;
}

std::string merged_index_json(const MergedIndex& index) {
  using nlohmann::ordered_json;
  auto tally_json = [](const Tally& t) {
    ordered_json o = ordered_json::object();
    for (int i = 0; i < 5; ++i) o[std::string(status_name(static_cast<Status>(i)))] = t.count[i];
    o["total"] = t.total();
    return o;
  };
  ordered_json j;
  j["schema"] = "pv-merged-index-v1";
  j["digest"] = index.digest;
  j["latest_generated_at"] = index.latest_generated_at;
  j["bundles_read"] = index.bundles_read;
  j["tally"] = tally_json(index.total);
  ordered_json per = ordered_json::object();
  for (const auto& [id, t] : index.per_contract) per[id] = tally_json(t);
  j["contracts"] = per;
  ordered_json fs = ordered_json::array();
  for (const auto& m : index.falsifiers) {
    ordered_json f;
    f["contract"] = m.contract_id;
    f["contract_version"] = m.contract_version;
    f["id"] = m.falsifier_id;
    f["claimed"] = status_name(m.claimed);
    f["earned"] = status_name(m.earned);
    f["capped_by"] = m.capped_by.empty() ? ordered_json(nullptr) : ordered_json(m.capped_by);
    f["flaky"] = m.flaky;
    f["stale"] = m.stale;
    if (m.stale) f["stale_reason"] = m.stale_reason;
    f["runs"] = m.runs;
    f["machines"] = m.machines;
    ordered_json v = ordered_json::array();
    for (const auto& [machine, s] : m.verdicts)
      v.push_back({{"machine", machine}, {"earned", status_name(s)}});
    f["verdicts"] = v;
    f["bundle"] = m.bundle;
    f["bundle_sha256"] = m.bundle_sha256;
    f["generated_at"] = m.generated_at;
    fs.push_back(std::move(f));
  }
  j["falsifiers"] = fs;
  j["stale_bundles"] = index.stale_bundles;
  return j.dump(2) + "\n";
}

}  // namespace pv::harness

namespace pv::harness {

namespace {

// A machine name becomes one directory under out/bundles: it comes from the bundle, so
// "..", "/abs" or "a/b" would write wherever the bundle's author chose.
bool safe_path_component(const std::string& s) {
  if (s.empty() || s == "." || s == ".." || s.size() > 255) return false;
  for (unsigned char c : s) {
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

}  // namespace

int copy_bundles_into(const std::vector<BundleRecord>& bundles, const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  for (const auto& b : bundles) {
    if (!safe_path_component(b.machine)) {
      throw std::runtime_error(fmt::format(
          "{}: /environment/{} is '{}', not a plain name ([A-Za-z0-9._-], not . or ..); "
          "refusing to use it as a directory under {}",
          b.path.string(), b.fingerprint.empty() ? "machine_id" : "fingerprint", b.machine,
          (out / "bundles").string()));
    }
  }
  int written = 0;
  std::set<std::string> done;
  for (const auto& b : bundles) {
    if (!done.insert(b.file_sha256).second) continue;
    fs::path dest = out / "bundles" / b.machine /
                    (b.file_sha256.substr(0, 12) + "-" + b.path.filename().string());
    if (fs::exists(dest) && sha256_hex(read_file_bytes(dest)) == b.file_sha256) continue;
    write_file_atomic(dest, read_file_bytes(b.path));
    ++written;
  }
  return written;
}

std::string format_merged_table(const MergedIndex& index) {
  size_t w = 9;
  for (const auto& m : index.falsifiers) w = std::max(w, m.falsifier_id.size());
  std::string out = fmt::format("{:<{}}  {:<23}  {:>4}  {:>8}  {}\n", "falsifier", w, "earned",
                                "runs", "machines", "note");
  std::string contract;
  for (const auto& m : index.falsifiers) {
    if (m.contract_id != contract) {
      contract = m.contract_id;
      out += contract + "\n";
    }
    std::string note =
        m.stale ? "STALE: " + m.stale_reason : (m.flaky ? "FLAKY " : "") + m.capped_by;
    out += fmt::format("{:<{}}  {:<23}  {:>4}  {:>8}  {}\n", m.falsifier_id, w,
                       status_name(m.earned), m.runs, m.machines, note);
  }
  out += "tally: " + tally_line(index.total) +
         fmt::format(" (index {})\n", index.digest.substr(0, 12));
  if (!index.stale_bundles.empty()) {
    out += fmt::format("{} stale bundles ignored (pv evidence gc removes them)\n",
                       index.stale_bundles.size());
  }
  return out;
}

}  // namespace pv::harness
