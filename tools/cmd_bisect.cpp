// pv bisect REF CAND: walk two traces in computation order and name the first stage
// whose drift breaks the noise-floor criterion (model/trace/bisect.h).
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>

#include "model/trace/bisect.h"
#include "model/trace/trace_compare.h"
#include "model/trace/trace_report.h"
#include "model/trace/trace_store.h"
#include "tools/command.h"

namespace {

struct BisectOpts {
  std::string ref, cand, noise_ref, noise_cand;
  bool json = false;
  bool common = false;
  bool qk_as_is = false;
  std::string prior = "auto";
  pv::model::BisectCriterion crit;
};

int run_bisect(const BisectOpts& o) {
  const pv::model::QkRows qk = o.qk_as_is ? pv::model::QkRows::AsIs : pv::model::QkRows::Normalise;
  // Before any stage is read: different lengths would otherwise surface as a shape error.
  pv::model::require_same_tokens(pv::model::read_any_trace_meta(o.ref),
                                 pv::model::read_any_trace_meta(o.cand), o.ref, o.cand);
  const pv::model::TraceDiff d = pv::model::diff_trace_dirs(o.ref, o.cand, 5, !o.common, qk);
  std::unique_ptr<pv::model::TraceDiff> noise;
  if (!o.noise_ref.empty()) {
    // --noise REF2: REF vs REF2 is the clean drift (e.g. a healthy quantized run);
    // --noise-cand lets the clean pair be two other traces entirely.
    const std::string a = o.noise_cand.empty() ? o.ref : o.noise_ref;
    const std::string b = o.noise_cand.empty() ? o.noise_ref : o.noise_cand;
    noise = std::make_unique<pv::model::TraceDiff>(pv::model::diff_trace_dirs(a, b, 5, false, qk));
  }
  pv::model::BisectCriterion crit = o.crit;
  std::string prior_note = "none";
  if (o.prior == "auto") {
    crit = pv::model::with_auto_prior(crit, d.a.weight_type, d.b.weight_type);
    prior_note = fmt::format(
        "{} vs {}: 1-cos {:.3e}, NMSE {:.3e}", d.a.weight_type.empty() ? "?" : d.a.weight_type,
        d.b.weight_type.empty() ? "?" : d.b.weight_type, crit.prior_cos, crit.prior_nmse);
  }
  const pv::model::BisectResult r = pv::model::bisect(d, crit, noise.get());
  if (o.json) {
    std::cout << pv::model::bisect_json(d, r, crit, o.ref, o.cand).dump(1) << "\n";
  } else {
    std::cout << "ref:  " << o.ref << " (" << d.a.backend << ", " << d.a.dtype << ")\n"
              << "cand: " << o.cand << " (" << d.b.backend << ", " << d.b.dtype << ")\n"
              << "criterion: diverged when 1-cos or NMSE > max(abs floor, " << o.crit.ratio
              << " x noise); noise = " << r.noise_source << "\n"
              << "quantization noise prior: " << prior_note << "\n"
              << (d.qk_note.empty() ? "" : d.qk_note + "\n")
              << (o.qk_as_is ? "q/k rows compared as stored (--qk-rows-as-is)\n" : "")
              << pv::model::bisect_table(r) << pv::model::bisect_summary(r, crit);
  }
  return r.first ? 1 : 0;
}

}  // namespace

PV_COMMAND(
    "bisect", "Name the first stage where two traces diverge beyond their noise floor",
    [](CLI::App& sub) {
      auto o = std::make_shared<BisectOpts>();
      sub.add_option("REF", o->ref, "reference trace: directory or .safetensors")->required();
      sub.add_option("CAND", o->cand, "candidate trace: directory or .safetensors")->required();
      sub.add_flag("--json", o->json,
                   "machine-readable output (schema pv-bisect-v1, with first_divergence)");
      sub.add_flag("--common", o->common,
                   "compare only the stages both traces hold (default: refuse when the "
                   "stage sets differ)");
      sub.add_flag("--qk-rows-as-is", o->qk_as_is,
                   "compare q/k stages in their stored row order even when the traces' "
                   "qk_rows differ or are unknown (default: put llama GGUF rows in HF "
                   "order, refuse an unknown order)");
      sub.add_option("--ratio", o->crit.ratio,
                     "a stage diverges when its drift exceeds ratio x the noise level "
                     "(default 10)")
          ->check(CLI::PositiveNumber);
      sub.add_option("--abs-floor-cos", o->crit.abs_floor_cos,
                     "1-cosine at or below this never diverges (default 1e-5)")
          ->check(CLI::NonNegativeNumber);
      sub.add_option("--abs-floor-nmse", o->crit.abs_floor_nmse,
                     "NMSE at or below this never diverges (default 1e-5)")
          ->check(CLI::NonNegativeNumber);
      sub.add_option("--prior", o->prior,
                     "auto: when REF and CAND hold different weight types (trace.json "
                     "weight_type), start the noise level at the lossier type's measured "
                     "quantization error; none: start at 0")
          ->check(CLI::IsMember({"auto", "none"}));
      sub.add_option("--noise", o->noise_ref,
                     "clean trace REF2: REF vs REF2 gives the per-stage noise floor "
                     "instead of the running max of earlier stages");
      sub.add_option("--noise-cand", o->noise_cand,
                     "with --noise: the clean pair is (--noise, --noise-cand)");
      sub.footer(
          "Exit codes: 0 no divergence, 1 a stage diverged, 2 unreadable or mismatched "
          "inputs (including traces of different tokens, which bisect refuses).");
      return [o] { return run_bisect(*o); };
    });
