#include "pipelines/audio/audio.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>
#include <random>
#include <sstream>
#include <thread>

#include "host/config/json_writer.h"
#include "host/core/error.h"
#include "host/core/json_fields.h"
#include "host/data/log_mel_batch.h"
#include "host/data/registry.h"
#include "host/data/wav.h"
#include "pipelines/image/cnn_task.h"

namespace tessera::audio {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::vector<std::string> class_names_of(const AudioDataConfig& d) {
  if (!d.class_names.empty()) return d.class_names;
  std::vector<std::string> names;
  for (int64_t i = 0; i < d.classes; ++i) names.push_back(std::to_string(i));
  return names;
}

std::string basename(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string features_json(const AudioFeatureConfig& f) {
  json::JsonWriter w;
  write_audio_features(w, f);
  return w.compact();
}

// The front end and class names stored in an audio model's header.
struct AudioModelInfo {
  AudioFeatureConfig features;
};
AudioModelInfo model_info(const image::LoadedModel& m, const std::string& path) {
  const std::string source = "'" + path + "' header";
  rapidjson::Document doc;
  parse_json_object(doc, m.header_json, source);
  const JsonFields h(doc, source);
  if (!h.has("features") || !h.get("features").IsObject())
    TESSERA_THROW(Io, "'" << path << "' is an audio model without its \"features\" front end");
  AudioModelInfo info;
  try {
    info.features = parse_audio_features(h.json("features"));
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Config) throw;
    h.fail("features", std::string("is not a valid front end: ") + e.what());
  }
  // The front end makes the model's input: one [n_mels, frames] log-mel image per recording.
  const AudioFeatureConfig& f = info.features;
  if (m.spec.channels != 1 || m.spec.height != f.mel.n_mels || m.spec.width != f.frames)
    h.fail("features", "make " + std::to_string(f.mel.n_mels) + " x " + std::to_string(f.frames) +
                           " log-mel images, the model takes " + std::to_string(m.spec.channels) +
                           " x " + std::to_string(m.spec.height) + " x " +
                           std::to_string(m.spec.width));
  return info;
}

}  // namespace

Recording parse_recording_name(const std::string& path,
                               const std::vector<std::string>& class_names) {
  const std::string name = basename(path);
  auto bad = [&](const std::string& why) {
    TESSERA_THROW(Data, "'" << path << "': " << why
                            << " (recordings are named {label}_{speaker}_{index}.wav)");
  };
  if (!ends_with(name, ".wav")) bad("not a .wav file");
  const std::string stem = name.substr(0, name.size() - 4);
  const auto a = stem.find('_'), b = stem.rfind('_');
  if (a == std::string::npos || a == b) bad("the name does not have three '_'-separated parts");
  Recording r;
  r.path = path;
  const std::string label = stem.substr(0, a), index = stem.substr(b + 1);
  r.speaker = stem.substr(a + 1, b - a - 1);
  const auto it = std::find(class_names.begin(), class_names.end(), label);
  if (it == class_names.end()) bad("label '" + label + "' is not one of the model's classes");
  r.label = static_cast<int32_t>(it - class_names.begin());
  if (index.empty() || index.size() > 9 || !std::all_of(index.begin(), index.end(), ::isdigit))
    bad("index '" + index + "' is not a number");
  r.index = std::stoll(index);
  return r;
}

std::vector<Recording> list_folder(const std::string& dir,
                                   const std::vector<std::string>& class_names) {
  std::error_code ec;
  std::vector<std::string> files;
  for (auto it = std::filesystem::directory_iterator(dir, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    if (ends_with(it->path().filename().string(), ".wav")) files.push_back(it->path().string());
  if (ec) TESSERA_THROW(Io, "cannot list '" << dir << "': " << ec.message());
  std::sort(files.begin(), files.end());
  std::vector<Recording> out;
  for (const std::string& f : files) out.push_back(parse_recording_name(f, class_names));
  return out;
}

std::vector<Recording> list_data(const AudioDataConfig& d,
                                 const std::vector<std::string>& class_names) {
  std::vector<Recording> all;
  if (!d.dir.empty()) {
    all = list_folder(d.dir, class_names);
  } else {
    const DatasetInfo& info = find_dataset(d.dataset);
    for (const DatasetFile& f : info.files) {
      if (!ends_with(f.name, ".wav")) continue;
      Recording r = parse_recording_name(f.name, class_names);  // checks the name before fetching
      if (d.max_index >= 0 && r.index > d.max_index) continue;
      if (!d.speakers.empty() &&
          std::find(d.speakers.begin(), d.speakers.end(), r.speaker) == d.speakers.end())
        continue;
      r.path = resolve_dataset_file(d.dataset, f.name);
      all.push_back(std::move(r));
    }
  }
  std::vector<Recording> out;
  for (Recording& r : all) {
    if (d.max_index >= 0 && r.index > d.max_index) continue;
    if (!d.speakers.empty() &&
        std::find(d.speakers.begin(), d.speakers.end(), r.speaker) == d.speakers.end())
      continue;
    out.push_back(std::move(r));
  }
  if (out.empty())
    TESSERA_THROW(
        Data, "no recordings selected from " << (d.dir.empty() ? "dataset " + d.dataset : d.dir));
  return out;
}

// The fixed-size, normalised classifier input from a [n_mels, frames_in] log-mel image.
std::vector<float> fit_features(const std::vector<float>& lm, const AudioFeatureConfig& f) {
  const int64_t frames_in = static_cast<int64_t>(lm.size()) / f.mel.n_mels;
  std::vector<float> img = fit_frames(lm, f.mel.n_mels, frames_in, f.frames, f.fit);
  if (f.normalize) normalize_utterance(img);
  return img;
}

std::vector<float> features_of(const std::vector<float>& samples, const AudioFeatureConfig& f) {
  return fit_features(log_mel(samples, f.mel), f);
}

ImageSet featurize(const std::vector<Recording>& recs, const AudioFeatureConfig& f,
                   Backend* frontend) {
  ImageSet set;
  set.n = static_cast<int64_t>(recs.size());
  set.channels = 1;
  set.height = f.mel.n_mels;
  set.width = f.frames;
  set.pixels.resize(static_cast<size_t>(set.n * set.image_size()));
  set.labels.resize(static_cast<size_t>(set.n));
  // With a front-end backend the workers only read audio; the log-mels are computed afterwards
  // in batches there.
  std::vector<std::vector<float>> audio(frontend ? recs.size() : 0);
  auto store = [&](int64_t i, const std::vector<float>& img) {
    std::copy(img.begin(), img.end(), set.pixels.begin() + i * set.image_size());
  };
  // Files are independent: split them over two threads (the machines this runs on have >= 2).
  const int workers = static_cast<int>(std::min<int64_t>(2, std::max<int64_t>(1, set.n / 64)));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  auto work = [&](int w) {
    try {
      for (int64_t i = w; i < set.n; i += workers) {
        Audio a = read_wav_at(recs[i].path, f.mel.sample_rate);
        set.labels[i] = recs[i].label;
        if (frontend)
          audio[static_cast<size_t>(i)] = std::move(a.samples);
        else
          store(i, features_of(a.samples, f));
      }
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < workers; ++w) threads.emplace_back(work, w);
  work(0);
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  if (frontend) {
    LogMelBatch fe(*frontend, f.mel);
    const std::vector<std::vector<float>> lms = fe.compute_all(audio);
    for (int64_t i = 0; i < set.n; ++i) store(i, fit_features(lms[static_cast<size_t>(i)], f));
  }
  return set;
}

std::unique_ptr<Backend> frontend_backend(const std::string& device) {
  std::unique_ptr<Backend> be = make_backend(device);
  if (be->device().kind == DeviceKind::Cuda) return be;
  return nullptr;
}

Result train(const std::string& config_path, const TrainOptions& options) {
  AudioConfig cfg = load_audio_config(config_path);  // validated before any allocation
  if (options.seed >= 0) cfg.seed = options.seed;
  const std::vector<std::string> names = class_names_of(cfg.data);
  auto t_load = Clock::now();
  const std::vector<Recording> recs = list_data(cfg.data, names);
  std::vector<Recording> train_recs, test_recs;
  for (const Recording& r : recs)
    (r.index <= cfg.data.test_max_index ? test_recs : train_recs).push_back(r);
  const auto [tr, va] =
      image::seeded_split(static_cast<int64_t>(train_recs.size()), cfg.data.validation_fraction,
                          static_cast<uint64_t>(cfg.seed) ^ 0x5a1dull);
  // On a GPU the log-mel front end runs there, batched (a backend of its own, released before
  // training starts); on the host it is the per-utterance FFT.
  std::unique_ptr<Backend> frontend = frontend_backend(cfg.device);
  const ImageSet train_all = featurize(train_recs, cfg.features, frontend.get());
  image::Splits data;
  data.train = take_images(train_all, tr);
  data.validation = take_images(train_all, va);
  data.test = featurize(test_recs, cfg.features, frontend.get());
  frontend.reset();
  const double load_seconds = seconds_since(t_load);
  if (!options.quiet)
    std::fprintf(stderr, "tessera train: %zu recordings featurised in %.1f s\n", recs.size(),
                 load_seconds);

  ImageConfig ic;
  ic.name = cfg.name;
  ic.seed = cfg.seed;
  ic.device = cfg.device;
  ic.data.classes = cfg.data.classes;
  ic.data.class_names = names;
  ic.data.validation_fraction = cfg.data.validation_fraction;
  ic.layers = cfg.layers;
  ic.train = cfg.train;
  image::TaskHooks hooks;
  hooks.task = "audio";
  hooks.resume_config = image::resumable_json(cfg);
  hooks.meta_members = "\"features\":" + features_json(cfg.features);
  if (cfg.augment.enabled()) {
    const SpecAugmentConfig aug = cfg.augment;
    const int n_mels = cfg.features.mel.n_mels;
    const int64_t frames = cfg.features.frames;
    hooks.augment = [aug, n_mels, frames](Tensor& x, std::mt19937_64& rng) {
      for (int64_t i = 0; i < x.shape()[0]; ++i)
        spec_augment(x.data<float>() + i * n_mels * frames, n_mels, frames, aug, rng);
    };
  }
  return image::train_on(ic, data, load_seconds, to_json(cfg), options, hooks);
}

Result evaluate(const std::string& model_path, const std::string& data, const Options& options) {
  const image::LoadedModel m = image::load_model(model_path, "audio");
  const AudioModelInfo info = model_info(m, model_path);
  std::vector<Recording> recs;
  const auto colon = data.rfind(':');
  const std::string split = colon == std::string::npos ? "" : data.substr(colon + 1);
  if (std::filesystem::is_directory(data)) {
    recs = list_folder(data, m.class_names);
  } else {
    AudioDataConfig d;
    d.dataset = colon == std::string::npos ? data : data.substr(0, colon);
    if (!split.empty() && split != "test" && split != "train")
      TESSERA_THROW(Usage, "'" << data << "': expected a folder, NAME, NAME:test or NAME:train");
    for (Recording& r : list_data(d, m.class_names))
      if (split.empty() || (split == "test") == (r.index <= d.test_max_index))
        recs.push_back(std::move(r));
  }
  auto t0 = Clock::now();
  image::ReadyModel ready = image::instantiate(m, options.device, m.eval_batch_size);
  // The model's GPU computes the log-mels too (batched); on the host, the per-utterance FFT.
  const bool on_gpu = ready.backend->device().kind == DeviceKind::Cuda;
  const ImageSet set = featurize(recs, info.features, on_gpu ? ready.backend.get() : nullptr);
  const ConfusionMatrix cm =
      image::evaluate_set(*ready.model, set, m.eval_batch_size, static_cast<int>(m.spec.classes));
  return image::evaluation_result(
      {"audio", model_path, data, ready.backend->name(), "recordings", set.n, seconds_since(t0)},
      cm, m.class_names);
}

Result predict(const std::string& model_path, const std::string& wav_path, const Options& options,
               int top_k) {
  const image::LoadedModel m = image::load_model(model_path, "audio");
  const AudioModelInfo info = model_info(m, model_path);
  const Audio a = read_wav_at(wav_path, info.features.mel.sample_rate);
  const std::vector<float> x = features_of(a.samples, info.features);
  image::ReadyModel ready = image::instantiate(m, options.device, 1);
  const std::vector<double> p = image::class_probabilities(*ready.model, x);
  return image::top_classes_result(
      "audio", model_path,
      [&](json::JsonWriter& w) { w.field("audio", wav_path).field("seconds", a.seconds()); }, p,
      top_k, m.class_names);
}

bool is_audio_model_file(const std::string& path) {
  return image::is_model_file(path, "audio");
}

}  // namespace tessera::audio
