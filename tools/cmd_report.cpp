// pv report: a self-contained HTML page (harness/report/report_html.h) and, optionally, a markdown
// summary for a CI step summary (harness/report/markdown_summary.h).
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "harness/file_bytes.h"
#include "harness/report/markdown_summary.h"
#include "harness/report/report_html.h"
#include "harness/spec/spec_doc.h"
#include "tools/command.h"

namespace {
namespace fs = std::filesystem;
using namespace pv::harness;

struct ReportOptions {
  fs::path out = "report";
  fs::path spec = "spec/pv-spec.md";
  std::vector<fs::path> evidence = {"evidence"};
  fs::path root = ".";
  std::vector<fs::path> bisects;
  fs::path markdown;
};

int run_report(const ReportOptions& o) {
  std::vector<BundleRecord> all;
  for (const auto& d : o.evidence) {
    auto bs = read_bundles(d, o.root);
    all.insert(all.end(), std::make_move_iterator(bs.begin()), std::make_move_iterator(bs.end()));
  }
  MergedIndex idx = merge_bundles(all, contract_staleness_check(o.root));
  std::optional<SpecState> spec;
  if (fs::exists(o.spec)) spec = spec_read_state(read_file_bytes(o.spec), o.spec.string());
  std::set<std::string> files;
  std::set<std::string> refused;
  for (const auto& m : idx.falsifiers) {
    if (m.contract_file.empty()) continue;
    // contract.file comes from the bundle: the page embeds what it names, so it must name a
    // file inside the source root, not /etc/passwd or ../../secret.
    if (const std::string why = contract_file_outside_root(m.contract_file, o.root); !why.empty()) {
      if (refused.insert(m.bundle).second) {
        std::cerr << fmt::format(
            "pv report: {}: /contract/file '{}' {}; its contract is not embedded\n", m.bundle,
            m.contract_file, why);
      }
      continue;
    }
    files.insert(m.contract_file);
  }
  ReportInputs in;
  in.spec = spec ? &*spec : nullptr;
  in.spec_name = o.spec.generic_string();
  in.index = &idx;
  in.contracts = read_contract_infos({files.begin(), files.end()}, o.root);
  for (const auto& b : o.bisects) {
    auto j = nlohmann::json::parse(read_file_bytes(b), nullptr, false);
    if (j.is_discarded()) throw std::runtime_error(b.string() + ": not valid JSON");
    if (j.value("schema", "") != "pv-bisect-v1") {
      throw std::runtime_error(b.string() + ": schema is not pv-bisect-v1 (pv bisect --json)");
    }
    in.bisects.emplace_back(b.filename().string(), std::move(j));
  }
  fs::path page = o.out / "index.html";
  write_file_atomic(page, render_report_html(in));
  std::cout << fmt::format("pv report: wrote {} ({} falsifiers, {} bisects)\n", page.string(),
                           idx.falsifiers.size(), in.bisects.size());
  if (!o.markdown.empty()) {
    write_file_atomic(o.markdown, markdown_summary(idx, in.spec));
    std::cout << fmt::format("pv report: wrote {}\n", o.markdown.string());
  }
  return 0;
}

std::function<int()> setup_report(CLI::App& sub) {
  auto o = std::make_shared<ReportOptions>();
  sub.add_option("--out", o->out, "directory for index.html (default report)");
  sub.add_option("--spec", o->spec, "spec whose amendment history is charted");
  sub.add_option("--evidence", o->evidence, "evidence directories (merged)")->expected(1, -1);
  sub.add_option("--root", o->root, "source root the bundles' contract paths are relative to");
  sub.add_option("--bisect", o->bisects, "pv bisect --json output to chart (repeatable)")
      ->check(CLI::ExistingFile);
  sub.add_option("--markdown", o->markdown, "also write a markdown summary (CI step summary)");
  sub.footer("Exit codes: 0 written; 2 unreadable input.");
  return [o]() { return run_report(*o); };
}

}  // namespace

PV_COMMAND("report", "Self-contained HTML report (ladder, tally history, bisect curves)",
           setup_report);
