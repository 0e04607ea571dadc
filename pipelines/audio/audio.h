#pragma once
// The audio-classification pipeline: WAV files -> log-mel images (host/data/log_mel.h) -> the
// image pipeline's CNN training, evaluation and artefacts (pipelines/image/cnn_task.h). The
// model artefact ("task": "audio") also holds the front end's settings, so evaluate and predict
// compute exactly the features the model was trained on, at its sample rate.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/data/image_data.h"
#include "pipelines/audio/audio_config.h"
#include "pipelines/image/image.h"

namespace tessera::audio {

using Options = image::Options;
using TrainOptions = image::TrainOptions;
using Result = image::Result;

Result train(const std::string& config_path, const TrainOptions& options);
// data: a folder of {label}_{speaker}_{index}.wav files (every one), or a registered dataset
// "NAME" (every file), "NAME:test" or "NAME:train" (its split by index, test = index <= 4).
Result evaluate(const std::string& model_path, const std::string& data, const Options& options);
// The top `top_k` classes of one WAV file with their probabilities.
Result predict(const std::string& model_path, const std::string& wav_path, const Options& options,
               int top_k = 3);

bool is_audio_model_file(const std::string& path);

// ---- pieces, open for tests ----
struct Recording {
  std::string path;
  int32_t label = 0;
  std::string speaker;
  int64_t index = 0;
};
// Parses "{label}_{speaker}_{index}.wav" (label one of `class_names`); Error(Data) naming the
// file otherwise.
Recording parse_recording_name(const std::string& path,
                               const std::vector<std::string>& class_names);
// Every *.wav in `dir` (sorted by name); other files are ignored.
std::vector<Recording> list_folder(const std::string& dir,
                                   const std::vector<std::string>& class_names);
// The registered dataset's files (resolved, SHA-256 verified) of the config's selection.
std::vector<Recording> list_data(const AudioDataConfig& d,
                                 const std::vector<std::string>& class_names);
// One utterance's classifier input: [n_mels, frames], fitted and normalised.
std::vector<float> features_of(const std::vector<float>& samples, const AudioFeatureConfig& f);
// Reads (resampling to the front end's rate) and featurises recordings into a 1-channel set.
// With `frontend` (a backend) the log-mels are computed there in batches (host/data/
// log_mel_batch.h, equal to log_mel() up to float rounding); without, per utterance on the host.
// Fitting to `frames`, normalisation (and SpecAugment, later) stay on the host.
ImageSet featurize(const std::vector<Recording>& recs, const AudioFeatureConfig& f,
                   Backend* frontend = nullptr);
// The backend for the front end of a task on `device` (a make_backend spec): that backend when
// it is a CUDA device, otherwise none (the host path is faster per utterance on a CPU).
std::unique_ptr<Backend> frontend_backend(const std::string& device);

}  // namespace tessera::audio
