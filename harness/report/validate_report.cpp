#include "harness/report/validate_report.h"

#include <fmt/format.h>

#include <map>

#include "harness/report/markup_escape.h"

namespace pv::harness {
namespace {

const Status kDescending[] = {Status::DISCHARGED, Status::FUNCTIONAL,
                              Status::PARTIAL_ALGORITHM_LEVEL, Status::BLOCKER_FIXTURE_ABSENT,
                              Status::FALSIFIED};

// The number a reader wants first: a metric from the highest level that produced one.
std::string key_metric(const FalsifierVerdict& v) {
  for (auto lv = v.levels.rbegin(); lv != v.levels.rend(); ++lv) {
    for (const auto& t : lv->tests) {
      if (!t.agg.metrics.empty()) {
        const auto& [k, x] = *t.agg.metrics.begin();
        return fmt::format("{}={:.6g}", k, x);
      }
    }
  }
  return "-";
}

std::string one_line(std::string s, size_t max = 160) {
  for (auto& ch : s) {
    if (ch == '\n' || ch == '\t') ch = ' ';
  }
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

std::string indent(const std::string& s, const std::string& pad) {
  std::string out = pad;
  for (char ch : s) {
    out.push_back(ch);
    if (ch == '\n') out += pad;
  }
  return out;
}

nlohmann::json null_if_empty(const std::string& s) {
  return s.empty() ? nlohmann::json() : nlohmann::json(s);
}

}  // namespace

std::string tally_line(const ValidateResult& r) {
  std::map<Status, int> count;
  int overclaims = 0, promotions = 0, credited = 0;
  for (const auto& v : r.verdicts) {
    ++count[v.grade.earned];
    overclaims += v.overclaim();
    promotions += v.promotion();
    credited += !v.grade.credited_from.empty();
  }
  std::string s = fmt::format("coverage: {} falsifiers in {} contracts —", r.verdicts.size(),
                              r.contracts.size());
  bool first = true;
  for (Status st : kDescending) {
    s += fmt::format("{} {} {}", first ? "" : " ·", status_name(st), count[st]);
    first = false;
  }
  s += fmt::format(" | overclaims {}, promotions waiting {}, credited from committed evidence {}",
                   overclaims, promotions, credited);
  return s;
}

void print_human(std::ostream& out, const ValidateResult& r, bool schema_only) {
  for (const auto& d : r.diags) out << d.str() << "\n";
  if (!r.diags.empty()) {
    out << fmt::format("pv validate: {} problem{} in the contracts; nothing was run\n",
                       r.diags.size(), r.diags.size() == 1 ? "" : "s");
    return;
  }
  if (schema_only) {
    size_t nf = 0, nt = 0;
    for (const auto& c : r.contracts) {
      nf += c.falsifiers.size();
      for (const auto& f : c.falsifiers) {
        for (const auto& l : f.levels) nt += l.tests.size();
      }
    }
    out << fmt::format(
        "schema ok: {} contracts, {} falsifiers, {} bound tests all listed by "
        "their binaries ({} binaries listed)\n",
        r.contracts.size(), nf, nt, r.binaries_listed);
    return;
  }
  for (const auto& c : r.contracts) {
    out << fmt::format("\n{}  {} v{}\n", c.rel_file, c.id, c.version);
    std::vector<std::array<std::string, 5>> rows;
    rows.push_back({"FALSIFIER", "CLAIMED", "EARNED", "WHY CAPPED", "KEY METRIC"});
    std::vector<const FalsifierVerdict*> mine;
    for (const auto& v : r.verdicts) {
      if (v.contract != &c) continue;
      mine.push_back(&v);
      rows.push_back({v.falsifier->id, std::string(status_name(v.falsifier->claimed)),
                      std::string(status_name(v.grade.earned)),
                      v.grade.capped_by.empty() ? "-" : one_line(v.grade.capped_by, 60),
                      key_metric(v)});
    }
    std::array<size_t, 5> w{};
    for (const auto& row : rows) {
      for (size_t i = 0; i < 5; ++i) w[i] = std::max(w[i], row[i].size());
    }
    for (const auto& row : rows) {
      out << fmt::format("  {:<{}}  {:<{}}  {:<{}}  {:<{}}  {}\n", row[0], w[0], row[1], w[1],
                         row[2], w[2], row[3], w[3], row[4]);
    }
    for (const auto* v : mine) {
      const std::string& id = v->falsifier->id;
      if (v->grade.earned == Status::FALSIFIED) {
        out << fmt::format("  ✗ {} FALSIFIED: {}\n", id, one_line(v->grade.failure, 300));
        out << indent("counterexample: " + v->grade.counterexample, "      ") << "\n";
      }
      if (v->overclaim() && v->grade.earned != Status::FALSIFIED) {
        out << fmt::format("  ✗ {} OVERCLAIM: status says {} but only {} was earned{}\n", id,
                           status_name(v->falsifier->claimed), status_name(v->grade.earned),
                           v->grade.capped_by.empty() ? "" : " (" + v->grade.capped_by + ")");
      } else if (v->promotion()) {
        out << fmt::format("  ↑ {} promotion waiting to be recorded: earned {}, status says {}\n",
                           id, status_name(v->grade.earned), status_name(v->falsifier->claimed));
      }
      for (const auto& c2 : v->grade.credited_from) {
        out << fmt::format("  • {} earned from {}\n", id, c2);
      }
      for (const auto& n : v->grade.notes) out << fmt::format("  • {}: {}\n", id, n);
    }
  }
  out << "\n" << tally_line(r) << "\n";
  if (!r.bundles_written.empty()) {
    out << fmt::format("evidence: {} bundles in {}/runs/{}/, index {} (seed {})\n",
                       r.bundles_written.size(), r.evidence_dir, r.env.machine_id, r.index_path,
                       r.seed);
  }
  for (const auto& e : r.io_errors) out << "error: " << e << "\n";
  for (const auto& w : r.warnings) out << "warning: " << w << "\n";
}

nlohmann::json to_json(const ValidateResult& r, bool schema_only) {
  nlohmann::json j;
  j["schema"] = "pv-validate-v1";
  j["exit_code"] = r.exit_code;
  j["schema_only"] = schema_only;
  j["diagnostics"] = nlohmann::json::array();
  for (const auto& d : r.diags) {
    j["diagnostics"].push_back({{"file", d.pos.file},
                                {"line", d.pos.line},
                                {"col", d.pos.col},
                                {"message", d.message},
                                {"text", d.str()}});
  }
  j["contracts"] = nlohmann::json::array();
  for (const auto& c : r.contracts) {
    nlohmann::json cj = {{"id", c.id},
                         {"version", c.version},
                         {"file", c.rel_file},
                         {"sha256", c.sha256},
                         {"falsifiers", nlohmann::json::array()}};
    for (const auto& v : r.verdicts) {
      if (v.contract != &c) continue;
      nlohmann::json tests = nlohmann::json::array();
      for (const auto& lv : v.levels) {
        for (const auto& t : lv.tests) {
          nlohmann::json tj = {{"binary", t.agg.binary},
                               {"name", t.agg.name},
                               {"level", status_name(lv.level)},
                               {"result", test_result_name(t.agg.result)},
                               {"skip_reason", null_if_empty(t.agg.skip_reason)},
                               {"duration_ms", t.agg.duration_ms},
                               {"metrics", t.agg.metrics},
                               {"counterexample", null_if_empty(t.agg.counterexample)},
                               {"failure", null_if_empty(t.agg.failure)},
                               {"seed", t.agg.seed},
                               {"runs", t.runs},
                               {"credited_from", null_if_empty(t.agg.credited_from)}};
          tests.push_back(tj);
        }
      }
      cj["falsifiers"].push_back({{"id", v.falsifier->id},
                                  {"claimed", status_name(v.falsifier->claimed)},
                                  {"earned", status_name(v.grade.earned)},
                                  {"capped_by", null_if_empty(v.grade.capped_by)},
                                  {"overclaim", v.overclaim()},
                                  {"promotion_waiting", v.promotion()},
                                  {"failure", null_if_empty(v.grade.failure)},
                                  {"counterexample", null_if_empty(v.grade.counterexample)},
                                  {"credited_from", v.grade.credited_from},
                                  {"notes", v.grade.notes},
                                  {"inputs_digest", v.inputs_digest},
                                  {"bundle", null_if_empty(v.bundle_path)},
                                  {"tests", tests}});
    }
    j["contracts"].push_back(cj);
  }
  nlohmann::json tally = nlohmann::json::object();
  for (Status st : kDescending) tally[std::string(status_name(st))] = 0;
  for (const auto& v : r.verdicts) {
    auto& slot = tally[std::string(status_name(v.grade.earned))];
    slot = slot.get<int>() + 1;
  }
  j["tally"] = tally;
  j["seed"] = r.seed;
  j["machine_id"] = null_if_empty(r.env.machine_id);
  j["evidence_dir"] = null_if_empty(r.evidence_dir);
  j["bundles_written"] = r.bundles_written;
  j["io_errors"] = r.io_errors;
  j["warnings"] = r.warnings;
  return j;
}

std::string to_junit(const ValidateResult& r) {
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  int total = 0, failures = 0, skipped = 0;
  std::string body;
  // Schema problems are reported as one failing case per problem, so CI shows them.
  if (!r.diags.empty()) {
    body += fmt::format("  <testsuite name=\"pv-schema\" tests=\"{}\" failures=\"{}\">\n",
                        r.diags.size(), r.diags.size());
    for (const auto& d : r.diags) {
      body += fmt::format(
          "    <testcase classname=\"pv-schema\" name=\"{}\"><failure "
          "message=\"{}\"/></testcase>\n",
          markup_escape(d.pos.file + ":" + std::to_string(d.pos.line) + ":" +
                        std::to_string(d.pos.col)),
          markup_escape(d.message));
    }
    body += "  </testsuite>\n";
    total += static_cast<int>(r.diags.size());
    failures += static_cast<int>(r.diags.size());
  }
  for (const auto& c : r.contracts) {
    std::string cases;
    int n = 0, nf = 0, ns = 0;
    double secs = 0;
    for (const auto& v : r.verdicts) {
      if (v.contract != &c) continue;
      ++n;
      double t = 0;
      for (const auto& lv : v.levels) {
        for (const auto& b : lv.tests) t += b.agg.duration_ms / 1000.0;
      }
      secs += t;
      cases += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\">\n",
                           markup_escape(c.id), markup_escape(v.falsifier->id), t);
      if (v.grade.earned == Status::FALSIFIED) {
        ++nf;
        cases += fmt::format("      <failure message=\"FALSIFIED: {}\">{}</failure>\n",
                             markup_escape(one_line(v.grade.failure, 300)),
                             markup_escape(v.grade.counterexample));
      } else if (v.overclaim()) {
        ++nf;
        cases += fmt::format(
            "      <failure message=\"overclaim: status {} but earned {}{}\"/>\n",
            status_name(v.falsifier->claimed), status_name(v.grade.earned),
            markup_escape(v.grade.capped_by.empty() ? "" : " (" + v.grade.capped_by + ")"));
      } else if (v.grade.earned == Status::BLOCKER_FIXTURE_ABSENT) {
        ++ns;
        cases += fmt::format("      <skipped message=\"{}\"/>\n", markup_escape(v.grade.capped_by));
      }
      cases += fmt::format(
          "      <system-out>claimed {} earned {}{}</system-out>\n",
          status_name(v.falsifier->claimed), status_name(v.grade.earned),
          markup_escape(v.grade.capped_by.empty() ? "" : "; capped by " + v.grade.capped_by));
      cases += "    </testcase>\n";
    }
    body += fmt::format(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3f}\">\n",
        markup_escape(c.id), n, nf, ns, secs);
    body += cases + "  </testsuite>\n";
    total += n;
    failures += nf;
    skipped += ns;
  }
  xml +=
      fmt::format("<testsuites name=\"pv validate\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
                  total, failures, skipped);
  return xml + body + "</testsuites>\n";
}

}  // namespace pv::harness
