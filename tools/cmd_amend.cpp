// pv amend: write the next spec version from the evidence (see harness/spec/amend.h).
#include <fmt/format.h>

#include <iostream>

#include "harness/spec/amend.h"
#include "tools/command.h"

namespace {

std::function<int()> setup_amend(CLI::App& sub) {
  auto opts = std::make_shared<pv::harness::AmendOptions>();
  sub.add_option("--spec", opts->spec_file, "spec file to amend (default spec/pv-spec.md)");
  sub.add_option("--evidence", opts->evidence_dir,
                 "evidence directory: bundles of one or several runs (default evidence)");
  sub.add_option("--root", opts->root, "source root the bundles' contract paths are relative to");
  sub.footer(
      "Bumps: major = a falsifier demoted/falsified/flaky or retired; minor = promoted or new;\n"
      "patch = evidence refreshed with no status moved; no change = file untouched.\n"
      "Exit codes: 0 amended or nothing to do; 1 refused (overclaim or stale evidence);\n"
      "2 usage or unreadable input.");
  return [opts]() {
    pv::harness::AmendPlan plan = pv::harness::amend_spec(*opts);
    switch (plan.outcome) {
      case pv::harness::AmendOutcome::kAmended:
        std::cout << "pv amend: " << opts->spec_file.string() << ": " << plan.message << "\n";
        for (const auto& f : plan.flips) {
          std::cout << fmt::format("  {} {}: {} -> {} ({})\n", f.contract, f.id,
                                   pv::harness::status_name(f.from), pv::harness::status_name(f.to),
                                   f.bundle);
        }
        return 0;
      case pv::harness::AmendOutcome::kUnchanged:
        std::cout << "pv amend: " << opts->spec_file.string() << " untouched: " << plan.message
                  << "\n";
        return 0;
      case pv::harness::AmendOutcome::kRefused:
        std::cerr << "pv amend: " << opts->spec_file.string() << " untouched:\n" << plan.message;
        return 1;
    }
    return 2;
  };
}

}  // namespace

PV_COMMAND("amend", "Write the next spec version from an evidence delta", setup_amend);
