#include "pipelines/video/stages.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/moving_clips.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/image/image.h"
#include "pipelines/task_stages.h"
#include "pipelines/video/video.h"

namespace tessera::video {

namespace {

// The scheduler's stage API, which every function here is written against.
using namespace scheduler;

// A stage's optional folder of clips ("data" for evaluate, "input" for batch-score), resolved
// against the pipeline file; "" = the prep stage's test folder.
std::string parse_folder(const PipelineSpec& p, const StageSpec& s, const char* key) {
  std::string folder;
  scheduler::read_stage_config(
      p, s, [&](json::ObjectReader& r) { folder = r.string(key, "", json::Text::Any); });
  return folder.empty() ? folder : scheduler::resolve_spec_path(p, folder);
}

// Every regular file under `dir` (clips are folders of frames or .tclip files), sorted.
std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_directory(dir, ec)) return files;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_regular_file()) files.push_back(it->path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> idx_files(const VideoGenerateConfig& g) {
  std::vector<std::string> f;
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    f.push_back(g.source_dir + "/" + name);
  return f;
}

// The files the config reads that are on this machine; `missing` counts those that are not.
std::vector<std::string> local_data(const VideoConfig& c, int64_t& missing) {
  missing = 0;
  std::vector<std::string> files;
  if (c.data.generated) {
    for (const std::string& f : idx_files(c.data.generate)) {
      if (std::filesystem::is_regular_file(f))
        files.push_back(f);
      else
        ++missing;
    }
    return files;
  }
  for (const std::string& dir : {c.data.dir, c.data.test_dir}) {
    if (dir.empty()) continue;
    const std::vector<std::string> f = files_under(dir);
    if (f.empty()) ++missing;
    files.insert(files.end(), f.begin(), f.end());
  }
  return files;
}

std::vector<std::string> prep_inputs(const PipelineSpec& p, const StageSpec& s) {
  const std::string config = scheduler::parse_prep_config_path(p, s);
  std::vector<std::string> files = {config};
  int64_t missing = 0;
  const std::vector<std::string> data = local_data(load_video_config(config), missing);
  files.insert(files.end(), data.begin(), data.end());
  return files;
}

StageResult run_prep(const StageContext& ctx) {
  const std::string config = scheduler::parse_prep_config_path(*ctx.pipeline, *ctx.stage);
  const VideoConfig cfg = load_video_config(config);
  int64_t missing = 0;
  const std::vector<std::string> files = local_data(cfg, missing);
  const std::string source = cfg.data.generated
                                 ? "generated from '" + cfg.data.generate.source_dir + "'"
                                 : "folder '" + cfg.data.dir + "'";
  if (missing > 0 || files.empty())
    TESSERA_THROW(Data, "the data of " << config << " is not on this machine (" << source << ": "
                                       << files.size() << " files found, " << missing
                                       << " missing)");
  std::string test = cfg.data.test_dir;
  int64_t clips = 0;
  if (cfg.data.generated && cfg.data.generate.test_clips > 0) {
    const ImageSet set = generated_test_clips(cfg);
    const std::vector<std::string> names = cfg.data.class_names.empty()
                                               ? generated_class_names(cfg.data.generate)
                                               : cfg.data.class_names;
    // An interrupted attempt's clips are replaced whole.
    test = scheduler::fresh_subdir(ctx, "test");
    for (const std::string& n : names) make_directories(test + "/" + class_folder_name(n));
    for (int64_t i = 0; i < set.n; ++i) {
      char file[32];
      std::snprintf(file, sizeof file, "/%06lld.tclip", static_cast<long long>(i));
      const std::string& cls = names[static_cast<size_t>(set.labels[static_cast<size_t>(i)])];
      write_clip_tensor(test + "/" + class_folder_name(cls) + file, clip_of(set, i), ClipDType::U8);
    }
    clips = set.n;
  } else if (!test.empty()) {
    std::vector<std::string> names = cfg.data.class_names;
    clips = static_cast<int64_t>(list_clip_dir(test, names).size());
  }
  return scheduler::prep_result(ctx,
                                "{\"config\":" + json_quote(config) + ",\"clips\":" +
                                    std::to_string(clips) + ",\"test\":" + json_quote(test) + "}",
                                "data: " + source + ", " + std::to_string(clips) + " test clips");
}

scheduler::PrepConfigAndTest read_prep(const StageContext& ctx) {
  return scheduler::read_prep_config_and_test(ctx, "clips");
}

// The stage's folder, else the prep stage's test folder; a Config error naming the stage and
// `key` when there is neither.
std::string folder_or_test(const StageContext& ctx, const char* key) {
  std::string folder = parse_folder(*ctx.pipeline, *ctx.stage, key);
  if (folder.empty()) folder = read_prep(ctx).test;
  if (folder.empty())
    TESSERA_THROW(Config, "stage '" << ctx.stage->name
                                    << "': the config has no test folder (a \"dir\" without "
                                       "\"test_dir\"); name a folder of clips with \""
                                    << key << "\"");
  return folder;
}

StageResult run_evaluate(const StageContext& ctx) {
  return scheduler::evaluation_result(
      ctx, video::evaluate(scheduler::trained_model(ctx), folder_or_test(ctx, "data"),
                           scheduler::stage_run_options<Options>(ctx)));
}

StageResult run_score(const StageContext& ctx) {
  return scheduler::file_output_stage(
      ctx, "predictions", "predictions.tsv", [&](const std::string& out) {
        return video::batch_predict(scheduler::trained_model(ctx), folder_or_test(ctx, "input"),
                                    out, scheduler::stage_run_options<Options>(ctx));
      });
}

// A stage naming its own folder reads every file in it: their fingerprints go into the key.
auto folder_inputs(const char* key) {
  return [key](const PipelineSpec& p, const StageSpec& s) {
    return files_under(parse_folder(p, s, key));
  };
}

}  // namespace

void register_stages(scheduler::StageRegistry& registry) {
  add_prep_and_train(registry, "video", {prep_inputs, run_prep}, TimeBudget::NotAllowed,
                     config_of_prep(read_prep), video::train);
  registry.add("video", StageKind::Evaluate, {folder_inputs("data"), run_evaluate});
  registry.add("video", StageKind::BatchScore, {folder_inputs("input"), run_score});
}

}  // namespace tessera::video
