#include "harness/report/report_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace pv::harness {

std::string series_color(size_t i, size_t n) {
  int hue = n == 0 ? 0 : static_cast<int>((360 * i) / n);
  return fmt::format("hsl({},70%,42%)", hue);
}

std::string svg_log_line_chart(const std::string& id, const std::string& title,
                               const std::string& x_label, const std::string& y_label,
                               const std::vector<ChartSeries>& series,
                               const std::optional<ChartMark>& mark, double y_floor) {
  const double W = 760, H = 340, L = 70, R = 170, T = 30, B = 45;
  double xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  bool first = true;
  for (const auto& s : series) {
    for (auto [x, y] : s.points) {
      double ly = std::log10(std::max(y, y_floor));
      if (first) {
        xmin = xmax = x;
        ymin = ymax = ly;
        first = false;
      }
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymin = std::min(ymin, ly);
      ymax = std::max(ymax, ly);
    }
  }
  ymin = std::floor(ymin);
  ymax = std::ceil(ymax);
  if (ymax <= ymin) ymax = ymin + 1;
  if (xmax <= xmin) xmax = xmin + 1;
  auto px = [&](double x) { return L + (x - xmin) / (xmax - xmin) * (W - L - R); };
  auto py = [&](double y) {
    double ly = std::log10(std::max(y, y_floor));
    return T + (ymax - ly) / (ymax - ymin) * (H - T - B);
  };
  std::string out = fmt::format(
      "<svg id=\"{}\" class=\"chart\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "role=\"img\" aria-label=\"{}\">\n<title>{}</title>\n",
      id, W, H, W, H, markup_escape(title), markup_escape(title));
  out +=
      fmt::format("<text x=\"{}\" y=\"18\" class=\"ctitle\">{}</text>\n", L, markup_escape(title));
  // Axes and decade grid lines.
  int step = std::max(1, static_cast<int>((ymax - ymin) / 8));
  for (int d = static_cast<int>(ymin); d <= static_cast<int>(ymax); d += step) {
    double y = T + (ymax - d) / (ymax - ymin) * (H - T - B);
    out += fmt::format(
        "<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" class=\"grid\"/>"
        "<text x=\"{}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"end\">1e{}</text>\n",
        L, y, W - R, y, L - 6, y + 4, d);
  }
  int xs = std::max(1, static_cast<int>((xmax - xmin) / 12));
  for (int x = static_cast<int>(std::ceil(xmin)); x <= static_cast<int>(xmax); x += xs) {
    out +=
        fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>\n",
                    px(x), H - B + 16, x);
  }
  out += fmt::format(
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" class=\"axis\"/>"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" class=\"axis\"/>\n",
      L, H - B, W - R, H - B, L, T, L, H - B);
  out +=
      fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text>\n",
                  (L + W - R) / 2, H - 8, markup_escape(x_label));
  out += fmt::format(
      "<text x=\"14\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
      "{:.1f})\">{}</text>\n",
      (T + H - B) / 2, (T + H - B) / 2, markup_escape(y_label));
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    std::string pts;
    for (auto [x, y] : s.points) pts += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    out += fmt::format(
        "<polyline class=\"series\" data-stage=\"{}\" points=\"{}\" fill=\"none\" stroke=\"{}\" "
        "stroke-width=\"1.6\"><title>{}</title></polyline>\n",
        markup_escape(s.name), pts, s.color, markup_escape(s.name));
    double ly = T + 4 + 13.0 * static_cast<double>(i);
    out += fmt::format(
        "<rect x=\"{}\" y=\"{:.1f}\" width=\"10\" height=\"3\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{:.1f}\" class=\"legend\">{}</text>\n",
        W - R + 10, ly, s.color, W - R + 24, ly + 4, markup_escape(s.name));
  }
  if (mark) {
    double x = px(mark->x), y = py(mark->y);
    // Keep the label clear of the legend: right of the line in the left half, else left.
    bool right_half = x > (L + W - R) / 2;
    out += fmt::format(
        "<g class=\"first-divergence\"><line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" "
        "stroke=\"#c0392b\" stroke-dasharray=\"4 3\"/>"
        "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"6\" fill=\"none\" stroke=\"#c0392b\" "
        "stroke-width=\"2.5\"/><text x=\"{:.1f}\" y=\"{}\" class=\"mark\" "
        "text-anchor=\"{}\">{}</text></g>\n",
        x, T, x, H - B, x, y, right_half ? x - 6 : x + 6, T + 10, right_half ? "end" : "start",
        markup_escape(mark->label));
  }
  out += "</svg>\n";
  return out;
}

std::string svg_stacked_bars(const std::string& id, const std::string& title,
                             const std::vector<Bar>& bars) {
  const double H = 240, T = 30, B = 40, L = 40, bw = 46, gap = 18;
  const double W = std::max(480.0, L + (bw + gap) * static_cast<double>(bars.size()) + 20);
  int maxv = 1;
  for (const auto& b : bars) {
    int sum = 0;
    for (const auto& p : b.parts) sum += p.second;
    maxv = std::max(maxv, sum);
  }
  std::string out = fmt::format(
      "<svg id=\"{}\" class=\"chart\" width=\"{:.0f}\" height=\"{}\" viewBox=\"0 0 {:.0f} {}\" "
      "role=\"img\" aria-label=\"{}\">\n<title>{}</title>\n"
      "<text x=\"{}\" y=\"18\" class=\"ctitle\">{}</text>\n",
      id, W, H, W, H, markup_escape(title), markup_escape(title), L, markup_escape(title));
  out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{:.0f}\" y2=\"{}\" class=\"axis\"/>\n", L,
                     H - B, W - 10, H - B);
  out += fmt::format("<text x=\"{}\" y=\"{}\" class=\"tick\" text-anchor=\"end\">{}</text>\n",
                     L - 4, T + 4, maxv);
  for (size_t i = 0; i < bars.size(); ++i) {
    const auto& b = bars[i];
    double x = L + 10 + (bw + gap) * static_cast<double>(i);
    double y = H - B;
    out += fmt::format("<g class=\"bar\" data-label=\"{}\"><title>{}</title>\n",
                       markup_escape(b.label), markup_escape(b.title));
    for (const auto& [color, n] : b.parts) {
      if (n == 0) continue;
      double h = (H - B - T) * n / maxv;
      y -= h;
      out += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{}\" height=\"{:.1f}\" fill=\"{}\"/>\n", x, y,
          bw, h, color);
    }
    out += fmt::format(
        "<text x=\"{:.1f}\" y=\"{}\" class=\"tick\" text-anchor=\"middle\">{}</text></g>\n",
        x + bw / 2, H - B + 16, markup_escape(b.label));
  }
  out += "</svg>\n";
  return out;
}

}  // namespace pv::harness
