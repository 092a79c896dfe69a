// The bisect part of the HTML report: pv-bisect-v1 JSON (tools/cmd_bisect.cpp, the trace
// helper's format): stages[] with stage, layer (null for whole-model stages), cosine, nmse
// (numbers, or "nan"/"inf" strings) and first_divergence (null or {layer, stage, ...}).
#include <fmt/format.h>

#include <cmath>
#include <map>

#include "harness/report/report_html.h"
#include "harness/report/report_svg.h"

namespace pv::harness {
namespace {

using nlohmann::json;

std::optional<double> number(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return std::nullopt;
  const json& v = j[key];
  if (v.is_number()) return v.get<double>();
  return std::nullopt;  // "nan"/"inf" strings or absent: not plottable
}

std::string fmt_num(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return "-";
  const json& v = j[key];
  if (v.is_number()) return fmt::format("{:.6g}", v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  return "-";
}

}  // namespace

std::string render_bisect_section(const std::string& name, const json& b) {
  std::string sid = "bisect-" + std::to_string(std::hash<std::string>{}(name) % 100000);
  std::string out = fmt::format("<section class=\"bisect\" id=\"{}\"><h2>Bisect: {}</h2>\n", sid,
                                markup_escape(name));
  if (!b.is_object() || !b.contains("stages") || !b["stages"].is_array()) {
    return out + "<p class=\"flag\">not a pv-bisect-v1 document (no stages array)</p></section>\n";
  }
  if (b.contains("ref") || b.contains("cand")) {
    out += fmt::format("<p class=\"muted\">reference {} vs candidate {}</p>\n",
                       markup_escape(b.value("ref", "?")), markup_escape(b.value("cand", "?")));
  }
  // Per-layer stages become series over layers, in the order they first appear (the
  // computation order bisect walks).
  std::vector<std::string> order;
  std::map<std::string, ChartSeries> cos_series, nmse_series;
  std::vector<const json*> whole_model;
  for (const auto& row : b["stages"]) {
    if (!row.is_object()) continue;
    std::string stage = row.value("stage", "?");
    if (!row.contains("layer") || !row["layer"].is_number_integer()) {
      whole_model.push_back(&row);
      continue;
    }
    double layer = row["layer"].get<int>();
    if (!cos_series.count(stage)) {
      order.push_back(stage);
      cos_series[stage].name = stage;
      nmse_series[stage].name = stage;
    }
    if (auto c = number(row, "cosine")) cos_series[stage].points.emplace_back(layer, 1.0 - *c);
    if (auto n = number(row, "nmse")) nmse_series[stage].points.emplace_back(layer, *n);
  }
  std::vector<ChartSeries> cs, ns;
  for (size_t i = 0; i < order.size(); ++i) {
    cos_series[order[i]].color = nmse_series[order[i]].color = series_color(i, order.size());
    cs.push_back(cos_series[order[i]]);
    ns.push_back(nmse_series[order[i]]);
  }
  const json fd = b.contains("first_divergence") ? b["first_divergence"] : json();
  std::optional<ChartMark> cmark, nmark;
  std::string fd_text = "no divergence beyond the noise floor";
  if (fd.is_object()) {
    std::string where =
        fd.contains("layer") && fd["layer"].is_number_integer()
            ? fmt::format("layer {} {}", fd["layer"].get<int>(), fd.value("stage", "?"))
            : fd.value("stage", "?") + " (whole model)";
    fd_text = "first divergence: " + where;
    if (fd.contains("layer") && fd["layer"].is_number_integer()) {
      double x = fd["layer"].get<int>();
      if (auto c = number(fd, "cosine")) cmark = ChartMark{x, 1.0 - *c, fd_text};
      if (auto n = number(fd, "nmse")) nmark = ChartMark{x, *n, fd_text};
    }
  }
  out += fmt::format("<p class=\"first-divergence-text{}\" data-first-divergence=\"{}\">{}</p>\n",
                     fd.is_object() ? " flag" : "", fd.is_object() ? "yes" : "no",
                     markup_escape(fd_text));
  if (!cs.empty()) {
    out += svg_log_line_chart(sid + "-cos", "1 - cosine per stage across layers (log scale)",
                              "layer", "1 - cosine", cs, cmark, 1e-12);
    out += svg_log_line_chart(sid + "-nmse", "NMSE per stage across layers (log scale)", "layer",
                              "NMSE", ns, nmark, 1e-20);
  }
  if (fd.is_object()) {
    out +=
        "<table><tr><th>Stage</th><th>Layer</th><th>cosine</th><th>NMSE</th>"
        "<th>noise floor (NMSE)</th><th>jump</th><th>reason</th></tr>\n";
    out += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></"
        "table>\n",
        markup_escape(fd.value("stage", "?")),
        fd.contains("layer") && fd["layer"].is_number_integer()
            ? std::to_string(fd["layer"].get<int>())
            : "-",
        fmt_num(fd, "cosine"), fmt_num(fd, "nmse"), fmt_num(fd, "floor_nmse"), fmt_num(fd, "jump"),
        markup_escape(fd.value("reason", "")));
  }
  if (!whole_model.empty()) {
    out += "<table><tr><th>Whole-model stage</th><th>cosine</th><th>NMSE</th></tr>\n";
    for (const json* r : whole_model) {
      out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                         markup_escape(r->value("stage", "?")), fmt_num(*r, "cosine"),
                         fmt_num(*r, "nmse"));
    }
    out += "</table>\n";
  }
  return out + "</section>\n";
}

}  // namespace pv::harness
