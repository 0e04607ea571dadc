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

// The LSTM tasks' step lines on stderr: every `every` batches, the mean loss of the examples
// since the last line, with the gradient norm and learning rate of the batch that prints it.
//   epoch 3 step 200/1200 loss 0.4123 grad-norm 1.25 lr 1.00e-03
class StepLossLog {
 public:
  StepLossLog(int64_t every, bool quiet) : every_(every), quiet_(quiet) {}
  void start_epoch() { sum_ = 0, count_ = 0; }
  void add(double loss_sum, int64_t examples) { sum_ += loss_sum, count_ += examples; }
  // After batch `batch` (0-based) of `batches`: prints and restarts the window when it is due.
  void after_batch(int64_t epoch, int64_t batch, int64_t batches, double grad_norm, double lr);

 private:
  int64_t every_;
  bool quiet_;
  double sum_ = 0;
  int64_t count_ = 0;
};

}  // namespace tessera
