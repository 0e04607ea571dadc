#pragma once
// The report's curves as a PNG that reads on its own, for places that show images but not HTML:
// one panel per quantity, each with a title, a y axis with "nice" tick values, an epoch axis, axis
// titles and a legend naming each series beside a swatch of its colour (the HTML legend's
// colours). Text is drawn with the built-in bitmap font (bitmap_font.h).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tessera::scheduler {

struct CurveSeries {
  std::string name;                           // the legend's text
  uint32_t rgb = 0;                           // 0xRRGGBB
  std::vector<std::pair<double, double>> xy;  // (epoch, value); non-finite points are skipped
};

struct CurvePanel {
  std::string title;    // above the plot
  std::string y_title;  // the y quantity, written upwards left of the tick labels
  std::vector<CurveSeries> series;
};

struct CurvePngOptions {
  int panel_width = 720;   // 240 .. 4096
  int panel_height = 280;  // 120 .. 4096
  // Titles, tick labels, axis titles and legend names; false leaves the lines, grid, tick marks
  // and legend swatches where they would be (the layout does not change).
  bool text = true;
};

// Tick rule. A value axis (Steps::Nice) takes the smallest step of the form {1, 2, 2.5, 5} x 10^k
// whose multiples covering the data (from floor(lo / step) to ceil(hi / step)) number at most 6,
// and spans exactly those multiples: 4 to 6 ticks, e.g. 0.27..0.32 -> 0.27, 0.28, .., 0.32 and
// 0.26..0.32 -> 0.26, 0.28, 0.30, 0.32. A flat range (lo == hi: one point or a constant series)
// is widened to v +- 10% of |v| (+- 0.5 when v is 0) first. An epoch axis (Steps::Integer) takes
// steps {1, 2, 5} x 10^k >= 1 by the same count, spans [lo, hi] itself (widened by 1 each side
// when flat) and ticks the multiples inside it. A non-finite lo or hi gives no ticks.
struct AxisTicks {
  enum class Steps { Nice, Integer };
  double lo = 0, hi = 0;       // the axis' range
  double step = 0;             // 0 where the range is too wide or narrow for a decimal step
  int decimals = 0;            // digits after the point in the labels
  std::vector<double> values;  // ascending; empty: no finite data
};
AxisTicks nice_ticks(double lo, double hi, AxisTicks::Steps steps);
// A tick's label: fixed with the axis' decimals, or 3 significant digits where that is too long.
std::string tick_label(double value, const AxisTicks& axis);
// The panel's axes over its finite points (every series together).
AxisTicks panel_y_ticks(const CurvePanel& panel);
AxisTicks panel_x_ticks(const CurvePanel& panel);

// Where the plot sits inside each panel (pixels from the panel's top-left corner): the y axis at
// x = left, the x axis at y = bottom; tick labels left of and below it, the legend right of it.
struct PlotArea {
  int left = 0, top = 0, right = 0, bottom = 0;
};
PlotArea curve_plot_area(const CurvePngOptions& options);

// One panel per entry of `panels` (1 .. 16), stacked vertically; the image is panel_width x
// (panel_height * panels). Deterministic; written atomically; an Io error naming the path on
// failure, a Usage error for no panels or a size out of range.
void write_curves_png(const std::string& path, const std::vector<CurvePanel>& panels,
                      const CurvePngOptions& options = {});

}  // namespace tessera::scheduler
