// pv evidence merge|gc: evidence across runs and machines (see harness/evidence_merge.h and
// harness/evidence_gc.h).
#include <fmt/format.h>

#include <iostream>

#include "harness/evidence_gc.h"
#include "harness/evidence_merge.h"
#include "harness/file_bytes.h"
#include "tools/command.h"

namespace {
namespace fs = std::filesystem;
using namespace pv::harness;

struct EvidenceOptions {
  std::vector<fs::path> dirs;
  fs::path out;
  fs::path root = ".";
  bool json = false;
  fs::path gc_dir = "evidence";
  bool dry_run = false;
};

int run_merge(const EvidenceOptions& o) {
  std::vector<BundleRecord> all;
  for (const auto& d : o.dirs) {
    auto bs = read_bundles(d, o.root);
    std::cout << fmt::format("{}: {} bundles\n", d.string(), bs.size());
    all.insert(all.end(), std::make_move_iterator(bs.begin()), std::make_move_iterator(bs.end()));
  }
  MergedIndex idx = merge_bundles(all, contract_staleness_check(o.root));
  if (!o.out.empty()) {
    int copied = copy_bundles_into(all, o.out);
    write_file_atomic(o.out / "index.json", merged_index_json(idx));
    std::cout << fmt::format("wrote {} ({} bundles copied)\n", (o.out / "index.json").string(),
                             copied);
  }
  if (o.json) {
    std::cout << merged_index_json(idx);
  } else {
    std::cout << format_merged_table(idx);
  }
  int flaky = 0;
  for (const auto& m : idx.falsifiers) flaky += m.flaky ? 1 : 0;
  return flaky > 0 ? 1 : 0;
}

int run_gc(const EvidenceOptions& o) {
  GcResult r = gc_evidence(o.gc_dir, o.root, o.dry_run);
  for (const auto& line : r.removed)
    std::cout << (o.dry_run ? "would remove " : "removed ") << line << "\n";
  std::cout << fmt::format("pv evidence gc: {}: kept {}, {} {}\n", o.gc_dir.string(), r.kept,
                           o.dry_run ? "would remove" : "removed", r.removed.size());
  return 0;
}

std::function<int()> setup_evidence(CLI::App& sub) {
  auto o = std::make_shared<EvidenceOptions>();
  sub.require_subcommand(1);
  CLI::App* merge =
      sub.add_subcommand("merge", "Merge bundles of several runs/machines into one index");
  merge->add_option("dirs", o->dirs, "evidence directories (one per run or machine)")
      ->required()
      ->check(CLI::ExistingDirectory);
  merge->add_option("--out", o->out, "write the merged bundles and index.json here");
  merge->add_option("--root", o->root, "source root the bundles' contract paths are relative to");
  merge->add_flag("--json", o->json, "print the merged index as JSON");
  merge->footer("Exit codes: 0 merged; 1 merged but some falsifier is flaky; 2 bad input.");
  CLI::App* gc = sub.add_subcommand(
      "gc", "Drop stale bundles; keep the newest fresh one per falsifier and machine");
  gc->add_option("--evidence-dir", o->gc_dir, "evidence directory (default evidence)");
  gc->add_option("--root", o->root, "source root the bundles' contract paths are relative to");
  gc->add_flag("--dry-run", o->dry_run, "only say what would be removed");
  return [o, merge, gc]() {
    if (merge->parsed()) return run_merge(*o);
    if (gc->parsed()) return run_gc(*o);
    return 2;
  };
}

}  // namespace

PV_COMMAND("evidence", "Merge evidence of several runs/machines; garbage-collect stale bundles",
           setup_evidence);
