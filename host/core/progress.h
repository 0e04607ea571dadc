#pragma once
// Progress for long loops: on a terminal, a bar with throughput and ETA redrawn in place; off a
// terminal (logs, CI), a plain line every `interval_s` seconds. Always on stderr, so stdout stays
// clean for --json.
#include <chrono>
#include <cstdint>
#include <string>

namespace tessera {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit, bool quiet = false);
  void update(int64_t done, const std::string& extra = "");
  void finish(const std::string& extra = "");

 private:
  std::string label_, unit_;
  int64_t total_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_, last_;
  double interval_s_;
  void draw(int64_t done, const std::string& extra, bool final);
};

}  // namespace tessera
