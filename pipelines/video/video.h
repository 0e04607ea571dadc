#pragma once
// The video-clip classification pipeline: clips of T grey frames (a folder of PNG/PGM frames or a
// .tclip tensor, host/data/clip_data.h; or generated Moving Fashion-MNIST clips,
// host/data/moving_clips.h) -> a CNN that takes the T frames as its T input channels (or, with
// a "frames_to_batch" first layer, runs on each frame and pools over time), trained,
// evaluated and stored by the image pipeline's code (pipelines/image/cnn_task.h) with
// "task": "video". The model's input shape [T, H, W] is the clip shape evaluate and predict
// expect (frames of another size are resized; another frame count is an error).
#include <cstdint>
#include <string>
#include <vector>

#include "host/data/clip_data.h"
#include "host/data/image_data.h"
#include "pipelines/image/image.h"
#include "pipelines/video/video_config.h"

namespace tessera::video {

using Options = image::Options;
using TrainOptions = image::TrainOptions;
using Result = image::Result;

Result train(const std::string& config_path, const TrainOptions& options);
// data: a folder of class subfolders (the training layout); each subfolder's name must be one of
// the model's classes.
Result evaluate(const std::string& model_path, const std::string& data, const Options& options);
// The top `top_k` classes of one clip (a frame folder or a .tclip file).
Result predict(const std::string& model_path, const std::string& clip_path, const Options& options,
               int top_k = 3);

// Every clip under `data` (the evaluate layout, DIR/<folder>/<clip>; folder names need not be
// classes) scored in batches: `out_path` gets a TSV, written atomically, with a header and one
// row per clip: clip path, folder, top class, its probability.
Result batch_predict(const std::string& model_path, const std::string& data,
                     const std::string& out_path, const Options& options);

bool is_video_model_file(const std::string& path);

// ---- pieces, open for tests ----
struct ClipRef {
  std::string path;
  int32_t label = 0;
};
// The clips of DIR/<class>/: every subfolder (a clip of frames) and every *.tclip file, by name;
// other files are ignored. `class_names` empty: the classes are DIR's subfolders (sorted, hidden
// ones skipped) and are returned in it; else each name's subfolder (missing: an error).
std::vector<ClipRef> list_clip_dir(const std::string& dir, std::vector<std::string>& class_names);
// One clip as the model's input [frames, height, width]: frames resized when their size differs;
// Error(Data) naming `clip_path` when the frame count differs.
std::vector<float> clip_input(const Clip& clip, int64_t frames, int64_t height, int64_t width,
                              const std::string& clip_path);
// Reads clips into a set of `frames` channels.
ImageSet read_clips(const std::vector<ClipRef>& clips, int64_t frames, int64_t height,
                    int64_t width);
// The folder a class's clips go in: its name with every '/' (not allowed in a file name; e.g.
// Fashion-MNIST's "T-shirt/top"), '\' and control character as '_', and "", "." or ".."
// prefixed with '_'. evaluate accepts a class's name or this.
std::string class_folder_name(const std::string& class_name);
// The class names a config's data has (generated: the label's; dir: as list_clip_dir).
std::vector<std::string> generated_class_names(const VideoGenerateConfig& g);
// A generated config's test clips, the very clips train() tests on (empty when test_clips = 0).
ImageSet generated_test_clips(const VideoConfig& config);

}  // namespace tessera::video
