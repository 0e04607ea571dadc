// The batched, backend log-mel front end (host/data/log_mel_batch.h).
#include "host/data/log_mel_batch.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "host/core/error.h"
#include "host/core/log_mel_math.h"

namespace tessera {

std::vector<float> dft_basis(int n_fft) {
  TESSERA_CHECK(n_fft >= 2, "dft_basis: n_fft " << n_fft << " must be >= 2");
  const int bins = n_fft / 2 + 1;
  std::vector<float> b(static_cast<size_t>(n_fft) * 2 * bins);
  for (int i = 0; i < n_fft; ++i)
    for (int k = 0; k < bins; ++k) {
      const int64_t phase = (static_cast<int64_t>(k) * i) % n_fft;  // exact: no large angles
      const double ang = 2 * M_PI * static_cast<double>(phase) / n_fft;
      b[static_cast<size_t>(i) * 2 * bins + k] = static_cast<float>(std::cos(ang));
      b[static_cast<size_t>(i) * 2 * bins + bins + k] = static_cast<float>(-std::sin(ang));
    }
  return b;
}

LogMelBatch::LogMelBatch(Backend& be, const MelConfig& c) : be_(be), c_(c) {
  const std::vector<float> fb = mel_filterbank(c);  // validates c
  const int bins = c.bins();
  window_ = be.to_device(Tensor::host_from<float>({c.n_fft}, stft_window(c)));
  basis_ = be.to_device(Tensor::host_from<float>({c.n_fft, 2 * bins}, dft_basis(c.n_fft)));
  filterbank_ = be.to_device(Tensor::host_from<float>({c.n_mels, bins}, fb));
}

Tensor LogMelBatch::compute(const Tensor& waves) {
  TESSERA_CHECK(waves.defined() && waves.dtype() == DType::F32 && waves.rank() == 2,
                "log-mel front end: waves must be f32 [B, n], got "
                    << (waves.defined() ? waves.describe() : std::string("undefined")));
  const int64_t b = waves.dim(0), n = waves.dim(1);
  const int64_t f = math::stft_frame_count(n, c_.hop_length), rows = b * f;
  const int64_t bins = c_.bins();
  Tensor frames = be_.empty({rows, c_.n_fft});
  be_.stft_frames(waves, window_, c_.hop_length, frames);
  Tensor spectrum = be_.empty({rows, 2 * bins});
  be_.gemm(Transpose::No, Transpose::No, 1.f, frames, basis_, 0.f, spectrum);
  frames = Tensor();  // the largest temporary: free it before the next two
  Tensor power = be_.empty({rows, bins});
  be_.power_spectrum(spectrum, power);
  spectrum = Tensor();
  Tensor mel = be_.empty({rows, c_.n_mels});
  be_.gemm(Transpose::No, Transpose::Yes, 1.f, power, filterbank_, 0.f, mel);
  Tensor out = be_.empty({b, c_.n_mels, f});
  be_.log_mel_transpose(mel, static_cast<float>(c_.log_floor), out);
  return out;
}

std::vector<std::vector<float>> LogMelBatch::compute(const std::vector<std::vector<float>>& waves) {
  std::vector<std::vector<float>> out(waves.size());
  if (waves.empty()) return out;
  size_t n = 0;
  for (const auto& w : waves) n = std::max(n, w.size());
  const int64_t b = static_cast<int64_t>(waves.size());
  Tensor host = Tensor::host({b, static_cast<int64_t>(n)}, DType::F32);
  float* p = host.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    const std::vector<float>& w = waves[static_cast<size_t>(i)];
    std::copy(w.begin(), w.end(), p + i * static_cast<int64_t>(n));
    std::fill(p + i * static_cast<int64_t>(n) + static_cast<int64_t>(w.size()),
              p + (i + 1) * static_cast<int64_t>(n), 0.f);
  }
  const Tensor img = be_.to_host(compute(be_.to_device(host)));
  const int64_t f = img.dim(2), mels = c_.n_mels;
  const float* q = img.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t keep = math::stft_frame_count(
        static_cast<int64_t>(waves[static_cast<size_t>(i)].size()), c_.hop_length);
    std::vector<float>& o = out[static_cast<size_t>(i)];
    o.resize(static_cast<size_t>(mels * keep));
    for (int64_t m = 0; m < mels; ++m)
      std::copy_n(q + (i * mels + m) * f, keep, o.begin() + m * keep);
  }
  return out;
}

std::vector<std::vector<float>> LogMelBatch::compute_all(
    const std::vector<std::vector<float>>& waves, int64_t max_frame_floats) {
  std::vector<size_t> order(waves.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return waves[a].size() < waves[b].size(); });
  std::vector<std::vector<float>> out(waves.size());
  std::vector<std::vector<float>> batch;
  std::vector<size_t> ids;
  auto flush = [&] {
    std::vector<std::vector<float>> imgs = compute(batch);
    for (size_t j = 0; j < ids.size(); ++j) out[ids[j]] = std::move(imgs[j]);
    batch.clear();
    ids.clear();
  };
  for (size_t i : order) {
    // Sorted ascending: this waveform sets the batch's padded length.
    const int64_t rows_each =
        math::stft_frame_count(static_cast<int64_t>(waves[i].size()), c_.hop_length);
    const int64_t floats = (static_cast<int64_t>(batch.size()) + 1) * rows_each * c_.n_fft;
    if (!batch.empty() && floats > max_frame_floats) flush();
    batch.push_back(waves[i]);
    ids.push_back(i);
  }
  if (!batch.empty()) flush();
  return out;
}

}  // namespace tessera
