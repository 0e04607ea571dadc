#pragma once
// The image-classification pipeline (CNN): train (load -> fit with per-epoch validation ->
// test accuracy, per-class accuracy and confusion matrix -> save), evaluate a saved model on a
// labelled set, and predict the top classes of one image file (PNG or PGM). Each returns a
// human summary and one JSON object (the CLI prints it as the last stdout line under --json).
#include <cstdint>
#include <functional>
#include <string>

namespace tessera::image {

struct Options {
  std::string device;  // empty: the config's (train) or "auto"
  bool json = false;
  bool quiet = false;
};

struct TrainOptions : Options {
  std::string runs_dir;  // empty: the config's train.runs_dir
  std::string run_dir;   // exact run directory (must not exist); empty: a new one under runs_dir
  int64_t epochs = -1;   // -1: the config's
  // A run directory to continue: every run writes <run_dir>/checkpoint.tsc after each epoch
  // (host/train/checkpoint.h: weights, batch-norm running statistics, optimizer state, step, the
  // best epoch and its weights, the augmentation generator); one holding it is resumed from it
  // and ends bit-identical to an uninterrupted run, one without it (or a new directory) starts
  // there. The config must be the same but for runs_dir, device and on_nonfinite.
  std::string resume;
  // Called with the number of finished epochs once that epoch's checkpoint is on disk.
  std::function<void(int64_t epochs_done)> after_checkpoint;
};

struct Result {
  std::string summary;
  std::string json;
};

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
