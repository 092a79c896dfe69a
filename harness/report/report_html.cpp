#include "harness/report/report_html.h"

#include <fmt/format.h>

#include <set>

#include "harness/report/report_svg.h"

namespace pv::harness {
namespace {

const char* status_color(Status s) {
  switch (s) {
    case Status::FALSIFIED:
      return "#c0392b";
    case Status::BLOCKER_FIXTURE_ABSENT:
      return "#7f8c8d";
    case Status::PARTIAL_ALGORITHM_LEVEL:
      return "#e67e22";
    case Status::FUNCTIONAL:
      return "#2980b9";
    case Status::DISCHARGED:
      return "#27ae60";
  }
  return "#000";
}

const char* kStyle =
    R"(body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;max-width:1100px}
h1{margin:0 0 4px}h2{margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.status{font-weight:600;color:#fff;border-radius:3px;padding:1px 6px;white-space:nowrap}
.muted{color:#777}.chart{display:block;margin:8px 0;background:#fcfcfc;border:1px solid #eee}
.ctitle{font-weight:600;font-size:13px}.tick,.legend{font-size:11px;fill:#444}.mark{font-size:12px;fill:#c0392b;font-weight:600}
.grid{stroke:#e6e6e6}.axis{stroke:#888}.flag{color:#c0392b;font-weight:600}
)";

std::string status_badge(Status s, const std::string& extra = "") {
  return fmt::format("<span class=\"status s-{}\" style=\"background:{}\">{}{}</span>",
                     status_name(s), status_color(s), status_name(s), extra);
}

// Five cells FALSIFIED..DISCHARGED: the earned cell filled, cells below it tinted, levels
// the falsifier declares outlined, the claimed level marked with a triangle.
std::string ladder_svg(const MergedFalsifier& m, const std::vector<std::string>& declared) {
  std::string out = fmt::format(
      "<svg class=\"ladder\" width=\"150\" height=\"22\" viewBox=\"0 0 150 22\" role=\"img\" "
      "aria-label=\"earned {}\"><title>earned {}, claimed {}</title>",
      status_name(m.earned), status_name(m.earned), status_name(m.claimed));
  for (int i = 0; i < 5; ++i) {
    auto s = static_cast<Status>(i);
    bool is_declared =
        std::find(declared.begin(), declared.end(), std::string(status_name(s))) != declared.end();
    std::string fill = i == static_cast<int>(m.earned)  ? status_color(s)
                       : i < static_cast<int>(m.earned) ? "#dfe6e9"
                                                        : "#ffffff";
    out += fmt::format(
        "<rect x=\"{}\" y=\"6\" width=\"26\" height=\"14\" fill=\"{}\" stroke=\"{}\" "
        "stroke-width=\"{}\"><title>{}{}</title></rect>",
        2 + 29 * i, fill, is_declared ? "#333" : "#bbb", is_declared ? 1.5 : 0.8, status_name(s),
        is_declared ? " (declared)" : "");
    if (s == m.claimed) {
      out += fmt::format("<path d=\"M{} 0 L{} 5 L{} 0 Z\" fill=\"#333\"/>", 10 + 29 * i,
                         15 + 29 * i, 20 + 29 * i);
    }
  }
  return out + "</svg>";
}

std::string contracts_section(const ReportInputs& in) {
  std::string out = "<section id=\"contracts\"><h2>Ladder per contract</h2>\n";
  out +=
      "<p class=\"muted\">Each row: the ladder FALSIFIED &rarr; DISCHARGED, the earned level "
      "filled, declared levels outlined, the claimed level marked &#9660;. <em>Capped by</em> "
      "says what keeps a falsifier from the next level.</p>\n";
  std::set<std::string> contracts;
  for (const auto& m : in.index->falsifiers) contracts.insert(m.contract_id);
  for (const auto& cid : contracts) {
    auto it = in.contracts.find(cid);
    const ContractInfo* info = it == in.contracts.end() ? nullptr : &it->second;
    auto tally_it = in.index->per_contract.find(cid);
    Tally t = tally_it == in.index->per_contract.end() ? Tally{} : tally_it->second;
    out += fmt::format("<div class=\"contract\" data-contract=\"{}\"><h3>{}</h3>\n",
                       markup_escape(cid), markup_escape(cid));
    if (info != nullptr && !info->description.empty()) {
      out += "<p>" + markup_escape(info->description) + "</p>\n";
    }
    out += fmt::format("<p class=\"muted\">{}</p>\n", markup_escape(tally_line(t)));
    out +=
        "<table><tr><th>Falsifier</th><th>Ladder</th><th>Earned</th><th>Claimed</th>"
        "<th>Capped by</th><th>Runs / machines</th></tr>\n";
    for (const auto& m : in.index->falsifiers) {
      if (m.contract_id != cid) continue;
      std::vector<std::string> declared;
      if (info != nullptr) {
        for (const auto& f : info->falsifiers) {
          if (f.id == m.falsifier_id) declared = f.levels;
        }
      }
      std::string flags;
      if (m.flaky) flags += " <span class=\"flag\">FLAKY</span>";
      if (m.stale) flags += " <span class=\"flag\">STALE</span>";
      if (m.claimed > m.earned) flags += " <span class=\"flag\">OVERCLAIM</span>";
      std::string cap = m.stale ? m.stale_reason : m.capped_by;
      out += fmt::format(
          "<tr data-falsifier=\"{}\" data-earned=\"{}\" data-claimed=\"{}\"><td>{}{}</td>"
          "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td></tr>\n",
          markup_escape(m.falsifier_id), status_name(m.earned), status_name(m.claimed),
          markup_escape(m.falsifier_id), flags, ladder_svg(m, declared), status_badge(m.earned),
          status_name(m.claimed),
          cap.empty() ? "<span class=\"muted\">-</span>" : markup_escape(cap), m.runs, m.machines);
    }
    out += "</table></div>\n";
  }
  return out + "</section>\n";
}

std::string history_section(const SpecState& s, const std::string& spec_name) {
  std::string out = "<section id=\"history\"><h2>Tally over spec versions</h2>\n";
  if (s.history.empty()) {
    return out +
           "<p class=\"muted\">The spec has no amendments yet (run pv amend).</p></section>\n";
  }
  std::vector<Bar> bars;
  for (const auto& e : s.history) {
    Bar b;
    b.label = e.version;
    std::string tip =
        fmt::format("{} (amendment {}, {}, {}): ", e.version, e.amendment, e.bump, e.date);
    for (int i = 0; i < 5; ++i) {
      b.parts.emplace_back(status_color(static_cast<Status>(i)), e.tally.count[i]);
    }
    b.title = tip + tally_line(e.tally);
    bars.push_back(std::move(b));
  }
  out += fmt::format("<p class=\"muted\">From the amendment log of {} (now {}).</p>\n",
                     markup_escape(spec_name), s.version.str());
  out += svg_stacked_bars("tally-history", "Falsifiers per earned level, by spec version", bars);
  out += "<p>";
  for (int i = 4; i >= 0; --i) out += status_badge(static_cast<Status>(i)) + " ";
  out += "</p>\n<table><tr><th>Amendment</th><th>Version</th><th>Bump</th><th>Evidence of</th>";
  for (int i = 4; i >= 0; --i)
    out += fmt::format("<th>{}</th>", status_name(static_cast<Status>(i)));
  out += "</tr>\n";
  for (const auto& e : s.history) {
    out += fmt::format("<tr data-version=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                       markup_escape(e.version), e.amendment, markup_escape(e.version),
                       markup_escape(e.bump), markup_escape(e.date));
    for (int i = 4; i >= 0; --i) out += fmt::format("<td>{}</td>", e.tally.count[i]);
    out += "</tr>\n";
  }
  return out + "</table></section>\n";
}

// After the page is parsed: count the rendered rows per earned level into #rendered-tally,
// so a headless browser's DOM dump proves the page rendered and agrees with the index.
const char* kScript = R"(<script>
(function(){var rows=document.querySelectorAll('tr[data-earned]');var c={};
for(var i=0;i<rows.length;i++){var s=rows[i].getAttribute('data-earned');c[s]=(c[s]||0)+1;}
var k=Object.keys(c).sort();var el=document.getElementById('rendered-tally');
el.textContent='rendered '+rows.length+' falsifiers: '+k.map(function(x){return x+' '+c[x];}).join(', ');
el.setAttribute('data-rendered','yes');})();
</script>
)";

}  // namespace

std::string render_report_html(const ReportInputs& in) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width\"><title>pv report</title><style>";
  out += kStyle;
  out += "</style></head><body>\n<h1>pv report</h1>\n";
  if (in.spec != nullptr) {
    out += fmt::format(
        "<p id=\"spec-version\">Spec {} {} (amendment {}, amended from evidence index "
        "<code>{}</code> "
        "of {}).</p>\n",
        markup_escape(in.spec_name), in.spec->version.str(), in.spec->amendment,
        markup_escape(in.spec->evidence_digest.substr(0, 12)),
        markup_escape(in.spec->evidence_date));
  }
  if (in.index != nullptr) {
    out += fmt::format(
        "<p id=\"evidence\">Evidence index <code>{}</code>: {} bundles, latest {}. Tally: "
        "{}.{}</p>\n",
        markup_escape(in.index->digest.substr(0, 12)), in.index->bundles_read,
        markup_escape(in.index->latest_generated_at), markup_escape(tally_line(in.index->total)),
        in.index->stale_bundles.empty()
            ? ""
            : fmt::format(" {} stale bundles ignored.", in.index->stale_bundles.size()));
    out +=
        "<p id=\"rendered-tally\" data-rendered=\"no\">(the tally check runs in the browser)</p>\n";
    out += contracts_section(in);
  }
  if (in.spec != nullptr) out += history_section(*in.spec, in.spec_name);
  for (const auto& [name, j] : in.bisects) out += render_bisect_section(name, j);
  out += kScript;
  out += "</body></html>\n";
  return out;
}

}  // namespace pv::harness
