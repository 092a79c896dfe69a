#include "harness/evidence.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>

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

}  // namespace

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

std::vector<CommittedEvidence> find_committed(const std::string& evidence_dir,
                                              const std::string& display_prefix,
                                              const std::string& contract_id,
                                              const std::string& falsifier_id,
                                              const std::string& local_machine,
                                              const std::string& digest_now) {
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
    std::ifstream in(p);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("schema") ||
        j["schema"] != "pv-evidence-v1" || !j.contains("environment") ||
        !j["environment"].is_object()) {
      continue;
    }
    CommittedEvidence ev;
    ev.where = display_prefix + bundle_relpath(machine, contract_id, falsifier_id);
    ev.machine_id = machine;
    const nlohmann::json& env = j["environment"];
    ev.host = env.contains("host") && env["host"].is_string() ? env["host"].get<std::string>() : "";
    const std::string digest = env.contains("inputs_digest") && env["inputs_digest"].is_string()
                                   ? env["inputs_digest"].get<std::string>()
                                   : "";
    ev.fresh = !digest.empty() && digest == digest_now;
    ev.bundle = std::move(j);
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
