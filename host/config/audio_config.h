#pragma once
// The audio-classification task's config ("task": "audio"): data (a folder of
// {label}_{speaker}_{index}.wav files, the Free Spoken Digit Dataset's layout and split), the
// log-mel front end, SpecAugment masking, the CNN's layer list and training (the image task's
// sections, host/config/image_config.h). Validated completely before anything is allocated;
// errors name file, line:column and JSON path. Defaults: pipelines/audio/fsdd.json.
#include <cstdint>
#include <string>
#include <vector>

#include "host/config/image_config.h"
#include "host/data/log_mel.h"

namespace tessera {

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

struct AudioConfig {
  std::string name = "audio";
  int64_t seed = 42;
  std::string device = "auto";
  AudioDataConfig data;
  AudioFeatureConfig features;
  SpecAugmentConfig augment;
  std::vector<CnnLayerSpec> layers;
  ImageTrainConfig train;
};

AudioConfig parse_audio_config(const std::string& json_text, const std::string& source_path);
AudioConfig load_audio_config(const std::string& path);
std::string to_json(const AudioConfig& config);
// The "features" object alone (stored in model artefacts) and its reader.
void write_audio_features(json::JsonWriter& w, const AudioFeatureConfig& f);
AudioFeatureConfig parse_audio_features(const std::string& json_object_text);

// Whether a config file declares "task": "audio" (for the CLI's dispatch).
bool is_audio_config_file(const std::string& path);

}  // namespace tessera
