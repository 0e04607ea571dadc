#include "host/scheduler/curve_png.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "host/core/atomic_file.h"
#include "host/core/error.h"

namespace tessera::scheduler {

namespace {

struct Canvas {
  int w, h;
  std::vector<uint8_t> rgb;  // (h, w, 3)
  Canvas(int w_, int h_) : w(w_), h(h_), rgb(static_cast<size_t>(w_) * h_ * 3, 255) {}
  void dot(int x, int y, uint32_t c) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    uint8_t* p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
    p[0] = (c >> 16) & 0xff;
    p[1] = (c >> 8) & 0xff;
    p[2] = c & 0xff;
  }
  // Bresenham, `thick` pixels wide.
  void line(int x0, int y0, int x1, int y1, uint32_t c, int thick) {
    const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    while (true) {
      for (int a = 0; a < thick; ++a)
        for (int b = 0; b < thick; ++b) dot(x0 + a - thick / 2, y0 + b - thick / 2, c);
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
};

void draw_panel(Canvas& cv, int top, int pw, int ph, const std::vector<CurveSeries>& series) {
  const int L = 40, R = 20, T = 15, B = 25;
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const CurveSeries& s : series)
    for (auto [x, y] : s.xy)
      if (!std::isnan(y)) {
        xmin = std::min(xmin, x);
        xmax = std::max(xmax, x);
        ymin = std::min(ymin, y);
        ymax = std::max(ymax, y);
      }
  for (int i = 0; i <= 4; ++i) {  // grid
    const int y = top + T + (ph - T - B) * i / 4;
    cv.line(L, y, pw - R, y, 0xdddddd, 1);
  }
  cv.line(L, top + T, L, top + ph - B, 0x444444, 1);
  cv.line(L, top + ph - B, pw - R, top + ph - B, 0x444444, 1);
  if (!std::isfinite(xmin)) return;
  if (xmax == xmin) xmax = xmin + 1;
  if (ymax == ymin) {
    ymax += 0.5;
    ymin -= 0.5;
  }
  auto X = [&](double x) {
    return static_cast<int>(std::lround(L + (x - xmin) / (xmax - xmin) * (pw - L - R)));
  };
  auto Y = [&](double y) {
    return static_cast<int>(std::lround(top + ph - B - (y - ymin) / (ymax - ymin) * (ph - T - B)));
  };
  for (const CurveSeries& s : series) {
    bool have = false;
    int px = 0, py = 0;
    for (auto [x, y] : s.xy) {
      if (std::isnan(y)) continue;
      const int qx = X(x), qy = Y(y);
      if (have)
        cv.line(px, py, qx, qy, s.rgb, 2);
      else
        cv.line(qx, qy, qx, qy, s.rgb, 4);
      px = qx;
      py = qy;
      have = true;
    }
  }
}

}  // namespace

void write_curves_png(const std::string& path, const std::vector<std::vector<CurveSeries>>& panels,
                      int pw, int ph) {
  TESSERA_CHECK(!panels.empty() && pw > 80 && ph > 60, "write_curves_png: no panels or too small");
  Canvas cv(pw, ph * static_cast<int>(panels.size()));
  for (size_t i = 0; i < panels.size(); ++i)
    draw_panel(cv, static_cast<int>(i) * ph, pw, ph, panels[i]);
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
