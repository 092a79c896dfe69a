#include "harness/spec/spec_doc.h"

#include <fmt/format.h>

#include <set>

namespace pv::harness {
namespace {

std::string begin_marker(const std::string& name) { return "<!-- pv:begin " + name + " -->"; }
std::string end_marker(const std::string& name) { return "<!-- pv:end " + name + " -->"; }

int coverage_percent(const Tally& t) {
  // Coverage: the share of falsifiers observed end to end or better (FUNCTIONAL+).
  int n = t.total();
  if (n == 0) return 0;
  int up =
      t.count[static_cast<int>(Status::FUNCTIONAL)] + t.count[static_cast<int>(Status::DISCHARGED)];
  return (100 * up + n / 2) / n;
}

}  // namespace

std::string md_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> spec_block(const std::string& doc, const std::string& name) {
  std::string b = begin_marker(name), e = end_marker(name);
  size_t i = doc.find(b);
  if (i == std::string::npos) return std::nullopt;
  size_t start = i + b.size();
  if (start < doc.size() && doc[start] == '\n') ++start;
  size_t j = doc.find(e, start);
  if (j == std::string::npos) return std::nullopt;
  return doc.substr(start, j - start);
}

std::string spec_replace_block(const std::string& doc, const std::string& name,
                               const std::string& content) {
  std::string b = begin_marker(name), e = end_marker(name);
  std::string body = content;
  if (!body.empty() && body.back() != '\n') body += '\n';
  size_t i = doc.find(b);
  size_t j = i == std::string::npos ? std::string::npos : doc.find(e, i);
  if (i == std::string::npos || j == std::string::npos) {
    std::string out = doc;
    if (!out.empty() && out.back() != '\n') out += '\n';
    return out + "\n" + b + "\n" + body + e + "\n";
  }
  return doc.substr(0, i) + b + "\n" + body + doc.substr(j);
}

std::string spec_template() {
  return R"(# pv specification

This is the project's spec: what each contract claims, how far each claim has been earned
on the status ladder, and how that changed over time. Everything between `pv:begin` and
`pv:end` markers is written by `pv amend` from evidence bundles; the prose around them is
written by people and kept as is.

<!-- pv:begin version -->
<!-- pv:end version -->

## The status ladder

    FALSIFIED < BLOCKER_FIXTURE_ABSENT < PARTIAL_ALGORITHM_LEVEL < FUNCTIONAL < DISCHARGED

- **PARTIAL_ALGORITHM_LEVEL**: the algorithm is checked in isolation (synthetic inputs, one
  kernel or function, properties over random shapes).
- **FUNCTIONAL**: observed end to end in a live run of a real model path.
- **DISCHARGED**: checked against an independent oracle under a stated criterion and
  repeated (the `runs: N` / `machines: N` its contract asks, with the same verdict).
- **BLOCKER_FIXTURE_ABSENT**: the lowest level could not run; a fixture is missing.
- **FALSIFIED**: a bound test failed; the evidence holds the counterexample.

Statuses are earned by `pv validate` from what ran; a contract's `status:` is only a claim.
A verdict that differs between runs is flaky and earns only the level all runs reached.

## How amendments are numbered

`pv amend` compares the evidence index with the one recorded below and, when they differ,
writes the next version (semver):

- **major**: a falsifier went down the ladder (demoted, falsified, or made flaky) or was
  retired (no longer in the evidence);
- **minor**: a falsifier was promoted or a new falsifier appeared, and nothing went down;
- **patch**: no status moved, but the evidence did (new inputs digests, more runs or
  machines, a different cap reason, a new contract version);
- nothing changed (same evidence digest): no amendment, the file is not touched.

The first amendment of a spec is v1.0.0. `pv amend` refuses to record an overclaim (a
contract claiming more than its falsifier earned) or a verdict resting on stale evidence.

## Contracts

<!-- pv:begin contracts -->
<!-- pv:end contracts -->

## Coverage scoreboard

<!-- pv:begin scoreboard -->
<!-- pv:end scoreboard -->

## Amendment log

<!-- pv:begin amendments -->
<!-- pv:end amendments -->

## Machine-readable state

<!-- pv:begin state -->
<!-- pv:end state -->
)";
}

SpecState spec_read_state(const std::string& doc, const std::string& where) {
  auto block = spec_block(doc, "state");
  if (!block) return {};
  size_t open = block->find("```json");
  if (open == std::string::npos) {
    if (block->find_first_not_of(" \t\r\n") == std::string::npos) return {};
    throw std::runtime_error(where + ": the state block has no ```json fence");
  }
  size_t start = block->find('\n', open);
  size_t close = block->find("\n```", start);
  if (start == std::string::npos || close == std::string::npos) {
    throw std::runtime_error(where + ": the state block's ```json fence is not closed");
  }
  return parse_spec_state(block->substr(start + 1, close - start - 1), where);
}

std::string render_version_block(const SpecState& s) {
  return fmt::format(
      "**Version {}**: amendment {}, amended from evidence index `{}` ({} bundles, evidence of "
      "{}).\n\nTally: {}.\n",
      s.version.str(), s.amendment, s.evidence_digest.substr(0, 16), s.evidence_bundles,
      s.evidence_date.empty() ? "unknown date" : s.evidence_date, tally_line(s.tally));
}

std::string render_contracts_block(const SpecState& s,
                                   const std::map<std::string, ContractInfo>& infos) {
  std::string out;
  std::set<std::string> contracts;
  for (const auto& f : s.falsifiers) contracts.insert(f.contract);
  for (const auto& cid : contracts) {
    auto it = infos.find(cid);
    const ContractInfo* info = it == infos.end() ? nullptr : &it->second;
    std::string version;
    for (const auto& f : s.falsifiers) {
      if (f.contract == cid) version = f.contract_version;
    }
    out += fmt::format("### {}{}\n\n", cid, version.empty() ? "" : " (v" + version + ")");
    if (info != nullptr) {
      if (!info->file.empty()) out += fmt::format("File: `{}`.\n\n", info->file);
      if (!info->description.empty()) out += md_escape(info->description) + "\n\n";
    }
    out += "| Falsifier | Claim | Recorded status | Capped by |\n|---|---|---|---|\n";
    for (const auto& f : s.falsifiers) {
      if (f.contract != cid) continue;
      std::string rule;
      if (info != nullptr) {
        for (const auto& fi : info->falsifiers) {
          if (fi.id == f.id) {
            rule = fi.rule;
            if (!fi.prediction.empty()) rule += rule.empty() ? fi.prediction : "; " + fi.prediction;
          }
        }
      }
      std::string cap = f.capped_by;
      if (f.flaky && cap.find("flaky") == std::string::npos) cap = "flaky; " + cap;
      out += fmt::format("| {} | {} | {} | {} |\n", f.id, md_escape(rule), status_name(f.status),
                         md_escape(cap.empty() ? "-" : cap));
    }
    out += "\n";
  }
  if (out.empty()) out = "No contract has evidence yet.\n";
  return out;
}

std::string render_scoreboard_block(const SpecState& s) {
  std::map<std::string, Tally> per;
  for (const auto& f : s.falsifiers) per[f.contract].count[static_cast<int>(f.status)]++;
  std::string out =
      "| Contract | DISCHARGED | FUNCTIONAL | PARTIAL_ALGORITHM_LEVEL | BLOCKER_FIXTURE_ABSENT "
      "| FALSIFIED | Falsifiers | FUNCTIONAL or better |\n|---|---|---|---|---|---|---|---|\n";
  auto row = [](const std::string& name, const Tally& t) {
    return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {}% |\n", name, t.count[4], t.count[3],
                       t.count[2], t.count[1], t.count[0], t.total(), coverage_percent(t));
  };
  for (const auto& [cid, t] : per) out += row(cid, t);
  out += row("**Total**", s.tally);
  return out;
}

std::string render_state_block(const SpecState& s) {
  return "```json\n" + spec_state_json(s) + "\n```\n";
}

}  // namespace pv::harness
