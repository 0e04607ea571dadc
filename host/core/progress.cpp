#include "host/core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace tessera {

Progress::Progress(std::string label, int64_t total, std::string unit, bool quiet)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      quiet_(quiet),
      tty_(::isatty(2) == 1),
      start_(std::chrono::steady_clock::now()),
      last_(start_),
      interval_s_(tty_ ? 0.2 : 10.0) {}

void Progress::update(int64_t done, const std::string& extra) {
  if (quiet_) return;
  auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_).count() < interval_s_) return;
  last_ = now;
  draw(done, extra, false);
}

void Progress::finish(const std::string& extra) {
  if (quiet_) return;
  draw(total_, extra, true);
}

void Progress::draw(int64_t done, const std::string& extra, bool final) {
  const double el =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = el > 0 ? done / el : 0.0;
  const double eta = rate > 0 && total_ > done ? (total_ - done) / rate : 0.0;
  const double frac = total_ > 0 ? static_cast<double>(done) / total_ : 1.0;
  if (tty_) {
    const int width = 30;
    int filled = static_cast<int>(frac * width + 0.5);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r%s [%s] %3.0f%% %.0f %s/s ETA %.0fs %s\033[K", label_.c_str(),
                 bar.c_str(), frac * 100.0, rate, unit_.c_str(), eta, extra.c_str());
    if (final) std::fprintf(stderr, "\n");
  } else {
    std::fprintf(stderr, "%s: %lld/%lld %s (%.0f%%), %.0f %s/s, ETA %.0fs %s\n", label_.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_), unit_.c_str(),
                 frac * 100.0, rate, unit_.c_str(), eta, extra.c_str());
  }
  std::fflush(stderr);
}

void StepLossLog::after_batch(int64_t epoch, int64_t batch, int64_t batches, double grad_norm,
                              double lr) {
  if (quiet_ || count_ <= 0 || (batch + 1) % every_ != 0) return;
  std::fprintf(stderr, "  epoch %lld step %lld/%lld loss %.4f grad-norm %.2f lr %.2e\n",
               static_cast<long long>(epoch), static_cast<long long>(batch + 1),
               static_cast<long long>(batches), sum_ / static_cast<double>(count_), grad_norm, lr);
  start_epoch();
}

}  // namespace tessera
