#include "harness/spec/amend.h"

#include <fmt/format.h>

#include <set>
#include <stdexcept>

#include "harness/file_bytes.h"
#include "harness/spec/spec_doc.h"
#include "mutants/mutant.h"

namespace pv::harness {
namespace fs = std::filesystem;

namespace {

using Key = std::pair<std::string, std::string>;

std::string short_sha(const std::string& s) { return s.substr(0, 12); }

std::string date_of(const std::string& iso) { return iso.size() >= 10 ? iso.substr(0, 10) : iso; }

SpecFalsifier to_spec(const MergedFalsifier& m, const std::string& shown_bundle) {
  SpecFalsifier f;
  f.contract = m.contract_id;
  f.contract_version = m.contract_version;
  f.contract_sha256 = m.contract_sha256;
  f.id = m.falsifier_id;
  f.status = m.earned;
  f.claimed = m.claimed;
  f.capped_by = m.capped_by;
  f.flaky = m.flaky;
  f.runs = m.runs;
  f.machines = m.machines;
  f.bundle = shown_bundle;
  f.bundle_sha256 = m.bundle_sha256;
  f.inputs_digests = m.inputs_digests;
  return f;
}

std::string tally_table(const Tally& before, const Tally& after) {
  std::string out = "| Level | Before | After |\n|---|---|---|\n";
  for (int i = 4; i >= 0; --i) {
    int b = before.count[i], a = after.count[i];
    out += fmt::format("| {} | {} | {}{} |\n", status_name(static_cast<Status>(i)), b, a,
                       a == b ? "" : fmt::format(" ({:+d})", a - b));
  }
  out += fmt::format("| total | {} | {} |\n", before.total(), after.total());
  return out;
}

std::string render_amendment(const AmendPlan& p, const MergedIndex& idx) {
  const SpecState& a = p.after;
  const SpecState& b = p.before;
  std::string out = fmt::format("### Amendment {}: {} -> {} ({}), evidence of {}\n\n", a.amendment,
                                b.version.str(), a.version.str(), p.bump,
                                a.evidence_date.empty() ? "unknown date" : a.evidence_date);
  out += fmt::format("Amended from evidence index `{}` ({} bundles read, latest {}){}.\n\n",
                     short_sha(a.evidence_digest), idx.bundles_read,
                     idx.latest_generated_at.empty() ? "undated" : idx.latest_generated_at,
                     b.evidence_digest.empty()
                         ? ""
                         : fmt::format("; previous index `{}`", short_sha(b.evidence_digest)));
  int promotions = 0, demotions = 0;
  for (const auto& f : p.flips) (f.to > f.from ? promotions : demotions)++;
  out += fmt::format("Why {}: {} promoted, {} demoted, {} new, {} retired.\n\n", p.bump, promotions,
                     demotions, p.added.size(), p.retired.size());
  if (!p.flips.empty()) {
    out +=
        "Status flips:\n\n| Falsifier | Contract | From | To | Earned by "
        "|\n|---|---|---|---|---|\n";
    for (const auto& f : p.flips) {
      out +=
          fmt::format("| {} | {} | {} | {} | `{}` (sha256 `{}`) |\n", f.id, f.contract,
                      status_name(f.from), status_name(f.to), f.bundle, short_sha(f.bundle_sha256));
    }
    out += "\n";
  }
  if (!p.added.empty()) {
    out += "New falsifiers:\n\n| Falsifier | Contract | Status | Earned by |\n|---|---|---|---|\n";
    for (const auto& f : p.added) {
      out += fmt::format("| {} | {} | {} | `{}` (sha256 `{}`) |\n", f.id, f.contract,
                         status_name(f.status), f.bundle, short_sha(f.bundle_sha256));
    }
    out += "\n";
  }
  if (!p.retired.empty()) {
    out +=
        "Retired falsifiers (no evidence any more):\n\n| Falsifier | Contract | Last status |\n"
        "|---|---|---|\n";
    for (const auto& f : p.retired) {
      out += fmt::format("| {} | {} | {} |\n", f.id, f.contract, status_name(f.status));
    }
    out += "\n";
  }
  if (p.flips.empty() && p.added.empty() && p.retired.empty()) {
    // Patch: say what moved in the evidence so the amendment is not an empty promise.
    std::map<Key, const SpecFalsifier*> old;
    for (const auto& f : b.falsifiers) old[{f.contract, f.id}] = &f;
    std::string rows;
    for (const auto& f : a.falsifiers) {
      const SpecFalsifier* o = old[{f.contract, f.id}];
      if (o == nullptr) continue;
      std::vector<std::string> what;
      if (o->inputs_digests != f.inputs_digests) what.push_back("inputs digest");
      if (o->contract_version != f.contract_version) {
        what.push_back("contract v" + o->contract_version + " -> v" + f.contract_version);
      }
      if (o->runs != f.runs || o->machines != f.machines) {
        what.push_back(fmt::format("runs {} -> {}, machines {} -> {}", o->runs, f.runs, o->machines,
                                   f.machines));
      }
      if (o->capped_by != f.capped_by) what.push_back("cap: " + md_escape(f.capped_by));
      if (o->claimed != f.claimed) {
        what.push_back(
            fmt::format("claimed {} -> {}", status_name(o->claimed), status_name(f.claimed)));
      }
      if (o->flaky != f.flaky) what.push_back(f.flaky ? "now flaky" : "no longer flaky");
      if (what.empty()) continue;
      std::string joined;
      for (const auto& w : what) joined += (joined.empty() ? "" : "; ") + w;
      rows += fmt::format("| {} | {} | {} |\n", f.id, f.contract, joined);
    }
    if (!rows.empty()) {
      out +=
          "Evidence refreshed, no status moved:\n\n| Falsifier | Contract | What changed |\n"
          "|---|---|---|\n" +
          rows + "\n";
    }
  }
  out += "Coverage tally:\n\n" + tally_table(b.tally, a.tally) + "\n";
  return out;
}

}  // namespace

AmendPlan plan_amendment(const std::string& old_doc, const std::string& where,
                         const MergedIndex& index,
                         const std::map<std::string, ContractInfo>& contracts,
                         const std::function<std::string(const std::string&)>& display_path) {
  AmendPlan p;
  p.before = spec_read_state(old_doc, where);
  if (index.falsifiers.empty()) {
    p.outcome = AmendOutcome::kRefused;
    p.message = "no evidence bundles found: nothing to amend from (run pv validate first)";
    return p;
  }
  // Refuse what the spec must never record.
  std::vector<std::string> refusals;
  for (const auto& m : index.falsifiers) {
    if (m.stale) {
      refusals.push_back(fmt::format("stale evidence: {} {} rests on {} ({})", m.contract_id,
                                     m.falsifier_id, display_path(m.bundle), m.stale_reason));
    } else if (m.claimed > m.earned) {
      refusals.push_back(fmt::format("overclaim: {} {} claims {} but earned {}{}", m.contract_id,
                                     m.falsifier_id, status_name(m.claimed), status_name(m.earned),
                                     m.capped_by.empty() ? "" : " (" + m.capped_by + ")"));
    }
  }
  // A contract is a versioned set of claims: a file that changed since the last amendment
  // (a claim, a threshold, a status) must say so with a new version, or the spec would
  // record different claims under the same name.
  std::map<Key, const SpecFalsifier*> recorded;
  for (const auto& f : p.before.falsifiers) recorded[{f.contract, f.id}] = &f;
  std::set<std::string> unbumped;
  for (const auto& m : index.falsifiers) {
    auto it = recorded.find({m.contract_id, m.falsifier_id});
    if (it == recorded.end()) continue;
    const SpecFalsifier& o = *it->second;
    if (o.contract_sha256.empty() || m.contract_sha256.empty()) continue;  // not recorded
    if (o.contract_sha256 != m.contract_sha256 && o.contract_version == m.contract_version &&
        !mutant::planted(mutant::Bug::AmendUnbumpedAccepted) &&
        unbumped.insert(m.contract_id).second) {
      refusals.push_back(fmt::format(
          "a changed contract under its old version: {} ({}) is still v{} but its file changed "
          "since amendment {} (sha256 {} -> {}); bump metadata.version",
          m.contract_file.empty() ? m.contract_id : m.contract_file, m.contract_id,
          m.contract_version, p.before.amendment, short_sha(o.contract_sha256),
          short_sha(m.contract_sha256)));
    }
  }
  if (!refusals.empty()) {
    p.outcome = AmendOutcome::kRefused;
    for (const auto& r : refusals) p.message += "refusing to record " + r + "\n";
    return p;
  }
  if (index.digest == p.before.evidence_digest) {
    p.outcome = AmendOutcome::kUnchanged;
    p.message = fmt::format(
        "nothing changed since amendment {} ({}): evidence index {} is the one recorded",
        p.before.amendment, p.before.version.str(), short_sha(index.digest));
    return p;
  }

  SpecState& a = p.after;
  for (const auto& m : index.falsifiers) a.falsifiers.push_back(to_spec(m, display_path(m.bundle)));
  a.tally = index.total;
  a.evidence_digest = index.digest;
  a.evidence_date = date_of(index.latest_generated_at);
  a.evidence_bundles = index.bundles_read;
  a.amendment = p.before.amendment + 1;

  std::map<Key, const SpecFalsifier*> old, now;
  for (const auto& f : p.before.falsifiers) old[{f.contract, f.id}] = &f;
  for (const auto& f : a.falsifiers) now[{f.contract, f.id}] = &f;
  bool down = false, up = false;
  for (const auto& [k, f] : now) {
    auto it = old.find(k);
    if (it == old.end()) {
      p.added.push_back(*f);
      up = true;
    } else if (it->second->status != f->status) {
      p.flips.push_back(
          {f->contract, f->id, it->second->status, f->status, f->bundle, f->bundle_sha256});
      (f->status > it->second->status ? up : down) = true;
    }
  }
  for (const auto& [k, f] : old) {
    if (!now.count(k)) {
      p.retired.push_back(*f);
      down = true;
    }
  }
  Semver v = p.before.version;
  if (v == Semver{}) {
    p.bump = "initial";
    v = {1, 0, 0};
  } else if (down) {
    p.bump = "major";
    v = {v.major + 1, 0, 0};
  } else if (up) {
    p.bump = "minor";
    v = {v.major, v.minor + 1, 0};
  } else {
    p.bump = "patch";
    v = {v.major, v.minor, v.patch + 1};
  }
  a.version = v;
  a.history = p.before.history;
  a.history.push_back({a.amendment, v.str(), p.bump, a.evidence_date, a.tally});

  std::string doc = old_doc.empty() ? spec_template() : old_doc;
  doc = spec_replace_block(doc, "version", render_version_block(a));
  doc = spec_replace_block(doc, "contracts", render_contracts_block(a, contracts));
  doc = spec_replace_block(doc, "scoreboard", render_scoreboard_block(a));
  std::string log = spec_block(doc, "amendments").value_or("");
  doc = spec_replace_block(doc, "amendments", render_amendment(p, index) + log);
  doc = spec_replace_block(doc, "state", render_state_block(a));
  p.new_doc = std::move(doc);
  p.outcome = AmendOutcome::kAmended;
  p.message = fmt::format("amendment {}: {} -> {} ({}): {} flips, {} new, {} retired; tally {}",
                          a.amendment, p.before.version.str(), v.str(), p.bump, p.flips.size(),
                          p.added.size(), p.retired.size(), tally_line(a.tally));
  return p;
}

AmendPlan amend_spec(const AmendOptions& o) {
  std::string old_doc;
  if (fs::exists(o.spec_file)) old_doc = read_file_bytes(o.spec_file);
  auto bundles = read_bundles(o.evidence_dir, o.root);
  // contract.file is the bundle author's string and amend reads the file it names (its
  // hash, its falsifiers' prose): one outside the source root is refused before anything
  // reads it, as pv report refuses to embed one.
  for (const auto& b : bundles) {
    if (b.contract_file.empty()) continue;
    if (const std::string why = contract_file_outside_root(b.contract_file, o.root); !why.empty()) {
      throw std::runtime_error(
          fmt::format("{}: /contract/file '{}' {}; pv amend reads only contract files inside "
                      "the source root {}",
                      b.path.string(), b.contract_file, why, o.root.string()));
    }
  }
  MergedIndex idx = merge_bundles(bundles, contract_staleness_check(o.root));
  std::set<std::string> files;
  for (const auto& m : idx.falsifiers) {
    if (!m.contract_file.empty()) files.insert(m.contract_file);
  }
  auto infos = read_contract_infos({files.begin(), files.end()}, o.root);
  fs::path root_abs = fs::weakly_canonical(fs::absolute(o.root));
  fs::path ev_abs = fs::weakly_canonical(fs::absolute(o.evidence_dir));
  // Bundles are named relative to the source root when they live in it (evidence/...), else
  // relative to the evidence directory, so the spec's bytes do not depend on where the
  // command was started or how the directory was spelled.
  auto display = [&](const std::string& path) {
    fs::path p = fs::weakly_canonical(fs::absolute(path));
    fs::path rel = p.lexically_relative(root_abs);
    if (!rel.empty() && *rel.begin() != "..") return rel.generic_string();
    return (ev_abs.filename() / p.lexically_relative(ev_abs)).generic_string();
  };
  AmendPlan plan = plan_amendment(old_doc, o.spec_file.string(), idx, infos, display);
  if (plan.outcome == AmendOutcome::kAmended) write_file_atomic(o.spec_file, plan.new_doc);
  return plan;
}

}  // namespace pv::harness
