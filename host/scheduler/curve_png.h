#pragma once
// The report's curves as a PNG (no fonts: panels of coloured polylines on a light grid, in the
// same colours as the HTML legend), for places that show images but not HTML.
#include <string>
#include <utility>
#include <vector>

namespace tessera::scheduler {

struct CurveSeries {
  uint32_t rgb = 0;                           // 0xRRGGBB
  std::vector<std::pair<double, double>> xy;  // NaN y values are skipped
};

// One panel per entry of `panels`, stacked vertically, each panel_width x panel_height pixels.
// Written atomically; Io error naming the path on failure.
void write_curves_png(const std::string& path, const std::vector<std::vector<CurveSeries>>& panels,
                      int panel_width = 640, int panel_height = 240);

}  // namespace tessera::scheduler
