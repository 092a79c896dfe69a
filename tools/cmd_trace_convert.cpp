// pv trace-convert IN OUT: rewrite a trace in the other form, values bit-exact: an APRT
// directory <-> one safetensors file (model/trace/FORMAT.md). Aliased stage names are
// written as pv's names; user stages and their declared order are kept.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "model/trace/trace_store.h"
#include "tools/command.h"

namespace {

struct ConvertOpts {
  std::string in, out, format = "auto";
};

int run_convert(const ConvertOpts& o) {
  const pv::model::OpenTrace t = pv::model::open_trace(o.in);
  const auto fmt_out = pv::model::format_for_output(o.out, o.format);
  if (fmt_out == pv::model::TraceFormat::Safetensors) {
    pv::model::write_safetensors_trace(t, o.out);
  } else {
    pv::model::write_aprt_trace(t, o.out);
  }
  std::cout << fmt::format(
      "{} -> {} ({}, {} stages)\n", o.in, o.out,
      fmt_out == pv::model::TraceFormat::Safetensors ? "safetensors" : "APRT directory",
      t.meta.entries.size());
  return 0;
}

}  // namespace

PV_COMMAND("trace-convert",
           "Rewrite a trace as a safetensors file or an APRT directory (values bit-exact)",
           [](CLI::App& sub) {
             auto o = std::make_shared<ConvertOpts>();
             sub.add_option("IN", o->in, "trace: APRT directory or .safetensors file")->required();
             sub.add_option("OUT", o->out, "trace to write")->required();
             sub.add_option("--format", o->format,
                            "aprt, safetensors, or auto: safetensors when OUT ends in "
                            ".safetensors (default auto)")
                 ->check(CLI::IsMember({"auto", "aprt", "safetensors"}));
             sub.footer("Exit codes: 0 written, 2 unreadable or invalid input trace.");
             return [o] { return run_convert(*o); };
           });
