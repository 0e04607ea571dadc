#pragma once
// Small pieces every task's stage kinds need (pipelines/<task>/stages.cpp): reading a stage's
// config object with the validating JSON reader, resolving paths against the pipeline file,
// finding an input stage by kind, locating a registered dataset's file without downloading, and
// a fresh sub-directory for task code that insists on creating its own run directory.
#include <cstdint>
#include <memory>
#include <string>

#include "host/config/json_reader.h"
#include "host/scheduler/scheduler.h"

namespace tessera::scheduler {

// The stage's "config" parsed; errors name the pipeline file and the stage.
std::unique_ptr<json::Document> parse_stage_config(const PipelineSpec& p, const StageSpec& s);

// `path` against the pipeline file's directory, made absolute and free of symlinks when it
// exists (stage keys then do not depend on the working directory).
std::string resolve_spec_path(const PipelineSpec& p, const std::string& path);

// The outputs of the first input stage of `kind`; Config error naming the stage otherwise.
const StageOutputs& input_of_kind(const StageContext& ctx, StageKind kind);

// `file` of registered dataset `dataset` on this machine (mirror or cache), "" when absent;
// absolute paths and an empty dataset are checked as given. Never downloads.
std::string find_local_dataset_file(const std::string& dataset, const std::string& file);

// <work_dir>/<name>, removed first when an interrupted attempt left it behind: for task code
// whose train() creates its run directory itself and refuses an existing one.
std::string fresh_subdir(const StageContext& ctx, const std::string& name);

// A prep stage config that names one task config: {"config": PATH} (resolved against the
// pipeline file).
std::string parse_prep_config_path(const PipelineSpec& p, const StageSpec& s);

// The train-stage config most tasks share: {"epochs" >= 1, "device"} and, where the task has a
// wall-clock budget (TimeBudget::Allowed), "time_budget_s" >= 0. -1 / "" leave the task
// config's own value.
enum class TimeBudget : uint8_t { NotAllowed, Allowed };
struct TrainStageConfig {
  int64_t epochs = -1;
  double time_budget_s = -1;
  std::string device;
};
TrainStageConfig parse_train_stage_config(const PipelineSpec& p, const StageSpec& s,
                                          TimeBudget budget);

// A train stage's result when the task trained into WORK/run/: its model, metrics, result and
// config files, plus checkpoint.tsc for tasks that checkpoint every epoch.
enum class RunCheckpoint : uint8_t { No, Yes };
StageResult train_run_result(std::string result_json, std::string summary, RunCheckpoint ck);

// What a prep stage's data.json {"config", "test", COUNT_KEY} says (audio and video write it;
// COUNT_KEY is the number of items they found and is not returned).
struct PrepConfigAndTest {
  std::string config, test;
};
PrepConfigAndTest read_prep_config_and_test(const StageContext& ctx, const char* count_key);

// A JSON string literal.
std::string json_quote(const std::string& s);

}  // namespace tessera::scheduler
