#pragma once
// The host scheduler: runs a pipeline's stages in dependency order, caching each stage's outputs
// under a key that hashes everything the outputs depend on, and writing a run directory.
//
// Stage key = SHA-256 of: the stage kind's code version, the stage's name, kind and canonical
// config, the keys of its input stages (so a change upstream reruns everything downstream), and
// for every file it reads (the kind's input_files() plus the spec's "files"): the path, size,
// modification time, and the content's SHA-256 for files up to 1 MiB (configs; larger data files
// are identified by size and mtime, so a rerun does not rehash gigabytes).
//
// Cache layout, under <cache_dir>/<stage>-<key[0:16]>/:
//   .lock          flock'ed while a process works in the directory: a second run of the same
//                  stage waits, then finds it complete, so two runs never write into one place
//   manifest.json  written atomically LAST: {"stage", "kind", "key", "outputs": {name: file},
//                  "result": {...}}. Present = complete (a cache hit); absent = never finished,
//                  and the stage runs again in the same directory (train stages resume from
//                  their checkpoint there).
// A stage that throws stops the pipeline with an error naming it; earlier stages' outputs stay
// (stages already running beside it finish and are cached; nothing new starts).
//
// Independent stages run at the same time: a stage starts as soon as every input stage has
// finished, on a bounded pool of RunOptions::jobs host threads (scoring several files,
// evaluating several checkpoints). A stage never starts before its inputs have finished.
//
// Run directory (<runs_dir>/<pipeline>-<UTC stamp>[-N], created with mkdir): pipeline.json (the
// spec as run), environment.json, stages.jsonl (one line per stage: key, cached or run, seconds,
// directory), metrics.jsonl and config.json (the train stage's), result.json (every stage's
// result), and <stage>/ with each stage's output files (hard links into the cache: the model
// artefact, checkpoint, scores, ...).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "host/core/content_hash.h"
#include "host/scheduler/pipeline_spec.h"

namespace tessera::scheduler {

// What a finished stage left: files by output name (absolute paths) and a result JSON object.
struct StageOutputs {
  std::string dir;
  std::map<std::string, std::string> files;
  std::string result_json = "{}";
  const std::string& file(const std::string& name) const;  // Internal error when absent
};

struct StageContext {
  const PipelineSpec* pipeline = nullptr;
  const StageSpec* stage = nullptr;
  std::string work_dir;                        // the stage's cache directory (exists)
  std::map<std::string, StageOutputs> inputs;  // by upstream stage name
  std::string device;                          // the run's --device ("" = the stage's own)
  bool quiet = false;
};

struct StageResult {
  std::map<std::string, std::string> files;  // output name -> path relative to work_dir
  std::string result_json = "{}";
  std::string summary;  // one human line
};

// How to run one stage kind of one task.
// A stage's key covers the code automatically (RunOptions::code_id, by default the build's source
// id), so there is no version string to bump.
struct StageRunner {
  // Files the stage reads beyond its input stages (hashed into the key); may be empty.
  std::function<std::vector<std::string>(const PipelineSpec&, const StageSpec&)> input_files;
  std::function<StageResult(const StageContext&)> run;
};

class StageRegistry {
 public:
  void add(const std::string& task, StageKind kind, StageRunner runner);
  // Config error naming the stage and the kinds the task has.
  const StageRunner& find(const std::string& task, const StageSpec& stage) const;

 private:
  std::map<std::pair<std::string, StageKind>, StageRunner> runners_;
};

enum class StageState : uint8_t { Cached, Partial, Pending };  // Partial: started, not finished
const char* stage_state_name(StageState s);

struct PlannedStage {
  std::string name;
  StageKind kind;
  std::string key;  // 64 hex digits
  std::string dir;
  StageState state;
  // Content hashes of its input files read while planning, kept by run_pipeline (planning itself
  // writes nothing).
  std::vector<FileFingerprint> fingerprints_to_remember;
};

struct RunOptions {
  std::string runs_dir;   // "" = the spec's runs_dir
  std::string cache_dir;  // "" = <runs_dir>/cache
  std::string device;
  bool quiet = false;
  int jobs = 0;  // stages run at once; 0 = the machine's hardware threads (at least 1)
  // The code every stage key includes: "" = build_source_id(), the SHA-256 of the sources this
  // binary was built from (host/core/build_id.h). Tests set it to see keys follow the code.
  std::string code_id;
};

// The stages in execution order with their keys and what is cached; creates nothing.
std::vector<PlannedStage> plan_pipeline(const PipelineSpec& spec, const StageRegistry& registry,
                                        const RunOptions& options);

struct StageRecord {
  PlannedStage plan;
  bool ran = false;  // false: taken from the cache
  double seconds = 0;
  double start_seconds = 0, end_seconds = 0;  // since the run started (steady clock)
  StageOutputs outputs;
  std::string summary;
};

struct PipelineRun {
  std::string run_dir;
  std::vector<StageRecord> stages;
  std::string result_json;  // also in <run_dir>/result.json
};

PipelineRun run_pipeline(const PipelineSpec& spec, const StageRegistry& registry,
                         const RunOptions& options);

// A human table of a plan (for --dry-run).
std::string describe_plan(const PipelineSpec& spec, const std::vector<PlannedStage>& plan);

// The key's ingredients for one file (exposed for tests): its path, size and a hash of its whole
// content, whatever its size (host/core/content_hash.h), memoised under `memo_dir`.
FileFingerprint file_fingerprint(const std::string& path, const std::string& memo_dir);

}  // namespace tessera::scheduler
