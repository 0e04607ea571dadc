// Reading, validating and writing the audio task's config.
#include "host/config/audio_config.h"

#include "host/config/json_writer.h"

namespace tessera {

namespace {

using json::Bounds;
using json::IntBounds;
using json::ObjectReader;
using json::Text;

const json::Choices<FitMode>& fit_choices() {
  static const json::Choices<FitMode> c = {{"center", FitMode::Center}, {"start", FitMode::Start}};
  return c;
}
const json::Choices<bool>& normalize_choices() {
  static const json::Choices<bool> c = {{"utterance", true}, {"none", false}};
  return c;
}

void read_features(ObjectReader& f, AudioFeatureConfig& a) {
  MelConfig& m = a.mel;
  m.sample_rate = f.integer<int>("sample_rate", m.sample_rate, IntBounds::closed(1000, 384000));
  m.n_fft = f.integer<int>("n_fft", m.n_fft, IntBounds::closed(16, 8192));
  m.win_length = f.integer<int>("win_length", m.n_fft, IntBounds::closed(2, 8192));
  if (m.win_length > m.n_fft)
    f.error("win_length", "must not exceed n_fft (" + std::to_string(m.n_fft) + ")");
  m.hop_length = f.integer<int>("hop_length", m.hop_length, IntBounds::closed(1, 8192));
  m.n_mels = f.integer<int>("n_mels", m.n_mels, IntBounds::closed(1, 512));
  m.fmin = f.number("fmin", m.fmin, Bounds::at_least(0.0));
  m.fmax = f.number("fmax", m.sample_rate / 2.0, Bounds::positive());
  if (m.fmax > m.sample_rate / 2.0)
    f.error("fmax",
            "exceeds the Nyquist frequency (" + json::format_number(m.sample_rate / 2.0) + " Hz)");
  else if (m.fmax <= m.fmin)
    f.error("fmax", "must exceed fmin (" + json::format_number(m.fmin) + " Hz)");
  m.log_floor = f.number("log_floor", m.log_floor, Bounds::positive());
  a.frames = f.integer<int64_t>("frames", a.frames, IntBounds::closed(1, 100000));
  a.fit = f.choice("fit", a.fit, fit_choices());
  a.normalize = f.choice("normalize", a.normalize, normalize_choices());
}

void read_config(ObjectReader& root, AudioConfig& c) {
  static const json::Choices<int> kTask = {{"audio", 0}};
  root.required_choice("task", kTask, 0);
  c.name = config::read_run_name(root, "name", c.name);
  c.seed = root.integer<int64_t>("seed", c.seed, IntBounds::at_least(0));
  c.device = config::read_device(root, "device", c.device);
  {
    ObjectReader d = root.required_object("data");
    AudioDataConfig& dc = c.data;
    dc.dataset = d.string("dataset", "");
    dc.dir = d.string("dir", "");
    if (dc.dataset.empty() && dc.dir.empty()) d.error("dir", "give \"dir\" or \"dataset\"");
    dc.test_max_index =
        d.integer<int>("test_max_index", dc.test_max_index, IntBounds::closed(-1, 1 << 20));
    dc.max_index = d.integer<int>("max_index", dc.max_index, IntBounds::closed(-1, 1 << 20));
    dc.speakers = d.string_list("speakers", {});
    dc.validation_fraction =
        d.number("validation_fraction", dc.validation_fraction, Bounds::closed(0.0, 0.9));
    dc.classes = d.integer<int64_t>("classes", dc.classes, IntBounds::closed(2, 100000));
    dc.class_names = d.string_list("class_names", {});
    if (!dc.class_names.empty() && static_cast<int64_t>(dc.class_names.size()) != dc.classes)
      d.error("class_names", std::to_string(dc.class_names.size()) + " names for " +
                                 std::to_string(dc.classes) + " classes");
    d.finish();
  }
  {
    ObjectReader f = root.object("features");
    read_features(f, c.features);
    f.finish();
  }
  {
    ObjectReader a = root.object("augment");
    SpecAugmentConfig& s = c.augment;
    s.time_masks = a.integer<int>("time_masks", 0, IntBounds::closed(0, 16));
    s.time_mask_width = a.integer<int>("time_mask_width", 0, IntBounds::closed(0, 1000));
    s.freq_masks = a.integer<int>("freq_masks", 0, IntBounds::closed(0, 16));
    s.freq_mask_width = a.integer<int>("freq_mask_width", 0, IntBounds::closed(0, 512));
    if (s.time_mask_width > c.features.frames)
      a.error("time_mask_width",
              "exceeds features.frames (" + std::to_string(c.features.frames) + ")");
    if (s.freq_mask_width > c.features.mel.n_mels)
      a.error("freq_mask_width",
              "exceeds features.n_mels (" + std::to_string(c.features.mel.n_mels) + ")");
    a.finish();
  }
  {
    ObjectReader m = root.required_object("model");
    c.layers = read_layers(m);
    m.finish();
  }
  read_cnn_train(root, c.train);
}

}  // namespace

void write_audio_features(json::JsonWriter& w, const AudioFeatureConfig& a) {
  const MelConfig& m = a.mel;
  w.begin_object();
  w.field("sample_rate", m.sample_rate).field("n_fft", m.n_fft).field("win_length", m.window());
  w.field("hop_length", m.hop_length).field("n_mels", m.n_mels).field("fmin", m.fmin);
  w.field("fmax", m.top()).field("log_floor", m.log_floor).field("frames", a.frames);
  w.choice("fit", a.fit, fit_choices()).choice("normalize", a.normalize, normalize_choices());
  w.end_object();
}

AudioFeatureConfig parse_audio_features(const std::string& text) {
  return json::read_document<AudioFeatureConfig>(text, "<audio features>", read_features);
}

AudioConfig parse_audio_config(const std::string& json_text, const std::string& source_path) {
  return json::read_document<AudioConfig>(json_text, source_path, read_config);
}

AudioConfig load_audio_config(const std::string& path) {
  return parse_audio_config(json::read_text_file(path), path);
}

std::string to_json(const AudioConfig& c) {
  json::JsonWriter w;
  w.begin_object();
  w.field("task", "audio").field("name", c.name).field("seed", c.seed).field("device", c.device);
  w.key("data").begin_object();
  const AudioDataConfig& d = c.data;
  if (!d.dataset.empty()) w.field("dataset", d.dataset);
  if (!d.dir.empty()) w.field("dir", d.dir);
  w.field("test_max_index", d.test_max_index);
  if (d.max_index >= 0) w.field("max_index", d.max_index);
  if (!d.speakers.empty()) w.field("speakers", d.speakers);
  w.field("validation_fraction", d.validation_fraction).field("classes", d.classes);
  if (!d.class_names.empty()) w.field("class_names", d.class_names);
  w.end_object();
  w.key("features");
  write_audio_features(w, c.features);
  w.key("augment").begin_object();
  w.field("time_masks", c.augment.time_masks).field("time_mask_width", c.augment.time_mask_width);
  w.field("freq_masks", c.augment.freq_masks).field("freq_mask_width", c.augment.freq_mask_width);
  w.end_object();
  w.key("model").begin_object().key("layers");
  write_layers(w, c.layers);
  w.end_object();
  write_cnn_train(w, c.train);
  w.end_object();
  return w.pretty();
}

bool is_audio_config_file(const std::string& path) {
  return json::file_has_task(path, "audio");
}

}  // namespace tessera
