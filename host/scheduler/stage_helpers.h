#pragma once
// What every task's stage kinds share (pipelines/<task>/stages.cpp), so that each task writes
// only what is its own: reading a stage's config and the prep stage's data.json with the
// validating JSON reader, resolving paths against the pipeline file, finding an input stage by
// kind, locating a registered dataset's file without downloading, a fresh sub-directory for task
// code that insists on creating its own run directory, the train stage most tasks run, and the
// results of prep, train, evaluate and file-writing stages.
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "host/config/json_reader.h"
#include "host/core/command_result.h"
#include "host/scheduler/scheduler.h"
#include "host/train/run_options.h"

namespace tessera::scheduler {

// The stage's "config" parsed; errors name the pipeline file and the stage.
std::unique_ptr<json::Document> parse_stage_config(const PipelineSpec& p, const StageSpec& s);

// The stage's config read field by field: `read` takes the fields it knows, then an unknown key
// or any field's error is one Config error naming the pipeline file and the stage.
using ReadFields = std::function<void(json::ObjectReader&)>;
void read_stage_config(const PipelineSpec& p, const StageSpec& s, const ReadFields& read);

// A stage config that takes no fields ({}).
void parse_empty_stage_config(const PipelineSpec& p, const StageSpec& s);

// StageRunner::input_files for a stage that reads no files beyond its input stages: it only
// validates the stage config with `parse(p, s)`, so a bad config fails before anything runs.
template <class Parse>
std::function<std::vector<std::string>(const PipelineSpec&, const StageSpec&)> validate_only(
    Parse parse) {
  return [parse](const PipelineSpec& p, const StageSpec& s) {
    parse(p, s);
    return std::vector<std::string>{};
  };
}

// A stage that takes no config ({}, checked when it is planned and when it runs): `run` does
// the work.
StageRunner config_free_stage(std::function<StageResult(const StageContext&)> run);

// Whether anything is at path `p` (a file, a folder, a link to one).
bool path_exists(const std::string& p);

// `path` against the pipeline file's directory, made absolute and free of symlinks when it
// exists (stage keys then do not depend on the working directory).
std::string resolve_spec_path(const PipelineSpec& p, const std::string& path);

// The outputs of the first input stage of `kind`; Config error naming the stage otherwise.
const StageOutputs& input_of_kind(const StageContext& ctx, StageKind kind);

// The "model" output of the stage's train input stage.
const std::string& trained_model(const StageContext& ctx);

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

// The train stage most tasks share: its config as parse_train_stage_config reads it with
// `budget`, then `train` (the task's) on the config the prep stage names (`prep_config`) with run
// options: the run's device, else the stage's; the stage's epochs and time budget; quiet; and
// `resume` = the run directory: the stage key pins the config, so an interrupted attempt's
// checkpoint belongs to this one and training resumes from it (or starts in that directory when
// there is none yet). Outputs model, metrics, result, config and checkpoint, in the run directory.
enum class RunDir : uint8_t {
  Sub,      // WORK/run
  WorkDir,  // WORK itself
};
using TaskTrain =
    std::function<CommandResult(const std::string& config_path, const train::RunOptions& options)>;
using PrepConfigOf = std::function<std::string(const StageContext& ctx)>;
StageRunner train_stage(TimeBudget budget, PrepConfigOf prep_config, TaskTrain train,
                        RunDir run_dir = RunDir::Sub);

// A prep stage's result: `json` (one object) written to WORK/data.json, its output "data", which
// the later stages read back, and the summary line.
StageResult prep_result(const StageContext& ctx, std::string json, std::string summary);

// The prep stage's data.json read field by field as read_stage_config reads a stage config.
void read_prep_data(const StageContext& ctx, const ReadFields& read);

// "config" of the prep stage's data.json, which may hold `other_keys` beside it.
std::string read_prep_config(const StageContext& ctx,
                             std::initializer_list<const char*> other_keys);

// A stage whose task writes one file: `write` is given WORK/<file> to write; output `name` is that
// file, and the result and summary are the task's.
using WriteFile = std::function<CommandResult(const std::string& path)>;
StageResult file_output_stage(const StageContext& ctx, const std::string& name,
                              const std::string& file, const WriteFile& write);

// An evaluate stage's result: the task's JSON written to WORK/evaluation.json, output
// "evaluation".
StageResult evaluation_result(const StageContext& ctx, const CommandResult& er);

// What a prep stage's data.json {"config", "test", COUNT_KEY} says (audio and video write it;
// COUNT_KEY is the number of items they found and is not returned).
struct PrepConfigAndTest {
  std::string config, test;
};
PrepConfigAndTest read_prep_config_and_test(const StageContext& ctx, const char* count_key);

// A JSON string literal.
std::string json_quote(const std::string& s);

// Options of a task's evaluate or predict command (any type with `device` and `quiet`) for a
// stage: the run's device ("" = the task's default) and quiet.
template <class Options>
Options stage_run_options(const StageContext& ctx) {
  Options o;
  o.device = ctx.device;
  o.quiet = ctx.quiet;
  return o;
}

}  // namespace tessera::scheduler
