// Inline SVG pieces for the HTML report: line charts (log-scale y) and stacked bars.
// Plain strings, no external resources; coordinates rounded so output is byte-stable.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "harness/report/markup_escape.h"

namespace pv::harness {

struct ChartSeries {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;  // (x, y); y > 0 for log charts
};

struct ChartMark {
  double x = 0, y = 0;
  std::string label;
};

// A line chart with a log10 y axis (values <= 0 are clamped to `y_floor`).
std::string svg_log_line_chart(const std::string& id, const std::string& title,
                               const std::string& x_label, const std::string& y_label,
                               const std::vector<ChartSeries>& series,
                               const std::optional<ChartMark>& mark, double y_floor);

struct Bar {
  std::string label;
  std::vector<std::pair<std::string, int>> parts;  // (color, count), bottom to top
  std::string title;                               // tooltip
};

std::string svg_stacked_bars(const std::string& id, const std::string& title,
                             const std::vector<Bar>& bars);

// Colour of a stage series by its index among `n` (evenly spaced hues).
std::string series_color(size_t i, size_t n);

}  // namespace pv::harness
