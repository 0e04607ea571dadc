#pragma once
// Splitting a text file (CSV/TSV, Criteo, libSVM) into byte ranges for N processes that each
// read one part (distributed scoring, docs/distributed-scoring.md), so that every data record
// is read by exactly one part:
//   - the data begin at D: past `skip_lines` physical lines and, with a header, the first
//     non-blank line after them (a UTF-8 byte-order mark is part of the first line);
//   - part r of N covers [b_r, b_{r+1}): b_0 = 0 (part 0 reads the skipped lines and the header
//     as the one-process reader does), b_N = the file's size S, and for 0 < r < N b_r is the
//     first line start at or after D + r (S - D) / N (a line start: D itself, or the byte after
//     a '\n'); a part whose range is empty reads nothing;
//   - a part's first physical line number is 1 + the '\n' bytes before b_r, which the parts
//     learn by exchanging their own counts (count_newlines).
// A record that spans lines (a quoted field with a newline in it) may be cut at a part's start:
// such files are read in one part (SplitMode::Whole), as gzip-compressed files are, whose byte
// offsets are not those of the text.
#include <cstdint>
#include <string>

#include "host/data/buffered_file.h"

namespace tessera {

// Whether the file starts with the gzip magic bytes (1f 8b).
bool is_gzip_file(const std::string& path);

// D above: the byte offset of the file's first data line.
int64_t data_start(const std::string& path, int skip_lines, bool header);

// Part `rank` of `world` (first_line left at 1: see count_newlines). An Io error when the file
// cannot be read.
ByteRange text_part(const std::string& path, int skip_lines, bool header, int rank, int world);

// '\n' bytes in [begin, end) of the file (end < 0: to its end).
int64_t count_newlines(const std::string& path, int64_t begin, int64_t end);

}  // namespace tessera
