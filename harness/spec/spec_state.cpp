#include "harness/spec/spec_state.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>

namespace pv::harness {
using nlohmann::ordered_json;

std::string Semver::str() const { return fmt::format("v{}.{}.{}", major, minor, patch); }

Semver parse_semver(const std::string& text) {
  static const std::regex re(R"(^v?(\d{1,6})\.(\d{1,6})\.(\d{1,6})$)");
  std::smatch m;
  if (!std::regex_match(text, m, re)) {
    throw std::invalid_argument("'" + text + "' is not a semver version (MAJOR.MINOR.PATCH)");
  }
  return {std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3])};
}

namespace {

ordered_json tally_json(const Tally& t) {
  ordered_json o = ordered_json::object();
  for (int i = 0; i < 5; ++i) o[std::string(status_name(static_cast<Status>(i)))] = t.count[i];
  return o;
}

Tally parse_tally(const ordered_json& o, const std::string& where) {
  Tally t;
  if (!o.is_object()) throw std::runtime_error(where + ": state tally is not an object");
  for (auto it = o.begin(); it != o.end(); ++it) {
    auto s = status_from_name(it.key());
    if (!s || !it.value().is_number_integer()) {
      throw std::runtime_error(where + ": state tally has a bad entry '" + it.key() + "'");
    }
    t.count[static_cast<int>(*s)] = it.value().get<int>();
  }
  return t;
}

Status parse_status(const ordered_json& o, const char* key, const std::string& where) {
  std::string name = o.value(key, "");
  auto s = status_from_name(name);
  if (!s) {
    throw std::runtime_error(where + ": state field '" + key + "' is '" + name +
                             "', not a ladder status");
  }
  return *s;
}

}  // namespace

std::string spec_state_json(const SpecState& s) {
  ordered_json j;
  j["schema"] = "pv-spec-state-v1";
  j["version"] = s.version.str();
  j["amendment"] = s.amendment;
  j["evidence"] = {{"digest", s.evidence_digest},
                   {"date", s.evidence_date},
                   {"bundles", s.evidence_bundles},
                   {"tally", tally_json(s.tally)}};
  ordered_json fs = ordered_json::array();
  for (const auto& f : s.falsifiers) {
    ordered_json o;
    o["contract"] = f.contract;
    o["contract_version"] = f.contract_version;
    o["contract_sha256"] = f.contract_sha256;
    o["id"] = f.id;
    o["status"] = status_name(f.status);
    o["claimed"] = status_name(f.claimed);
    o["capped_by"] = f.capped_by;
    o["flaky"] = f.flaky;
    o["runs"] = f.runs;
    o["machines"] = f.machines;
    o["bundle"] = f.bundle;
    o["bundle_sha256"] = f.bundle_sha256;
    o["inputs_digests"] = f.inputs_digests;
    fs.push_back(std::move(o));
  }
  j["falsifiers"] = fs;
  ordered_json h = ordered_json::array();
  for (const auto& e : s.history) {
    h.push_back({{"amendment", e.amendment},
                 {"version", e.version},
                 {"bump", e.bump},
                 {"date", e.date},
                 {"tally", tally_json(e.tally)}});
  }
  j["history"] = h;
  return j.dump(1);
}

SpecState parse_spec_state(const std::string& json_text, const std::string& where) {
  ordered_json j = ordered_json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw std::runtime_error(where + ": the state block is not valid JSON");
  }
  if (j.value("schema", "") != "pv-spec-state-v1") {
    throw std::runtime_error(where + ": the state block's schema is not pv-spec-state-v1");
  }
  SpecState s;
  try {
    s.version = parse_semver(j.value("version", ""));
    s.amendment = j.value("amendment", 0);
    const auto& ev = j.at("evidence");
    s.evidence_digest = ev.value("digest", "");
    s.evidence_date = ev.value("date", "");
    s.evidence_bundles = ev.value("bundles", 0);
    s.tally = parse_tally(ev.at("tally"), where);
    for (const auto& o : j.at("falsifiers")) {
      SpecFalsifier f;
      f.contract = o.value("contract", "");
      f.contract_version = o.value("contract_version", "");
      f.contract_sha256 = o.value("contract_sha256", "");
      f.id = o.value("id", "");
      if (f.id.empty()) throw std::runtime_error(where + ": a state falsifier has no id");
      f.status = parse_status(o, "status", where);
      f.claimed = parse_status(o, "claimed", where);
      f.capped_by = o.value("capped_by", "");
      f.flaky = o.value("flaky", false);
      f.runs = o.value("runs", 0);
      f.machines = o.value("machines", 0);
      f.bundle = o.value("bundle", "");
      f.bundle_sha256 = o.value("bundle_sha256", "");
      if (o.contains("inputs_digests")) {
        f.inputs_digests = o["inputs_digests"].get<std::vector<std::string>>();
      }
      s.falsifiers.push_back(std::move(f));
    }
    for (const auto& o : j.at("history")) {
      SpecHistoryEntry e;
      e.amendment = o.value("amendment", 0);
      e.version = o.value("version", "");
      e.bump = o.value("bump", "");
      e.date = o.value("date", "");
      e.tally = parse_tally(o.at("tally"), where);
      s.history.push_back(std::move(e));
    }
  } catch (const ordered_json::exception& e) {
    throw std::runtime_error(where + ": the state block is malformed: " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(where + ": the state block's version: " + e.what());
  }
  return s;
}

}  // namespace pv::harness
