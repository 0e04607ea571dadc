// curves.png reads on its own: the built-in bitmap font, the nice-tick rule, and the decoded PNG
// (size, legend swatches in each series' colour, legend names, titles and tick labels drawn
// with the font where the tick marks are, and none of that text when text is switched off).
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/bitmap_font.h"
#include "host/scheduler/curve_png.h"

namespace tessera::scheduler {
namespace {

using Pixels = std::set<std::pair<int, int>>;  // (x, y)

Pixels text_pixels(const std::string& text, int scale) {
  Pixels p;
  for_each_text_pixel(text, scale, [&](int x, int y) { p.insert({x, y}); });
  return p;
}

// `p` moved so that its left-most column and top-most row are 0.
Pixels at_origin(const Pixels& p) {
  if (p.empty()) return p;
  int x0 = p.begin()->first, y0 = p.begin()->second;
  for (auto [x, y] : p) {
    x0 = std::min(x0, x);
    y0 = std::min(y0, y);
  }
  Pixels out;
  for (auto [x, y] : p) out.insert({x - x0, y - y0});
  return out;
}

TEST(BitmapFont, DigitOneHasItsPatternAndScalesByWholePixels) {
  const char* one[kGlyphHeight] = {"..#..", ".##..", "..#..", "..#..", "..#..",
                                   "..#..", ".###.", ".....", "....."};
  Pixels expected, expected2;
  for (int y = 0; y < kGlyphHeight; ++y)
    for (int x = 0; x < kGlyphWidth; ++x)
      if (one[y][x] == '#') {
        expected.insert({x, y});
        for (int s = 0; s < 4; ++s) expected2.insert({2 * x + s % 2, 2 * y + s / 2});
      }
  EXPECT_EQ(text_pixels("1", 1), expected);
  EXPECT_EQ(text_pixels("1", 2), expected2);
  // The second glyph starts one advance to the right.
  Pixels two_ones = expected;
  for (auto [x, y] : expected) two_ones.insert({x + kGlyphAdvance, y});
  EXPECT_EQ(text_pixels("11", 1), two_ones);
  EXPECT_TRUE(text_pixels("   ", 1).empty());
}

TEST(BitmapFont, TailsHangBelowTheBaselineAndNothingElseDoes) {
  for (char c = ' '; c < 127; ++c) {
    if (!has_glyph(c)) continue;
    bool below = false;
    for (auto [x, y] : text_pixels(std::string(1, c), 1)) below |= y >= kGlyphAscent;
    EXPECT_EQ(below, std::string("gjpqy,_").find(c) != std::string::npos) << c;
  }
}

TEST(BitmapFont, WidthIsGlyphsTimesAdvanceAndUnknownCharactersDrawAsQuestionMark) {
  EXPECT_EQ(text_width("0.25", 1), 4 * kGlyphAdvance);
  EXPECT_EQ(text_width("0.25", 2), 8 * kGlyphAdvance);
  EXPECT_EQ(text_width("", 1), 0);
  for (int scale : {1, 2})
    for (auto [x, y] : text_pixels("epoch 0.25", scale)) {
      EXPECT_LT(x, text_width("epoch 0.25", scale));
      EXPECT_LT(y, kGlyphHeight * scale);
    }
  EXPECT_FALSE(has_glyph('~'));
  EXPECT_FALSE(has_glyph('\xe9'));
  EXPECT_EQ(text_pixels("~", 1), text_pixels("?", 1));
  EXPECT_EQ(text_pixels("\xe9", 1), text_pixels("?", 1));
}

TEST(BitmapFont, EveryCharacterReportsUseHasItsOwnGlyph) {
  const std::string chars =
      "0123456789.,-+()/@:%_?=!'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  std::set<GlyphRows> seen;
  for (char c : chars) {
    EXPECT_TRUE(has_glyph(c)) << c;
    EXPECT_FALSE(text_pixels(std::string(1, c), 1).empty()) << c;
    EXPECT_TRUE(seen.insert(glyph_rows(c)).second) << "'" << c << "' looks like another glyph";
  }
  EXPECT_TRUE(has_glyph(' '));
}

std::vector<std::string> labels(const AxisTicks& t) {
  std::vector<std::string> out;
  for (double v : t.values) out.push_back(tick_label(v, t));
  return out;
}

using Strings = std::vector<std::string>;

TEST(NiceTicks, ValueAxesTakeTheSmallestNiceStepWithAtMostSixTicks) {
  using S = AxisTicks::Steps;
  EXPECT_EQ(labels(nice_ticks(0.27, 0.32, S::Nice)),
            (Strings{"0.27", "0.28", "0.29", "0.30", "0.31", "0.32"}));
  EXPECT_EQ(labels(nice_ticks(0.26, 0.32, S::Nice)), (Strings{"0.26", "0.28", "0.30", "0.32"}));
  const AxisTicks loss = nice_ticks(0.40, 0.60, S::Nice);
  EXPECT_EQ(labels(loss), (Strings{"0.40", "0.45", "0.50", "0.55", "0.60"}));
  EXPECT_DOUBLE_EQ(loss.step, 0.05);
  // Data inside the ticks: the axis runs from the first tick to the last.
  const AxisTicks auc = nice_ticks(0.801, 0.873, S::Nice);
  EXPECT_EQ(labels(auc), (Strings{"0.80", "0.82", "0.84", "0.86", "0.88"}));
  EXPECT_DOUBLE_EQ(auc.lo, 0.80);
  EXPECT_DOUBLE_EQ(auc.hi, 0.88);
  // 2.5 keeps 5..15 at five ticks where 2 would give seven and 5 three.
  EXPECT_EQ(labels(nice_ticks(5, 15, S::Nice)), (Strings{"5.0", "7.5", "10.0", "12.5", "15.0"}));
  EXPECT_EQ(labels(nice_ticks(-3, 1200, S::Nice)), (Strings{"-500", "0", "500", "1000", "1500"}));
  EXPECT_EQ(labels(nice_ticks(0.32, 0.27, S::Nice)), labels(nice_ticks(0.27, 0.32, S::Nice)));
}

TEST(NiceTicks, FlatRangesWidenAndNonFiniteRangesHaveNoTicks) {
  using S = AxisTicks::Steps;
  // A constant 0.85 (or one point): +-10% -> 0.765..0.935, ticked every 0.05.
  EXPECT_EQ(labels(nice_ticks(0.85, 0.85, S::Nice)),
            (Strings{"0.75", "0.80", "0.85", "0.90", "0.95"}));
  EXPECT_EQ(labels(nice_ticks(0, 0, S::Nice)), (Strings{"-0.50", "-0.25", "0.00", "0.25", "0.50"}));
  EXPECT_EQ(labels(nice_ticks(-2, -2, S::Nice)), (Strings{"-2.2", "-2.1", "-2.0", "-1.9", "-1.8"}));
  EXPECT_TRUE(nice_ticks(NAN, 1, S::Nice).values.empty());
  EXPECT_TRUE(nice_ticks(0, INFINITY, S::Nice).values.empty());
  EXPECT_TRUE(nice_ticks(NAN, NAN, S::Integer).values.empty());
  // Ranges no decimal step fits still get their two ends, never a hang.
  const AxisTicks huge = nice_ticks(-1.5e308, 1.5e308, S::Nice);
  EXPECT_EQ(huge.values.size(), 2u);
  EXPECT_EQ(labels(huge), (Strings{"-1.5e+308", "1.5e+308"}));
  // Offsets past 2^53, where adding 1 to a double changes nothing: bounded, never a hang.
  EXPECT_LE(nice_ticks(1e17, 1e17 + 64, S::Integer).values.size(), 7u);
  EXPECT_LE(nice_ticks(1e300, 1e300 * (1 + 1e-15), S::Nice).values.size(), 7u);
  // Too long as fixed decimals (0.000010001): exponent form, digits down to the step (1e-9).
  EXPECT_EQ(labels(nice_ticks(1.0001e-5, 1.0004e-5, S::Nice)),
            (Strings{"1.0001e-05", "1.0002e-05", "1.0003e-05", "1.0004e-05"}));
}

TEST(NiceTicks, EpochAxesTickWholeNumbersInsideTheData) {
  using S = AxisTicks::Steps;
  EXPECT_EQ(labels(nice_ticks(1, 3, S::Integer)), (Strings{"1", "2", "3"}));
  EXPECT_EQ(labels(nice_ticks(1, 20, S::Integer)), (Strings{"5", "10", "15", "20"}));
  EXPECT_EQ(labels(nice_ticks(1, 1, S::Integer)), (Strings{"0", "1", "2"}));
  const AxisTicks t = nice_ticks(1, 20, S::Integer);
  EXPECT_EQ(t.lo, 1);
  EXPECT_EQ(t.hi, 20);
}

// The rule on many ranges: 4 to 6 equally spaced ticks of a nice step covering the data.
TEST(NiceTicks, AnyRangeGetsFourToSixEvenlySpacedNiceTicksCoveringIt) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> exponent(-6, 6), unit(-1, 1);
  for (int trial = 0; trial < 2000; ++trial) {
    const double scale = std::pow(10.0, exponent(rng));
    const double a = unit(rng) * scale, b = a + std::abs(unit(rng)) * scale;
    if (!(b > a)) continue;
    const AxisTicks t = nice_ticks(a, b, AxisTicks::Steps::Nice);
    ASSERT_GE(t.values.size(), 4u) << a << ".." << b;
    ASSERT_LE(t.values.size(), 6u) << a << ".." << b;
    EXPECT_LE(t.lo, a + 1e-12 * scale);
    EXPECT_GE(t.hi, b - 1e-12 * scale);
    const double mantissa = t.step / std::pow(10.0, std::floor(std::log10(t.step) + 1e-9));
    EXPECT_TRUE(std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 ||
                std::abs(mantissa - 2.5) < 1e-9 || std::abs(mantissa - 5) < 1e-9)
        << t.step;
    for (size_t i = 1; i < t.values.size(); ++i)
      EXPECT_NEAR(t.values[i] - t.values[i - 1], t.step, 1e-9 * t.step);
    const Strings all = labels(t);
    const std::set<std::string> distinct(all.begin(), all.end());
    EXPECT_EQ(distinct.size(), t.values.size()) << "two ticks share a label";
  }
}

TEST(NiceTicks, PanelsSkipNonFinitePointsAndHandleOnePoint) {
  CurvePanel p{"t",
               "y",
               {{"a", 0x1f77b4, {{1, NAN}, {2, 0.30}, {3, 0.27}}},
                {"b", 0xd62728, {{1, NAN}, {2, INFINITY}}}}};
  EXPECT_EQ(labels(panel_y_ticks(p)), (Strings{"0.27", "0.28", "0.29", "0.30"}));
  EXPECT_EQ(labels(panel_x_ticks(p)), (Strings{"2", "3"}));
  CurvePanel nothing{"t", "y", {{"a", 0x1f77b4, {{1, NAN}, {2, NAN}}}, {"b", 0xd62728, {}}}};
  EXPECT_TRUE(panel_y_ticks(nothing).values.empty());
  CurvePanel one{"t", "y", {{"a", 0x1f77b4, {{4, 0.5}}}}};
  // 0.5 +- 0.05: 0.02 would need 7 ticks (0.44..0.56), 0.025 needs 5.
  EXPECT_EQ(labels(panel_y_ticks(one)), (Strings{"0.450", "0.475", "0.500", "0.525", "0.550"}));
  EXPECT_EQ(labels(panel_x_ticks(one)), (Strings{"3", "4", "5"}));
}

// --- the PNG --------------------------------------------------------------------------------

struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
  uint32_t at(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * w + x) * 3;
    return static_cast<uint32_t>(rgb[i]) << 16 | rgb[i + 1] << 8 | rgb[i + 2];
  }
  bool dark(int x, int y) const {  // text and axes; no series colour or grid is this dark
    const uint32_t c = at(x, y);
    return (c >> 16) < 0x60 && (c >> 8 & 0xff) < 0x60 && (c & 0xff) < 0x60;
  }
};

Image read_png(const std::string& path) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  EXPECT_TRUE(png_image_begin_read_from_file(&img, path.c_str())) << path << ": " << img.message;
  img.format = PNG_FORMAT_RGB;
  Image out;
  out.w = static_cast<int>(img.width);
  out.h = static_cast<int>(img.height);
  out.rgb.resize(PNG_IMAGE_SIZE(img));
  EXPECT_TRUE(png_image_finish_read(&img, nullptr, out.rgb.data(), 0, nullptr)) << img.message;
  return out;
}

// The dark pixels inside [x0, x1) x [y0, y1).
Pixels dark_in(const Image& im, int x0, int y0, int x1, int y1) {
  Pixels p;
  for (int y = std::max(0, y0); y < std::min(im.h, y1); ++y)
    for (int x = std::max(0, x0); x < std::min(im.w, x1); ++x)
      if (im.dark(x, y)) p.insert({x, y});
  return p;
}

// The word on rows [y0, y1) met first when scanning columns from `x` in direction `dx`: dark
// columns until 5 blank ones follow ink (glyphs of one word are at most 4 blank columns apart).
Pixels word_from(const Image& im, int x, int dx, int y0, int y1) {
  Pixels p;
  int blank = 0;
  for (; x >= 0 && x < im.w && !(blank >= 5 && !p.empty()); x += dx) {
    const Pixels col = dark_in(im, x, y0, x + 1, y1);
    blank = col.empty() ? blank + 1 : 0;
    p.insert(col.begin(), col.end());
  }
  return p;
}

// Text turned a quarter left, as the y title is drawn.
Pixels turned_left(const Pixels& p) {
  Pixels out;
  for (auto [x, y] : p) out.insert({y, -x});
  return out;
}

std::vector<CurvePanel> report_like_panels() {
  CurveSeries train{"train loss", 0x1f77b4, {{1, 0.60}, {2, 0.45}, {3, 0.40}}};
  CurveSeries val{"validation logloss", 0xd62728, {{1, 0.50}, {2, 0.42}, {3, NAN}}};
  CurveSeries auc{"validation AUC", 0x2ca02c, {{1, 0.80}, {2, 0.85}, {3, 0.87}}};
  CurveSeries acc{"validation accuracy", 0x9467bd, {{1, 0.75}, {2, 0.80}, {3, 0.82}}};
  return {{"loss per epoch", "loss", {train, val}},
          {"validation AUC and accuracy per epoch", "AUC / accuracy", {auc, acc}}};
}

std::string temp_png(const std::string& name) {
  return ::testing::TempDir() + "/curve_png_" + name + "." + std::to_string(::getpid()) + ".png";
}

Image write_and_read(const std::vector<CurvePanel>& panels, const CurvePngOptions& o,
                     const std::string& name) {
  const std::string path = temp_png(name);
  write_curves_png(path, panels, o);
  return read_png(path);
}

TEST(CurvesPng, SizeIsPanelWidthByPanelsTimesHeightAndTheBytesAreDeterministic) {
  const std::vector<CurvePanel> panels = report_like_panels();
  const Image im = write_and_read(panels, {}, "size");
  EXPECT_EQ(im.w, 720);
  EXPECT_EQ(im.h, 2 * 280);
  CurvePngOptions small;
  small.panel_width = 400;
  small.panel_height = 200;
  const Image im3 = write_and_read({panels[0], panels[1], panels[0]}, small, "small");
  EXPECT_EQ(im3.w, 400);
  EXPECT_EQ(im3.h, 600);
  write_curves_png(temp_png("again"), panels);
  EXPECT_EQ(read_file(temp_png("size")), read_file(temp_png("again")));
  try {
    write_curves_png(temp_png("none"), {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("curve_png_none"), std::string::npos) << e.what();
  }
  small.panel_width = 100000;
  EXPECT_THROW(write_curves_png(temp_png("wide"), panels, small), Error);
}

// Each series' swatch: a solid kSwatch block of its colour right of the plot, in series order,
// and its name drawn in the font to the right of it (only while text is on).
void expect_legend(const Image& im, const CurvePanel& panel, int top, bool text) {
  const PlotArea a = curve_plot_area({});
  int previous_y = -1;
  for (const CurveSeries& s : panel.series) {
    int x0 = im.w, y0 = im.h, x1 = -1, y1 = -1, n = 0;
    for (int y = top; y < top + 280; ++y)
      for (int x = a.right + 3; x < im.w; ++x)
        if (im.at(x, y) == s.rgb) {
          x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
          ++n;
        }
    ASSERT_GT(n, 0) << "no swatch of " << s.name;
    EXPECT_GE(x1 - x0 + 1, 12) << s.name;
    EXPECT_GE(y1 - y0 + 1, 6) << s.name;
    EXPECT_EQ(n, (x1 - x0 + 1) * (y1 - y0 + 1)) << s.name << "'s swatch is not solid";
    EXPECT_GT(y0, previous_y) << "legend out of series order";
    previous_y = y1;
    const Pixels name = dark_in(im, x1 + 1, y0, im.w, y0 + kGlyphHeight);
    if (text)
      EXPECT_EQ(at_origin(name), at_origin(text_pixels(s.name, 1))) << s.name;
    else
      EXPECT_TRUE(name.empty()) << s.name;
  }
}

// Tick marks (axis-coloured stubs left of the y axis) at each tick of panel_y_ticks, top to
// bottom from the largest value, each with its label in the font just left of it.
void expect_y_ticks(const Image& im, const CurvePanel& panel, int top, bool text) {
  const PlotArea a = curve_plot_area({});
  const AxisTicks t = panel_y_ticks(panel);
  std::vector<int> rows;
  for (int y = top + a.top; y <= top + a.bottom; ++y)
    if (im.at(a.left - 3, y) == 0x444444) rows.push_back(y);
  ASSERT_EQ(rows.size(), t.values.size()) << panel.title;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string label = tick_label(t.values[t.values.size() - 1 - i], t);
    const Pixels ink = word_from(im, a.left - 5, -1, rows[i] - 3, rows[i] - 3 + kGlyphHeight);
    if (text) {
      EXPECT_EQ(at_origin(ink), at_origin(text_pixels(label, 1))) << label;
      EXPECT_GE(ink.begin()->first, a.left - 4 - 3 - text_width(label, 1)) << label;
    } else {
      EXPECT_TRUE(ink.empty()) << label;
    }
  }
}

// Title above the plot (2x), and the y title, x labels and "epoch" around it: ink only with text.
void expect_titles(const Image& im, const CurvePanel& panel, int top, bool text) {
  const PlotArea a = curve_plot_area({});
  // Above the top tick label (which reaches 3 rows above the plot).
  const Pixels title = dark_in(im, 0, top, im.w, top + a.top - 4);
  // Left of everything else, over the plot's rows: the y title.
  const Pixels y_title = word_from(im, 0, 1, top + a.top, top + a.bottom);
  const Pixels below = dark_in(im, a.left + 2, top + a.bottom + 5, a.right, top + 280);
  if (text) {
    EXPECT_EQ(at_origin(title), at_origin(text_pixels(panel.title, 2)));
    EXPECT_EQ(at_origin(y_title), at_origin(turned_left(text_pixels(panel.y_title, 1))));
    ASSERT_FALSE(y_title.empty());
    EXPECT_LT(y_title.rbegin()->first, a.left - 4 - 3 * kGlyphAdvance) << "not left of the labels";
    EXPECT_FALSE(below.empty());  // epoch labels and the x title
  } else {
    EXPECT_TRUE(title.empty());
    EXPECT_TRUE(below.empty());
    EXPECT_TRUE(dark_in(im, 0, top + a.top, a.left - 5, top + a.bottom).empty());
  }
}

TEST(CurvesPng, LegendTicksAndTitlesAreDrawnWithTheFont) {
  const std::vector<CurvePanel> panels = report_like_panels();
  for (bool text : {true, false}) {
    SCOPED_TRACE(text ? "text on" : "text off");
    CurvePngOptions o;
    o.text = text;
    const Image im = write_and_read(panels, o, text ? "text" : "notext");
    for (size_t i = 0; i < panels.size(); ++i) {
      SCOPED_TRACE(panels[i].title);
      const int top = static_cast<int>(i) * 280;
      expect_legend(im, panels[i], top, text);
      expect_y_ticks(im, panels[i], top, text);
      expect_titles(im, panels[i], top, text);
    }
  }
}

TEST(CurvesPng, EpochTicksSitUnderTheAxisAndCurvesAreInTheirColours) {
  const std::vector<CurvePanel> panels = report_like_panels();
  const Image im = write_and_read(panels, {}, "epochs");
  const PlotArea a = curve_plot_area({});
  std::vector<int> cols;
  for (int x = a.left; x <= a.right; ++x)
    if (im.at(x, a.bottom + 2) == 0x444444) cols.push_back(x);
  EXPECT_EQ(cols.size(), panel_x_ticks(panels[0]).values.size());  // epochs 1, 2, 3
  ASSERT_EQ(cols.size(), 3u);
  EXPECT_EQ(cols.front(), a.left);
  EXPECT_EQ(cols.back(), a.right);
  for (const CurveSeries& s : panels[0].series) {  // inside the plot, not only in the legend
    size_t n = 0;
    for (int y = a.top; y <= a.bottom; ++y)
      for (int x = a.left; x <= a.right; ++x) n += im.at(x, y) == s.rgb;
    EXPECT_GT(n, 100u) << s.name;
  }
}

TEST(CurvesPng, APanelWithoutFinitePointsSaysNoData) {
  CurvePanel empty{"nothing yet", "loss", {{"train loss", 0x1f77b4, {{1, NAN}}}}};
  const Image im = write_and_read({empty}, {}, "empty");
  const PlotArea a = curve_plot_area({});
  const Pixels inside = dark_in(im, a.left + 1, a.top + 1, a.right, a.bottom);
  EXPECT_EQ(at_origin(inside), at_origin(text_pixels("no data", 1)));
}

}  // namespace
}  // namespace tessera::scheduler
