#include "pipelines/audio/stages.h"

#include <algorithm>
#include <filesystem>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/registry.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/audio/audio.h"
#include "pipelines/task_stages.h"

namespace tessera::audio {

namespace {

// The scheduler's stage API, which every function here is written against.
using namespace scheduler;

// "" (the prep stage's test split), a dataset selection "NAME[:split]", or a folder (resolved
// against the pipeline file).
std::string parse_eval(const PipelineSpec& p, const StageSpec& s) {
  std::string data;
  scheduler::read_stage_config(
      p, s, [&](json::ObjectReader& r) { data = r.string("data", "", json::Text::Any); });
  if (data.empty() || data.find('/') == std::string::npos) return data;
  return scheduler::resolve_spec_path(p, data);
}

std::vector<std::string> class_names_of(const AudioDataConfig& d) {
  if (!d.class_names.empty()) return d.class_names;
  std::vector<std::string> names;
  for (int64_t i = 0; i < d.classes; ++i) names.push_back(std::to_string(i));
  return names;
}

// The recordings the config selects, as audio::list_data selects them, found on this machine:
// `missing` counts those that are not.
struct LocalRecordings {
  std::vector<std::string> files;
  int64_t missing = 0;
};

LocalRecordings local_recordings(const AudioConfig& c) {
  const AudioDataConfig& d = c.data;
  LocalRecordings l;
  if (!d.dir.empty()) {
    if (!std::filesystem::is_directory(d.dir)) {
      l.missing = 1;
      return l;
    }
    for (const Recording& r : list_folder(d.dir, class_names_of(d)))
      if ((d.max_index < 0 || r.index <= d.max_index) &&
          (d.speakers.empty() ||
           std::find(d.speakers.begin(), d.speakers.end(), r.speaker) != d.speakers.end()))
        l.files.push_back(r.path);
    return l;
  }
  const std::vector<std::string> names = class_names_of(d);
  for (const DatasetFile& f : find_dataset(d.dataset).files) {
    if (f.name.size() < 4 || f.name.compare(f.name.size() - 4, 4, ".wav") != 0) continue;
    const Recording r = parse_recording_name(f.name, names);
    if (d.max_index >= 0 && r.index > d.max_index) continue;
    if (!d.speakers.empty() &&
        std::find(d.speakers.begin(), d.speakers.end(), r.speaker) == d.speakers.end())
      continue;
    const std::string path = scheduler::find_local_dataset_file(d.dataset, f.name);
    if (path.empty())
      ++l.missing;
    else
      l.files.push_back(path);
  }
  return l;
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const std::string config = scheduler::parse_prep_config_path(p, s);
  std::vector<std::string> files = {config};
  const LocalRecordings l = local_recordings(load_audio_config(config));
  files.insert(files.end(), l.files.begin(), l.files.end());
  return files;
}

StageResult run_prep(const StageContext& ctx) {
  const std::string config = scheduler::parse_prep_config_path(*ctx.pipeline, *ctx.stage);
  const AudioConfig cfg = load_audio_config(config);
  const LocalRecordings l = local_recordings(cfg);
  const std::string source =
      cfg.data.dir.empty() ? "dataset '" + cfg.data.dataset + "'" : "folder '" + cfg.data.dir + "'";
  if (l.missing > 0 || l.files.empty())
    TESSERA_THROW(Data, "the recordings of " << config << " are not on this machine (" << source
                                             << ": " << l.files.size() << " found, " << l.missing
                                             << " missing)");
  // A folder has no split of its own to evaluate on: the evaluate stage then names its data.
  const std::string test = cfg.data.dir.empty() ? cfg.data.dataset + ":test" : "";
  return scheduler::prep_result(
      ctx,
      "{\"config\":" + json_quote(config) + ",\"recordings\":" + std::to_string(l.files.size()) +
          ",\"test\":" + json_quote(test) + "}",
      "data: " + source + ", " + std::to_string(l.files.size()) + " recordings");
}

scheduler::PrepConfigAndTest read_prep(const StageContext& ctx) {
  return scheduler::read_prep_config_and_test(ctx, "recordings");
}

StageResult run_evaluate(const StageContext& ctx) {
  std::string data = parse_eval(*ctx.pipeline, *ctx.stage);
  if (data.empty()) data = read_prep(ctx).test;
  if (data.empty())
    TESSERA_THROW(Config, "stage '" << ctx.stage->name
                                    << "': the config reads a folder, which has no test split; "
                                       "name the recordings with \"data\"");
  return scheduler::evaluation_result(ctx,
                                      audio::evaluate(scheduler::trained_model(ctx), data,
                                                      scheduler::stage_run_options<Options>(ctx)));
}

// A folder's recordings go into the key; a registered dataset's files are pinned by SHA-256.
std::vector<std::string> eval_inputs(const PipelineSpec& p, const StageSpec& s) {
  const std::string data = parse_eval(p, s);
  std::vector<std::string> files;
  if (!data.empty() && std::filesystem::is_directory(data))
    for (const auto& e : std::filesystem::directory_iterator(data))
      if (e.is_regular_file() && e.path().extension() == ".wav") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

void register_stages(scheduler::StageRegistry& registry) {
  add_prep_and_train(registry, "audio", {prep_inputs, run_prep}, TimeBudget::NotAllowed,
                     config_of_prep(read_prep), audio::train);
  registry.add("audio", StageKind::Evaluate, {eval_inputs, run_evaluate});
}

}  // namespace tessera::audio
