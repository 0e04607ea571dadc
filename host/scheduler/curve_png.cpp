#include "host/scheduler/curve_png.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/bitmap_font.h"

namespace tessera::scheduler {

namespace {

constexpr uint32_t kInk = 0x222222;   // titles, labels, legend names
constexpr uint32_t kAxis = 0x444444;  // axes and tick marks
constexpr uint32_t kGrid = 0xdddddd;
constexpr int kMaxTicks = 6;
constexpr int kMaxFixedLabel = 9;  // characters
constexpr int kTickLength = 4;
constexpr int kLabelGap = 8;  // from the y axis to the right edge of its labels' ink
constexpr int kSwatchW = 16, kSwatchH = 8, kLegendRow = 18;

struct Canvas {
  int w, h;
  bool text_on;
  std::vector<uint8_t> rgb;  // (h, w, 3)
  Canvas(int w_, int h_, bool text)
      : w(w_), h(h_), text_on(text), rgb(static_cast<size_t>(w_) * h_ * 3, 255) {}
  void dot(int x, int y, uint32_t c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    uint8_t* p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
    p[0] = (c >> 16) & 0xff;
    p[1] = (c >> 8) & 0xff;
    p[2] = c & 0xff;
  }
  void fill(int x, int y, int fw, int fh, uint32_t c) {
    for (int j = 0; j < fh; ++j)
      for (int i = 0; i < fw; ++i) dot(x + i, y + j, c);
  }
  // Bresenham, `thick` pixels wide.
  void line(int x0, int y0, int x1, int y1, uint32_t c, int thick) {
    const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    while (true) {
      fill(x0 - thick / 2, y0 - thick / 2, thick, thick, c);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }
  // `s` with its top-left corner at (x, y).
  void text(int x, int y, const std::string& s, int scale) {
    if (text_on) for_each_text_pixel(s, scale, [&](int dx, int dy) { dot(x + dx, y + dy, kInk); });
  }
  // `s` turned a quarter left (read bottom to top), its first glyph's bottom-left at (x, y).
  void text_up(int x, int y, const std::string& s) {
    if (text_on) for_each_text_pixel(s, 1, [&](int dx, int dy) { dot(x + dy, y - dx, kInk); });
  }
};

// Every finite (x, y) of the panel as min/max of each coordinate; no points: all NaN.
struct DataRange {
  double xmin = NAN, xmax = NAN, ymin = NAN, ymax = NAN;
};
DataRange data_range(const CurvePanel& panel) {
  DataRange r;
  for (const CurveSeries& s : panel.series)
    for (auto [x, y] : s.xy) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      r.xmin = std::isnan(r.xmin) ? x : std::min(r.xmin, x);
      r.xmax = std::isnan(r.xmax) ? x : std::max(r.xmax, x);
      r.ymin = std::isnan(r.ymin) ? y : std::min(r.ymin, y);
      r.ymax = std::isnan(r.ymax) ? y : std::max(r.ymax, y);
    }
  return r;
}

// i * m * 10^k, divided rather than multiplied by a power of ten below 1 so that 27 x 0.01
// comes out as the double nearest 0.27.
double tick_value(double i, double m, int k) {
  if (i == 0) return 0;
  if (k < 0 && k > -300) return i * m / std::pow(10.0, -k);
  return i * m * std::pow(10.0, k);
}

// The smallest step m x 10^k (see nice_ticks) whose covering multiples number at most
// kMaxTicks; false where none is representable.
bool choose_step(double lo, double hi, bool integer, double* m_out, int* k_out) {
  static const double kMantissas[] = {1, 2, 2.5, 5};
  int k = static_cast<int>(std::floor(std::log10(hi - lo))) - 1;
  if (integer) k = std::max(k, 0);
  for (; k <= 308; ++k)
    for (double m : kMantissas) {
      if (integer && m == 2.5) continue;
      const double step = m * std::pow(10.0, k);
      const double f = std::floor(lo / step + 1e-9), c = std::ceil(hi / step - 1e-9);
      if (step > 0 && std::isfinite(step) && c - f + 1 <= kMaxTicks) {
        *m_out = m;
        *k_out = k;
        return true;
      }
    }
  return false;
}

}  // namespace

AxisTicks nice_ticks(double lo, double hi, AxisTicks::Steps steps) {
  AxisTicks t;
  if (!std::isfinite(lo) || !std::isfinite(hi)) return t;
  if (lo > hi) std::swap(lo, hi);
  const bool integer = steps == AxisTicks::Steps::Integer;
  if (lo == hi) {
    const double d = integer ? 1.0 : lo == 0 ? 0.5 : std::abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  t.lo = lo;
  t.hi = hi;
  double m = 0;
  int k = 0;
  if (!std::isfinite(hi - lo) || hi - lo <= 0 || !choose_step(lo, hi, integer, &m, &k)) {
    t.values = {lo, hi};  // too wide or too narrow for decimal steps: just the ends
    return t;
  }
  t.step = m * std::pow(10.0, k);
  t.decimals = std::max(0, (m == 2.5 ? 1 : 0) - k);
  double first = std::floor(lo / t.step + 1e-9), last = std::ceil(hi / t.step - 1e-9);
  if (integer) {  // the data's own range, ticked inside
    first = std::ceil(lo / t.step - 1e-9);
    last = std::floor(hi / t.step + 1e-9);
  }
  // Counted, not `++i` on a double: beyond 2^53 that would never reach `last`.
  for (int j = 0; j <= kMaxTicks && first + j <= last; ++j)
    t.values.push_back(tick_value(first + j, m, k));
  if (!integer && !t.values.empty()) {
    t.lo = t.values.front();
    t.hi = t.values.back();
  }
  return t;
}

std::string tick_label(double value, const AxisTicks& axis) {
  if (value == 0) value = 0;  // no "-0"
  char buf[64];
  int n = -1;
  if (axis.step > 0) n = std::snprintf(buf, sizeof buf, "%.*f", axis.decimals, value);
  if (n > kMaxFixedLabel) {
    // Too long as a fixed number: in exponent form, with as many digits as the step needs to
    // tell neighbouring ticks apart (1.2345e-05, 1.2346e-05).
    const double biggest = std::max(std::abs(axis.lo), std::abs(axis.hi));
    const double step_exponent = std::floor(std::log10(axis.step) + 1e-9);
    const double mantissa = axis.step / std::pow(10.0, step_exponent);
    const double digits =
        std::floor(std::log10(biggest)) - step_exponent + (std::abs(mantissa - 2.5) < 1e-9 ? 1 : 0);
    n = std::snprintf(buf, sizeof buf, "%.*e", static_cast<int>(std::clamp(digits, 0.0, 15.0)),
                      value);
  }
  if (n < 0) n = std::snprintf(buf, sizeof buf, "%.3g", value);  // no step: the range's ends
  return std::string(buf, static_cast<size_t>(std::max(n, 0)));
}

AxisTicks panel_y_ticks(const CurvePanel& panel) {
  const DataRange r = data_range(panel);
  return nice_ticks(r.ymin, r.ymax, AxisTicks::Steps::Nice);
}

AxisTicks panel_x_ticks(const CurvePanel& panel) {
  const DataRange r = data_range(panel);
  return nice_ticks(r.xmin, r.xmax, AxisTicks::Steps::Integer);
}

PlotArea curve_plot_area(const CurvePngOptions& o) {
  // Left: the y title and labels of up to 10 characters; right: the legend; top: the title.
  return {90, 36, o.panel_width - 170, o.panel_height - 40};
}

namespace {

// Maps data to pixels of one panel whose top edge is at canvas row `top`.
struct Mapping {
  PlotArea a;
  int top;
  AxisTicks x, y;
  int X(double v) const {
    return static_cast<int>(std::lround(a.left + (v - x.lo) / (x.hi - x.lo) * (a.right - a.left)));
  }
  int Y(double v) const {
    return static_cast<int>(
        std::lround(top + a.bottom - (v - y.lo) / (y.hi - y.lo) * (a.bottom - a.top)));
  }
};

void draw_y_axis(Canvas& cv, const Mapping& m, const std::string& y_title) {
  int widest = 0;
  for (double v : m.y.values) {
    const int py = m.Y(v);
    cv.line(m.a.left + 1, py, m.a.right, py, kGrid, 1);
    cv.line(m.a.left - kTickLength, py, m.a.left - 1, py, kAxis, 1);
    const std::string label = tick_label(v, m.y);
    const int w = text_width(label, 1);
    widest = std::max(widest, w);
    // Right-aligned: the last glyph's last column (w - 2) lands kLabelGap left of the axis.
    cv.text(m.a.left - kLabelGap - w + 2, py - kGlyphAscent / 2, label, 1);
  }
  const int labels_left = m.a.left - kLabelGap - widest + 2;
  const int x = std::max(4, labels_left - 8 - kGlyphHeight);
  const int mid = m.top + (m.a.top + m.a.bottom) / 2;
  cv.text_up(x, mid + text_width(y_title, 1) / 2, y_title);
}

void draw_x_axis(Canvas& cv, const Mapping& m) {
  for (double v : m.x.values) {
    const int px = m.X(v);
    cv.line(px, m.top + m.a.bottom + 1, px, m.top + m.a.bottom + kTickLength, kAxis, 1);
    const std::string label = tick_label(v, m.x);
    cv.text(px - (text_width(label, 1) - 2) / 2, m.top + m.a.bottom + 7, label, 1);
  }
  const std::string title = "epoch";
  cv.text((m.a.left + m.a.right - text_width(title, 1)) / 2, m.top + m.a.bottom + 22, title, 1);
}

void draw_series(Canvas& cv, const Mapping& m, const CurveSeries& s) {
  bool have = false;
  int px = 0, py = 0;
  for (auto [x, y] : s.xy) {
    if (!std::isfinite(x) || !std::isfinite(y)) continue;
    const int qx = m.X(x), qy = m.Y(y);
    if (have) cv.line(px, py, qx, qy, s.rgb, 2);
    px = qx;
    py = qy;
    have = true;
  }
  for (auto [x, y] : s.xy)  // points over the lines, as the SVG chart's circles
    if (std::isfinite(x) && std::isfinite(y)) cv.fill(m.X(x) - 2, m.Y(y) - 2, 4, 4, s.rgb);
}

// A swatch of each series' colour and its name, one row each, right of the plot.
void draw_legend(Canvas& cv, const PlotArea& a, int top, int panel_width,
                 const std::vector<CurveSeries>& series) {
  const int x = a.right + 14;
  const int name_x = x + kSwatchW + 6;
  const size_t fits = static_cast<size_t>(std::max(0, (panel_width - name_x - 4) / kGlyphAdvance));
  for (size_t i = 0; i < series.size(); ++i) {
    const int y = top + a.top + 4 + kLegendRow * static_cast<int>(i);
    cv.fill(x, y, kSwatchW, kSwatchH, series[i].rgb);
    cv.text(name_x, y, series[i].name.substr(0, fits), 1);
  }
}

void draw_panel(Canvas& cv, int top, const CurvePngOptions& o, const CurvePanel& panel) {
  const PlotArea a = curve_plot_area(o);
  const int title_scale = text_width(panel.title, 2) <= o.panel_width - a.left - 10 ? 2 : 1;
  cv.text(a.left, top + 8, panel.title, title_scale);
  cv.line(a.left, top + a.top, a.left, top + a.bottom, kAxis, 1);
  cv.line(a.left, top + a.bottom, a.right, top + a.bottom, kAxis, 1);
  draw_legend(cv, a, top, o.panel_width, panel.series);
  const Mapping m{a, top, panel_x_ticks(panel), panel_y_ticks(panel)};
  if (m.y.values.empty()) {  // no finite point in any series
    const std::string none = "no data";
    cv.text((a.left + a.right - text_width(none, 1)) / 2, top + (a.top + a.bottom) / 2, none, 1);
    return;
  }
  draw_y_axis(cv, m, panel.y_title);
  draw_x_axis(cv, m);
  for (const CurveSeries& s : panel.series) draw_series(cv, m, s);
}

}  // namespace

void write_curves_png(const std::string& path, const std::vector<CurvePanel>& panels,
                      const CurvePngOptions& o) {
  if (panels.empty() || panels.size() > 16)
    TESSERA_THROW(Usage, "write_curves_png '" << path << "': " << panels.size()
                                              << " panels (1 to 16 are drawn)");
  if (o.panel_width < 240 || o.panel_width > 4096 || o.panel_height < 120 || o.panel_height > 4096)
    TESSERA_THROW(Usage, "write_curves_png '" << path << "': panel size " << o.panel_width << "x"
                                              << o.panel_height
                                              << " (width 240..4096, height 120..4096)");
  Canvas cv(o.panel_width, o.panel_height * static_cast<int>(panels.size()), o.text);
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(cv, static_cast<int>(i) * o.panel_height, o, panels[i]);
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(cv.w);
  img.height = static_cast<png_uint_32>(cv.h);
  img.format = PNG_FORMAT_RGB;
  png_alloc_size_t bytes = 0;
  if (!png_image_write_to_memory(&img, nullptr, &bytes, 0, cv.rgb.data(), 0, nullptr))
    TESSERA_THROW(Io, "cannot encode '" << path << "': " << img.message);
  std::string buf(bytes, '\0');
  if (!png_image_write_to_memory(&img, buf.data(), &bytes, 0, cv.rgb.data(), 0, nullptr))
    TESSERA_THROW(Io, "cannot encode '" << path << "': " << img.message);
  buf.resize(bytes);
  write_file_atomic(path, buf);
}

}  // namespace tessera::scheduler
