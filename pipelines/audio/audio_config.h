#pragma once
// The audio-classification task's config ("task": "audio"): data (a folder of
// {label}_{speaker}_{index}.wav files, the Free Spoken Digit Dataset's layout and split), the
// log-mel front end, SpecAugment masking, the CNN's layer list and training (the image task's
// sections, pipelines/image/image_config.h). Each section is declared once (host/config/declare.h):
// validated completely before anything is allocated, errors naming file, line:column and JSON
// path. Defaults: pipelines/audio/fsdd.json.
#include <cstdint>
#include <string>
#include <vector>

#include "host/config/entry_points.h"
#include "host/data/log_mel.h"
#include "pipelines/image/image_config.h"

namespace tessera {

// The data is a folder, not named files: the split comes from the file names (index <=
// test_max_index: test), so the DataFiles keys (train/validation/test files) do not apply.
struct AudioDataConfig {
  // The folder of WAV files: `dir` when set, else the registered dataset `dataset`'s files.
  std::string dataset;
  std::string dir;
  int test_max_index = 4;  // {label}_{speaker}_{index}.wav with index <= this: test split
  int max_index = -1;      // >= 0: only files with index <= this (smoke runs, tests)
  std::vector<std::string> speakers;  // non-empty: only these speakers
  double validation_fraction = 0.1;   // of the training files, held out per epoch
  int64_t classes = 10;
  std::vector<std::string> class_names;  // file-name labels; default "0".."C-1"
};

struct AudioFeatureConfig {
  MelConfig mel;
  int64_t frames = 96;  // fixed width of the log-mel image
  FitMode fit = FitMode::Center;
  bool normalize = true;  // per-utterance zero mean, unit variance
};

// RunSettings: name (default "audio"), seed (default 42), device.
struct AudioConfig : RunSettings {
  AudioConfig() : RunSettings("audio", 42) {}
  AudioDataConfig data;
  AudioFeatureConfig features;
  SpecAugmentConfig augment;
  std::vector<CnnLayerSpec> layers;
  ImageTrainConfig train;
};

const json::Choices<FitMode>& fit_choices();     // "center", "start"
const json::Choices<bool>& normalize_choices();  // "utterance", "none"

// parse_audio_config (every error at once, with file:line:col and JSON path), load_audio_config,
// to_json (the resolved config) and equality of resolved configs.
TESSERA_DECLARE_CONFIG_IO(AudioConfig, parse_audio_config, load_audio_config);
// The "features" object alone (stored in model artefacts) and its reader.
void write_audio_features(json::JsonWriter& w, const AudioFeatureConfig& f);
AudioFeatureConfig parse_audio_features(const std::string& json_object_text);

// `tessera config audio --example` and --schema; the example shows example_audio_config() (the
// defaults with the registered fsdd dataset and a small layer list).
std::string audio_config_example();
std::string audio_config_schema();
AudioConfig example_audio_config();

// ---- declarations (host/config/declare.h) ---------------------------------------------------

template <typename V>
void fields(V& v, AudioDataConfig& c) {
  using config::F;
  using json::IntBounds;
  v.string(F("dataset", "a registered dataset of WAV files (e.g. \"fsdd\")")
               .written_if(!c.dataset.empty()),
           c.dataset);
  v.string(F("dir", "a folder of {label}_{speaker}_{index}.wav files").written_if(!c.dir.empty()),
           c.dir);
  v.check(!c.dataset.empty() || !c.dir.empty(), "dir", "give \"dir\" or \"dataset\"");
  v.integer(F("test_max_index", "files with index <= this are the test split (-1: none)"),
            c.test_max_index, IntBounds::closed(-1, 1 << 20));
  v.integer(F("max_index", ">= 0: only files with index <= this").written_if(c.max_index >= 0),
            c.max_index, IntBounds::closed(-1, 1 << 20));
  v.string_list(F("speakers", "only these speakers (default: all)").written_if(!c.speakers.empty()),
                c.speakers);
  v.number(F("validation_fraction", "the share of the training files held out per epoch"),
           c.validation_fraction, json::Bounds::closed(0, 0.9));
  classes_field(v, c.classes, 0);
  class_names_field(v, c.class_names, c.classes, 0);
}

template <typename V>
void fields(V& v, AudioFeatureConfig& c) {
  using config::F;
  using json::Bounds;
  using json::IntBounds;
  MelConfig& m = c.mel;
  v.integer(F("sample_rate", "Hz; other rates are resampled"), m.sample_rate,
            IntBounds::closed(1000, 384000));
  v.integer(F("n_fft", "STFT size"), m.n_fft, IntBounds::closed(16, 8192));
  int window = m.window();  // absent: n_fft
  v.integer(F("win_length", "Hann window length (<= n_fft; default n_fft)"), window,
            IntBounds::closed(2, 8192));
  if (v.reading()) m.win_length = window;
  v.check(window <= m.n_fft, "win_length",
          "must not exceed n_fft (" + std::to_string(m.n_fft) + ")");
  v.integer(F("hop_length", "samples between frames"), m.hop_length, IntBounds::closed(1, 8192));
  v.integer(F("n_mels", "mel filters"), m.n_mels, IntBounds::closed(1, 512));
  v.number(F("fmin", "lowest filter edge, Hz"), m.fmin, Bounds::at_least(0));
  const double nyquist = m.sample_rate / 2.0;
  double top = m.top();  // absent: the Nyquist frequency
  v.number(F("fmax", "highest filter edge, Hz (default sample_rate / 2)"), top, Bounds::positive());
  if (v.reading()) m.fmax = top;
  v.check(top <= nyquist, "fmax",
          "exceeds the Nyquist frequency (" + json::format_number(nyquist) + " Hz)");
  v.check(top > nyquist || top > m.fmin, "fmax",
          "must exceed fmin (" + json::format_number(m.fmin) + " Hz)");
  v.number(F("log_floor", "log(mel power + this)"), m.log_floor, Bounds::positive());
  v.integer(F("frames", "the log-mel image's width in frames"), c.frames,
            IntBounds::closed(1, 100000));
  v.choice(F("fit", "longer or shorter clips: centred or from the start"), c.fit, fit_choices());
  v.choice(F("normalize", "per-utterance zero mean, unit variance, or none"), c.normalize,
           normalize_choices());
}

template <typename V>
void fields(V& v, SpecAugmentConfig& c) {
  using config::F;
  using json::IntBounds;
  v.integer(F("time_masks", "time masks per example"), c.time_masks, IntBounds::closed(0, 16));
  v.integer(F("time_mask_width", "each masks 0..this frames"), c.time_mask_width,
            IntBounds::closed(0, 1000));
  v.integer(F("freq_masks", "frequency masks per example"), c.freq_masks, IntBounds::closed(0, 16));
  v.integer(F("freq_mask_width", "each masks 0..this mel bins"), c.freq_mask_width,
            IntBounds::closed(0, 512));
}

template <typename V>
void fields(V& v, AudioConfig& c) {
  using config::F;
  cnn_task_fields(v, "audio", c);
  v.section(F("data", "the WAV files").required(), c.data);
  v.section(F("features", "the log-mel front end"), c.features);
  v.section(F("augment", "SpecAugment masking during training"), c.augment);
  v.check(c.augment.time_mask_width <= c.features.frames, "augment.time_mask_width",
          "exceeds features.frames (" + std::to_string(c.features.frames) + ")");
  v.check(c.augment.freq_mask_width <= c.features.mel.n_mels, "augment.freq_mask_width",
          "exceeds features.n_mels (" + std::to_string(c.features.mel.n_mels) + ")");
  cnn_model_and_train(v, c.layers, FrameLayers::Refused, c.train);
}

}  // namespace tessera
