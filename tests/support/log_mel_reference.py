#!/usr/bin/env python3
"""Independent log-mel reference for tests/audio_features_test.cpp, written with numpy only.

usage: log_mel_reference.py IN OUT SR N_FFT WIN HOP N_MELS FMIN FMAX FLOOR
IN: float32 little-endian samples; OUT: float32 [n_mels, frames] log(mel power + floor).
Conventions (the documented ones of host/data/log_mel.h, as librosa/torchaudio define them):
centred frames with n_fft//2 zeros each side, periodic Hann window of WIN centred in N_FFT,
numpy's rfft power, HTK-mel triangles (peak 1) over FMIN..FMAX.
"""
import sys

import numpy as np


def main():
    inp, out = sys.argv[1], sys.argv[2]
    sr, n_fft, win, hop, n_mels = (int(v) for v in sys.argv[3:8])
    fmin, fmax, floor = (float(v) for v in sys.argv[8:11])
    x = np.fromfile(inp, dtype="<f4").astype(np.float64)
    pad = n_fft // 2
    xp = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    frames = 1 + len(x) // hop
    w = np.zeros(n_fft)
    off = (n_fft - win) // 2
    w[off:off + win] = np.hanning(win + 1)[:-1]  # periodic Hann
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(xp[idx] * w, axis=1)) ** 2  # [frames, bins]
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    pts = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    up = (freqs[None, :] - pts[:-2, None]) / (pts[1:-1] - pts[:-2])[:, None]
    down = (pts[2:, None] - freqs[None, :]) / (pts[2:] - pts[1:-1])[:, None]
    fb = np.maximum(0.0, np.minimum(up, down))  # [n_mels, bins]
    np.log(fb @ power.T + floor).astype("<f4").tofile(out)


if __name__ == "__main__":
    main()
