#pragma once
// The image-classification pipeline (CNN): train (load -> fit with per-epoch validation ->
// test accuracy, per-class accuracy and confusion matrix -> save), evaluate a saved model on a
// labelled set, and predict the top classes of one image file (PNG or PGM). Each returns a
// human summary and one JSON object (the CLI prints it as the last stdout line under --json).
#include <cstdint>
#include <functional>
#include <string>

#include "host/core/command_result.h"
#include "host/train/run_options.h"

namespace tessera {
struct CliArgs;
}

namespace tessera::image {

struct Options {
  std::string device;  // empty: the config's (train) or "auto"
  bool json = false;
  bool quiet = false;
};

using TrainOptions = train::RunOptions;

// Options of the model verbs from the command line (--device, --json, --quiet): audio and video
// models answer the same verbs.
Options verb_options(const CliArgs& args);

using Result = CommandResult;

Result train(const std::string& config_path, const TrainOptions& options);
// data: "IMAGES[,LABELS]". An IDX images file's labels default to the same name with
// "images-idx3" -> "labels-idx1"; a digits CSV carries its labels.
Result evaluate(const std::string& model_path, const std::string& data, const Options& options);
// The top `top_k` classes of one image with their probabilities.
Result predict(const std::string& model_path, const std::string& image_path, const Options& options,
               int top_k = 3);

// Whether `path` is an image model artefact (for the CLI's dispatch).
bool is_image_model_file(const std::string& path);

}  // namespace tessera::image
