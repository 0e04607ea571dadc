#include "pipelines/video/video.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>
#include <sstream>

#include "host/config/json_writer.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/moving_clips.h"
#include "pipelines/image/cnn_task.h"

namespace tessera::video {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> sorted_entries(const std::string& dir, bool dirs_only) {
  std::error_code ec;
  std::vector<std::string> out;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code dec;
    const bool is_dir = it->is_directory(dec);
    if (is_dir || (!dirs_only && ends_with(name, ".tclip"))) out.push_back(name);
  }
  if (ec) TESSERA_THROW(Io, "cannot list '" << dir << "': " << ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

template <typename T>
std::vector<T> take(const std::vector<T>& v, const std::vector<int64_t>& idx) {
  std::vector<T> out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(v[static_cast<size_t>(i)]);
  return out;
}

// Training (with validation held out later) and test clips of a generated config.
image::Splits generate_splits(const VideoConfig& c) {
  const VideoGenerateConfig& g = c.data.generate;
  const std::string& s = g.source_dir;
  MovingClipOptions o;
  o.frames = c.data.frames;
  o.canvas = static_cast<int>(c.data.height);
  o.items = g.items;
  o.label = g.label == VideoGenLabel::Direction ? ClipLabel::Direction : ClipLabel::ItemClass;
  o.min_speed = g.min_speed;
  o.max_speed = g.max_speed;
  image::Splits out;
  o.clips = g.clips;
  o.seed = static_cast<uint64_t>(c.seed);
  out.train = make_moving_clips(
      read_idx(s + "/train-images-idx3-ubyte.gz", s + "/train-labels-idx1-ubyte.gz"), o);
  if (g.test_clips > 0) {
    // Test clips move items the training clips never show (Fashion-MNIST's test images).
    o.clips = g.test_clips;
    o.seed = static_cast<uint64_t>(c.seed) ^ 0x7e57c1ull;
    out.test = make_moving_clips(
        read_idx(s + "/t10k-images-idx3-ubyte.gz", s + "/t10k-labels-idx1-ubyte.gz"), o);
  }
  return out;
}

}  // namespace

ImageSet generated_test_clips(const VideoConfig& c) {
  VideoConfig no_train = c;
  // generate_splits makes the training clips from the train images first; a two-clip request
  // keeps that cheap (the test clips' seed does not depend on it).
  no_train.data.generate.clips = 2;
  return generate_splits(no_train).test;
}

std::string class_folder_name(const std::string& class_name) {
  std::string f = class_name;
  for (char& c : f)
    if (c == '/' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
  if (f.empty() || f == "." || f == "..") f = "_" + f;
  return f;
}

std::vector<std::string> generated_class_names(const VideoGenerateConfig& g) {
  if (g.label == VideoGenLabel::Direction) return {"right", "down", "left", "up"};
  return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
}

std::vector<ClipRef> list_clip_dir(const std::string& dir, std::vector<std::string>& class_names) {
  if (!std::filesystem::is_directory(dir))
    TESSERA_THROW(Data, "'" << dir << "' is not a folder (expected one subfolder per class)");
  if (class_names.empty()) class_names = sorted_entries(dir, /*dirs_only=*/true);
  if (class_names.empty())
    TESSERA_THROW(Data, "'" << dir << "' has no class subfolders (expected DIR/<class>/<clip>)");
  std::vector<ClipRef> out;
  for (size_t k = 0; k < class_names.size(); ++k) {
    const std::string cdir = dir + "/" + class_names[k];
    if (!std::filesystem::is_directory(cdir))
      TESSERA_THROW(Data, "class folder '" << cdir << "' does not exist");
    for (const std::string& name : sorted_entries(cdir, /*dirs_only=*/false))
      out.push_back({cdir + "/" + name, static_cast<int32_t>(k)});
  }
  if (out.empty())
    TESSERA_THROW(Data, "no clips under '" << dir
                                           << "' (each class folder holds clip folders of "
                                              "frames or .tclip files)");
  return out;
}

std::vector<float> clip_input(const Clip& clip, int64_t frames, int64_t height, int64_t width,
                              const std::string& clip_path) {
  if (clip.frames != frames)
    TESSERA_THROW(Data, "clip '" << clip_path << "' has " << clip.frames
                                 << " frames; the model takes " << frames);
  if (clip.height == height && clip.width == width) return clip.pixels;
  std::vector<float> out;
  out.reserve(static_cast<size_t>(frames * height * width));
  const int64_t fsize = clip.height * clip.width;
  for (int64_t t = 0; t < frames; ++t) {
    GrayImage f;
    f.height = clip.height;
    f.width = clip.width;
    f.pixels.assign(clip.pixels.begin() + t * fsize, clip.pixels.begin() + (t + 1) * fsize);
    const GrayImage r = resize_bilinear(f, height, width);
    out.insert(out.end(), r.pixels.begin(), r.pixels.end());
  }
  return out;
}

ImageSet read_clips(const std::vector<ClipRef>& clips, int64_t frames, int64_t height,
                    int64_t width) {
  ImageSet set;
  set.n = static_cast<int64_t>(clips.size());
  set.channels = frames;
  set.height = height;
  set.width = width;
  set.pixels.reserve(static_cast<size_t>(set.n * set.image_size()));
  for (const ClipRef& c : clips) {
    const std::vector<float> x = clip_input(read_clip(c.path), frames, height, width, c.path);
    set.pixels.insert(set.pixels.end(), x.begin(), x.end());
    set.labels.push_back(c.label);
  }
  return set;
}

Result train(const std::string& config_path, const TrainOptions& options) {
  VideoConfig cfg = load_video_config(config_path);  // validated before any allocation
  if (options.seed >= 0) cfg.seed = options.seed;
  const VideoDataConfig& d = cfg.data;
  const auto t_load = Clock::now();
  std::vector<std::string> names = d.class_names;
  image::Splits data;
  ImageSet train_all;
  if (d.generated) {
    if (names.empty()) names = generated_class_names(d.generate);
    image::Splits gen = generate_splits(cfg);
    train_all = std::move(gen.train);
    data.test = std::move(gen.test);
  } else {
    const std::vector<ClipRef> clips = list_clip_dir(d.dir, names);
    std::vector<ClipRef> train_clips = clips, test_clips;
    if (!d.test_dir.empty()) {
      std::vector<std::string> test_names = names;  // the same class folders, same order
      test_clips = list_clip_dir(d.test_dir, test_names);
    } else if (d.test_fraction > 0) {
      const auto [tr, te] = image::seeded_split(static_cast<int64_t>(clips.size()), d.test_fraction,
                                                static_cast<uint64_t>(cfg.seed) ^ 0x7e57ull);
      train_clips = take(clips, tr);
      test_clips = take(clips, te);
    }
    train_all = read_clips(train_clips, d.frames, d.height, d.width);
    data.test = read_clips(test_clips, d.frames, d.height, d.width);
  }
  if (d.classes > 0 && d.classes != static_cast<int64_t>(names.size()))
    TESSERA_THROW(Data, config_path << ": data.classes is " << d.classes << " but the data has "
                                    << names.size() << " classes");
  for (const ImageSet* s : {&train_all, &data.test})
    for (int32_t l : s->labels)
      if (l < 0 || l >= static_cast<int32_t>(names.size()))
        TESSERA_THROW(Data,
                      "a clip has label " << l << ", outside the " << names.size() << " classes");
  const auto [tr, va] = image::seeded_split(train_all.n, d.validation_fraction,
                                            static_cast<uint64_t>(cfg.seed) ^ 0x5a1dull);
  data.train = take_images(train_all, tr);
  data.validation = take_images(train_all, va);
  const double load_seconds = seconds_since(t_load);
  if (!options.quiet)
    std::fprintf(stderr, "tessera train: %lld clips of %d frames %lldx%lld %s in %.1f s\n",
                 (long long)(train_all.n + data.test.n), d.frames, (long long)d.height,
                 (long long)d.width, d.generated ? "generated" : "read", load_seconds);

  ImageConfig ic;
  ic.name = cfg.name;
  ic.seed = cfg.seed;
  ic.device = cfg.device;
  ic.data.classes = static_cast<int64_t>(names.size());
  ic.data.class_names = names;
  ic.data.validation_fraction = d.validation_fraction;
  ic.layers = cfg.layers;
  ic.train = cfg.train;
  image::TaskHooks hooks;
  hooks.task = "video";
  hooks.resume_config = image::resumable_json(cfg);
  return image::train_on(ic, data, load_seconds, to_json(cfg), options, hooks);
}

Result evaluate(const std::string& model_path, const std::string& data, const Options& options) {
  const image::LoadedModel m = image::load_model(model_path, "video");
  std::vector<std::string> folders;
  std::vector<ClipRef> clips = list_clip_dir(data, folders);
  std::vector<int32_t> class_of;  // a folder's label is the model's class of that name
  for (const std::string& folder : folders) {
    const auto it =
        std::find_if(m.class_names.begin(), m.class_names.end(), [&](const std::string& name) {
          return folder == name || folder == class_folder_name(name);
        });
    if (it == m.class_names.end())
      TESSERA_THROW(Data, "'" << data << "/" << folder << "': '" << folder
                              << "' is not one of the model's classes");
    class_of.push_back(static_cast<int32_t>(it - m.class_names.begin()));
  }
  for (ClipRef& c : clips) c.label = class_of[static_cast<size_t>(c.label)];
  const auto t0 = Clock::now();
  const ImageSet set = read_clips(clips, m.spec.channels, m.spec.height, m.spec.width);
  image::ReadyModel ready = image::instantiate(m, options.device, m.eval_batch_size);
  const ConfusionMatrix cm =
      image::evaluate_set(*ready.model, set, m.eval_batch_size, static_cast<int>(m.spec.classes));
  return image::evaluation_result(
      {"video", model_path, data, ready.backend->name(), "clips", set.n, seconds_since(t0)}, cm,
      m.class_names);
}

Result predict(const std::string& model_path, const std::string& clip_path, const Options& options,
               int top_k) {
  const image::LoadedModel m = image::load_model(model_path, "video");
  const Clip clip = read_clip(clip_path);
  const std::vector<float> x =
      clip_input(clip, m.spec.channels, m.spec.height, m.spec.width, clip_path);
  image::ReadyModel ready = image::instantiate(m, options.device, 1);
  const std::vector<double> p = image::class_probabilities(*ready.model, x);
  return image::top_classes_result(
      "video", model_path,
      [&](json::JsonWriter& w) { w.field("clip", clip_path).field("frames", clip.frames); }, p,
      top_k, m.class_names);
}

Result batch_predict(const std::string& model_path, const std::string& data,
                     const std::string& out_path, const Options& options) {
  const image::LoadedModel m = image::load_model(model_path, "video");
  std::vector<std::string> folders;
  const std::vector<ClipRef> clips = list_clip_dir(data, folders);
  const auto t0 = Clock::now();
  image::ReadyModel ready = image::instantiate(m, options.device, m.eval_batch_size);
  const int64_t batch = m.eval_batch_size, classes = m.spec.classes;
  std::ostringstream tsv;
  tsv << "clip\tfolder\tclass\tprobability\n";
  std::vector<int64_t> per_class(static_cast<size_t>(classes), 0);
  // Read and score a batch at a time: memory stays one batch of clips, whatever the folder holds.
  for (size_t lo = 0; lo < clips.size(); lo += static_cast<size_t>(batch)) {
    const size_t hi = std::min(clips.size(), lo + static_cast<size_t>(batch));
    const std::vector<ClipRef> part(clips.begin() + lo, clips.begin() + hi);
    const ImageSet set = read_clips(part, m.spec.channels, m.spec.height, m.spec.width);
    Tensor x = Tensor::host({set.n, set.channels, set.height, set.width});
    std::copy(set.pixels.begin(), set.pixels.end(), x.data<float>());
    const Tensor logits = ready.backend->to_host(ready.model->forward(x, CnnMode::Eval));
    for (int64_t i = 0; i < set.n; ++i) {
      const float* z = logits.data<float>() + i * classes;
      const int64_t best = std::max_element(z, z + classes) - z;
      double sum = 0;
      for (int64_t k = 0; k < classes; ++k) sum += std::exp(static_cast<double>(z[k] - z[best]));
      const ClipRef& c = part[static_cast<size_t>(i)];
      tsv << c.path << "\t" << folders[static_cast<size_t>(c.label)] << "\t"
          << m.class_names[static_cast<size_t>(best)] << "\t" << image::fmt(1.0 / sum) << "\n";
      ++per_class[static_cast<size_t>(best)];
    }
  }
  write_file_atomic(out_path, tsv.str());
  const double secs = seconds_since(t0);
  const auto n = static_cast<int64_t>(clips.size());
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "batch-score").field("task", "video").field("model", model_path);
  w.field("data", data).field("output", out_path).field("device", ready.backend->name());
  w.field("clips", n).field("clips_per_sec", secs > 0 ? n / secs : 0.0);
  w.key("predicted").begin_object();
  for (int64_t k = 0; k < classes; ++k)
    w.field(m.class_names[static_cast<size_t>(k)], per_class[static_cast<size_t>(k)]);
  w.end_object().end_object();
  std::ostringstream s;
  s << "scored " << n << " clips of " << data << " on " << ready.backend->name() << " into "
    << out_path << "\n";
  return {s.str(), w.compact()};
}

bool is_video_model_file(const std::string& path) {
  return image::is_model_file(path, "video");
}

}  // namespace tessera::video
