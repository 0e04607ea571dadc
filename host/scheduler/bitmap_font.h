#pragma once
// A built-in 5x7 bitmap font, drawn by us, so that charts written as PNG (curve_png.h) carry
// their numbers and names without a font library: digits, A-Z, a-z, space and the punctuation
// reports use (. , - + ( ) / @ : % _ ? = ' !). A glyph is 5 columns by 7 rows above the baseline
// with 2 rows below it for the tails of g j p q y; glyphs scale by whole pixels (1x, 2x, ...).
#include <array>
#include <cstdint>
#include <functional>
#include <string>

namespace tessera::scheduler {

constexpr int kGlyphWidth = 5;    // inked columns per glyph at scale 1
constexpr int kGlyphAscent = 7;   // rows above the baseline: capitals, digits, ascenders
constexpr int kGlyphHeight = 9;   // rows per glyph, the 2 below the baseline included
constexpr int kGlyphAdvance = 6;  // the glyph and one blank column

// A glyph's rows, top first; bit (kGlyphWidth - 1 - col) set means column col is inked.
using GlyphRows = std::array<uint8_t, kGlyphHeight>;

bool has_glyph(char c);
// The glyph of `c`; a character without one is drawn as '?'.
GlyphRows glyph_rows(char c);

// Pixel width of `text` at `scale`: text.size() * kGlyphAdvance * scale (the last glyph keeps
// its blank column, so widths add up when texts are placed side by side).
int text_width(const std::string& text, int scale);

// Calls ink(dx, dy) once for every inked pixel of `text` drawn at `scale` (>= 1), (0, 0) being
// the top-left corner; rows 0 .. kGlyphHeight * scale - 1.
void for_each_text_pixel(const std::string& text, int scale,
                         const std::function<void(int dx, int dy)>& ink);

}  // namespace tessera::scheduler
