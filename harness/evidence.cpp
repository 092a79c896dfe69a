#include "harness/evidence.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

#include "harness/input_limits.h"

namespace pv::harness {
namespace {

nlohmann::json str_or_null(const std::string& s) {
  return s.empty() ? nlohmann::json() : nlohmann::json(s);
}

nlohmann::json test_entry(const BindingOutcome& b, Status level) {
  const TestRun& t = b.agg;
  nlohmann::json j;
  j["binary"] = t.binary;
  j["name"] = t.name;
  j["level"] = status_name(level);
  j["result"] = test_result_name(t.result);
  j["skip_reason"] = str_or_null(t.skip_reason);
  j["duration_ms"] = t.duration_ms;
  j["metrics"] = nlohmann::json::object();
  for (const auto& [k, v] : t.metrics) j["metrics"][k] = v;
  j["counterexample"] = str_or_null(t.counterexample);
  j["failure"] = str_or_null(t.failure);
  j["reproduce"] = str_or_null(t.reproduce);
  j["seed"] = t.seed;
  j["seeds"] = b.seeds;
  j["runs"] = b.runs;
  j["executed"] = t.executed;
  j["credited_from"] = str_or_null(t.credited_from);
  if (t.result == TestResult::kFailed) {
    j["exit_code"] = t.exit_code;
    j["signal"] = t.term_signal;
    j["timed_out"] = t.timed_out;
    j["output_tail"] = t.output_tail;
  }
  return j;
}

// Reading: a field of the wrong type reads as absent (see evidence.h).
const nlohmann::json& member(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json absent;
  if (!obj.is_object()) return absent;
  const auto it = obj.find(key);
  return it == obj.end() ? absent : *it;
}

std::string str_field(const nlohmann::json& obj, const char* key) {
  const nlohmann::json& v = member(obj, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

bool bool_field(const nlohmann::json& obj, const char* key) {
  const nlohmann::json& v = member(obj, key);
  return v.is_boolean() && v.get<bool>();
}

std::optional<int> positive_int(const nlohmann::json& obj, const char* key) {
  const nlohmann::json& v = member(obj, key);
  if (!v.is_number_integer() || v.get<long long>() < 1 ||
      v.get<long long>() > std::numeric_limits<int>::max()) {
    return std::nullopt;
  }
  return v.get<int>();
}

Status status_field(const nlohmann::json& obj, const char* key, const std::string& file,
                    const char* where) {
  const std::string name = str_field(obj, key);
  const auto s = status_from_name(name);
  if (!s) {
    throw std::runtime_error(file + ": /" + where + "/" + key + " is '" + name +
                             "', not a ladder status");
  }
  return *s;
}

EvidenceTest read_test(const nlohmann::json& t) {
  EvidenceTest e;
  e.binary = str_field(t, "binary");
  e.name = str_field(t, "name");
  e.level = str_field(t, "level");
  e.result = str_field(t, "result");
  e.skip_reason = str_field(t, "skip_reason");
  e.failure = str_field(t, "failure");
  e.counterexample = str_field(t, "counterexample");
  e.credited_from = str_field(t, "credited_from");
  if (const nlohmann::json& r = member(t, "runs"); r.is_number_integer()) e.runs = r.get<int>();
  const nlohmann::json& m = member(t, "metrics");
  if (m.is_object()) {
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it->is_number()) e.metrics[it.key()] = it->get<double>();
    }
  }
  return e;
}

}  // namespace

std::string EvidenceTest::bound_name() const { return binary.empty() ? name : binary + ":" + name; }

const EvidenceTest* EvidenceBundle::find_test(const std::string& binary,
                                              const std::string& name) const {
  for (const auto& t : tests) {
    if (t.binary == binary && t.name == name) return &t;
  }
  return nullptr;
}

std::optional<EvidenceBundle> parse_bundle(const std::string& file, const std::string& bytes) {
  if (auto deep = json_nesting_error(bytes)) throw std::runtime_error(file + ": " + *deep);
  const nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Not ours to judge unless it claims to be a bundle; a torn bundle is an error.
    if (bytes.find("pv-evidence-v1") != std::string::npos) {
      throw std::runtime_error(file + ": not valid JSON (a torn evidence bundle?)");
    }
    return std::nullopt;
  }
  if (str_field(j, "schema") != "pv-evidence-v1") return std::nullopt;
  EvidenceBundle b;
  const nlohmann::json& c = member(j, "contract");
  const nlohmann::json& f = member(j, "falsifier");
  const nlohmann::json& env = member(j, "environment");
  b.contract_id = str_field(c, "id");
  b.contract_version = str_field(c, "version");
  b.contract_file = str_field(c, "file");
  b.contract_sha256 = str_field(c, "sha256");
  b.falsifier_id = str_field(f, "id");
  if (b.falsifier_id.empty()) {
    throw std::runtime_error(file + ": /falsifier/id is missing or not a string");
  }
  if (b.contract_id.empty()) {
    throw std::runtime_error(file + ": /contract/id is missing or not a string");
  }
  b.claimed = status_field(f, "claimed", file, "falsifier");
  b.earned = status_field(f, "earned", file, "falsifier");
  b.capped_by = str_field(f, "capped_by");
  b.runs = positive_int(f, "runs").value_or(1);
  const nlohmann::json& req = member(f, "requires");
  b.runs_required = positive_int(req, "runs");
  b.machines_required = positive_int(req, "machines");
  if (const nlohmann::json& tests = member(j, "tests"); tests.is_array()) {
    for (const auto& t : tests) b.tests.push_back(read_test(t));
  }
  b.env.git_commit = str_field(env, "git_commit");
  b.env.git_dirty = bool_field(env, "git_dirty");
  b.env.compiler = str_field(env, "compiler");
  b.env.cpu = str_field(env, "cpu");
  b.env.gpu = str_field(env, "gpu");
  b.env.driver = str_field(env, "driver");
  b.env.cuda_runtime = str_field(env, "cuda_runtime");
  b.env.host = str_field(env, "host");
  b.env.machine_id = str_field(env, "machine_id");
  b.fingerprint = str_field(env, "fingerprint");
  b.inputs_digest = str_field(env, "inputs_digest");
  if (const nlohmann::json& in = member(env, "inputs"); in.is_array()) {
    b.has_inputs = true;
    for (const auto& g : in) {
      if (g.is_string()) b.inputs.push_back(g.get<std::string>());
    }
  }
  b.generated_at = str_field(j, "generated_at");
  b.marked_stale = bool_field(j, "stale");
  return b;
}

std::string utc_now_iso8601() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string bundle_relpath(const std::string& machine_id, const std::string& contract_id,
                           const std::string& falsifier_id) {
  return "runs/" + machine_id + "/" + contract_id + "/" + falsifier_id + ".json";
}

nlohmann::json make_bundle(const FalsifierVerdict& v, const Environment& env,
                           const std::string& generated_at) {
  const Contract& c = *v.contract;
  const Falsifier& f = *v.falsifier;
  nlohmann::json b;
  b["schema"] = "pv-evidence-v1";
  b["contract"] = {
      {"id", c.id}, {"version", c.version}, {"file", c.rel_file}, {"sha256", c.sha256}};
  b["falsifier"] = {{"id", f.id},
                    {"claimed", status_name(f.claimed)},
                    {"earned", status_name(v.grade.earned)},
                    {"capped_by", str_or_null(v.grade.capped_by)},
                    {"counterexample", str_or_null(v.grade.counterexample)},
                    {"credited_from", v.grade.credited_from},
                    {"notes", v.grade.notes}};
  b["tests"] = nlohmann::json::array();
  std::map<std::string, std::string> test_env;
  for (const auto& lv : v.levels) {
    for (const auto& t : lv.tests) {
      b["tests"].push_back(test_entry(t, lv.level));
      if (t.agg.credited_from.empty()) {
        for (const auto& [k, val] : t.agg.env) test_env[k] = val;
      }
    }
  }
  nlohmann::json e = {{"git_commit", env.git_commit},
                      {"git_dirty", env.git_dirty},
                      {"inputs_digest", v.inputs_digest},
                      {"inputs", f.inputs},
                      {"compiler", env.compiler},
                      {"cpu", env.cpu},
                      {"gpu", str_or_null(env.gpu)},
                      {"driver", str_or_null(env.driver)},
                      {"cuda_runtime", str_or_null(env.cuda_runtime)},
                      {"host", env.host},
                      {"machine_id", env.machine_id}};
  // Tests may report facts only they know (e.g. the CUDA runtime they linked).
  for (const auto& [k, val] : test_env) e[k] = val;
  b["environment"] = e;
  b["artifacts"] = nlohmann::json::array();
  b["generated_at"] = generated_at;
  return b;
}

std::vector<CommittedEvidence> find_committed(
    const std::string& evidence_dir, const std::string& display_prefix,
    const std::string& contract_id, const std::string& falsifier_id,
    const std::string& local_machine, const std::string& digest_now, const AllowedSigners& allowed,
    std::vector<std::string>& rejected) {
  namespace fs = std::filesystem;
  std::vector<CommittedEvidence> out;
  std::error_code ec;
  const fs::path runs = fs::path(evidence_dir) / "runs";
  if (!fs::is_directory(runs, ec)) return out;
  std::vector<fs::path> machines;
  for (const auto& m : fs::directory_iterator(runs, ec)) machines.push_back(m.path());
  std::sort(machines.begin(), machines.end());
  for (const auto& m : machines) {
    const std::string machine = m.filename().string();
    if (machine == local_machine) continue;
    const fs::path p = m / contract_id / (falsifier_id + ".json");
    if (!fs::is_regular_file(p, ec)) continue;
    std::optional<EvidenceBundle> b;
    std::string bytes;
    try {
      bytes = read_regular_file(p, kMaxEvidenceFileBytes);
      b = parse_bundle(p.string(), bytes);
    } catch (const std::exception&) {
      continue;  // torn, incomplete, oversized or not a file: it earns nothing
    }
    if (!b) continue;
    const std::string where = display_prefix + bundle_relpath(machine, contract_id, falsifier_id);
    // parse_bundle accepted these bytes, so they are JSON within the nesting limit.
    const SignatureCheck sig =
        check_bundle_signature(nlohmann::json::parse(bytes, nullptr, false), allowed, machine);
    if (!sig.trusted()) {
      rejected.push_back(where + ": " + sig.reason);
      continue;
    }
    if (b->contract_id != contract_id || b->falsifier_id != falsifier_id) {
      rejected.push_back(fmt::format("{}: signed for {} {}, not {} {}: it earns nothing here",
                                     where, b->contract_id, b->falsifier_id, contract_id,
                                     falsifier_id));
      continue;
    }
    CommittedEvidence ev;
    ev.where = where;
    ev.machine_id = machine;
    ev.signer_key_id = sig.key_id;
    ev.fresh = !b->inputs_digest.empty() && b->inputs_digest == digest_now;
    ev.bundle = std::move(*b);
    out.push_back(std::move(ev));
  }
  return out;
}

nlohmann::json make_index(const std::vector<FalsifierVerdict>& verdicts,
                          const nlohmann::json& previous, const std::string& generated_at) {
  nlohmann::json entries = nlohmann::json::array();
  std::set<std::string> validated;
  for (const auto& v : verdicts) validated.insert(v.contract->id);
  if (previous.is_object() && previous.contains("falsifiers") &&
      previous["falsifiers"].is_array()) {
    for (const auto& e : previous["falsifiers"]) {
      const bool well_formed = e.is_object() && e.contains("contract") &&
                               e["contract"].is_string() && e.contains("falsifier") &&
                               e["falsifier"].is_string() && e.contains("earned") &&
                               e["earned"].is_string();
      if (well_formed && !validated.count(e["contract"].get<std::string>())) entries.push_back(e);
    }
  }
  for (const auto& v : verdicts) {
    entries.push_back({{"contract", v.contract->id},
                       {"contract_version", v.contract->version},
                       {"file", v.contract->rel_file},
                       {"falsifier", v.falsifier->id},
                       {"claimed", status_name(v.falsifier->claimed)},
                       {"earned", status_name(v.grade.earned)},
                       {"capped_by", str_or_null(v.grade.capped_by)},
                       {"credited_from", v.grade.credited_from},
                       {"inputs_digest", v.inputs_digest},
                       {"bundle", v.bundle_path}});
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.value("contract", ""), a.value("falsifier", "")) <
           std::make_pair(b.value("contract", ""), b.value("falsifier", ""));
  });
  const std::vector<std::string> names = {"FALSIFIED", "BLOCKER_FIXTURE_ABSENT",
                                          "PARTIAL_ALGORITHM_LEVEL", "FUNCTIONAL", "DISCHARGED"};
  auto zero = [&] {
    nlohmann::json z = nlohmann::json::object();
    for (const auto& n : names) z[n] = 0;
    return z;
  };
  nlohmann::json overall = zero();
  nlohmann::json per_contract = nlohmann::json::object();
  for (const auto& e : entries) {
    const std::string c = e.value("contract", "");
    const std::string s = e.value("earned", "");
    if (!per_contract.contains(c)) per_contract[c] = zero();
    if (overall.contains(s)) {
      overall[s] = overall[s].get<int>() + 1;
      per_contract[c][s] = per_contract[c][s].get<int>() + 1;
    }
  }
  return {{"schema", "pv-evidence-index-v1"},
          {"generated_at", generated_at},
          {"tally",
           {{"overall", overall}, {"per_contract", per_contract}, {"falsifiers", entries.size()}}},
          {"falsifiers", entries}};
}

}  // namespace pv::harness
