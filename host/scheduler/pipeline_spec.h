#pragma once
// A pipeline spec: a JSON document naming its stages, each of a kind (prep, train, evaluate,
// export, batch-score, recommend), the stages whose outputs it reads, the files it reads, and
// its own config object (opaque here; the stage kind interprets it):
//   {"name": "behaviour", "task": "behaviour", "runs_dir": "runs",
//    "stages": [
//      {"name": "prep",  "kind": "prep",  "config": {...}},
//      {"name": "train", "kind": "train", "inputs": ["prep"], "config": {...}},
//      {"name": "score", "kind": "batch-score", "inputs": ["train", "prep"],
//       "files": ["extra.csv"], "config": {...}}]}
// Parsing checks the whole document (unknown fields, duplicate names, unknown inputs, cycles) and
// reports every problem with the file and the field path, before anything runs.
#include <string>
#include <vector>

namespace tessera::scheduler {

enum class StageKind : uint8_t { Prep, Train, Evaluate, Export, BatchScore, Recommend };
const char* stage_kind_name(StageKind kind);

struct StageSpec {
  std::string name;
  StageKind kind = StageKind::Prep;
  std::vector<std::string> inputs;  // names of upstream stages
  std::vector<std::string> files;   // extra input files (absolute, resolved against the spec)
  std::string config_json = "{}";   // canonical (compact, keys sorted) JSON of "config"
};

struct PipelineSpec {
  std::string path;  // the file it came from ("" when parsed from a string)
  std::string dir;   // its directory: relative paths in stage configs resolve against it
  std::string name;
  std::string task;
  std::string runs_dir = "runs";  // resolved against the working directory, as for train
  std::vector<StageSpec> stages;  // as declared
  const StageSpec& stage(const std::string& name) const;  // Config error when absent
};

PipelineSpec load_pipeline_spec(const std::string& path);
// `origin` names the source in errors; `dir` resolves relative file paths.
PipelineSpec parse_pipeline_spec(const std::string& json, const std::string& origin,
                                 const std::string& dir);

// Indices into spec.stages in an order where every stage comes after its inputs; among stages
// that are ready together the declared order is kept, so the plan reads like the file.
std::vector<size_t> execution_order(const PipelineSpec& spec);

// Compact JSON with object keys sorted at every level: equal configs hash equally however they
// were written.
std::string canonical_json(const std::string& json, const std::string& origin);

}  // namespace tessera::scheduler
