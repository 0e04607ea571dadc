// Fuzz target: pipeline specs (host/scheduler/pipeline_spec.h), from their JSON text: the
// validating JSON reader, stage names, kinds, inputs, files, configs, duplicate and unknown
// names, cycles; then the execution order and the canonical JSON the stage cache hashes.
//
// Input: the spec's bytes, as `tessera run` reads them.
// Invariants checked: the execution order lists every stage once, each after its inputs; a
// stage's config is canonical (canonicalising it again changes nothing).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/scheduler/pipeline_spec.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using namespace tessera;
using namespace tessera::scheduler;

void run(const std::string& text) {
  const PipelineSpec spec = parse_pipeline_spec(text, "fuzz/pipeline.json", "fuzz");
  fuzz::check(!spec.stages.empty(), "a spec without stages parsed");
  const std::vector<size_t> order = execution_order(spec);
  fuzz::check(order.size() == spec.stages.size(), "the order lists every stage");
  std::map<std::string, size_t> position;
  for (size_t k = 0; k < order.size(); ++k) {
    fuzz::check(order[k] < spec.stages.size(), "an order index out of range");
    fuzz::check(position.emplace(spec.stages[order[k]].name, k).second, "a stage ordered twice");
  }
  for (const StageSpec& s : spec.stages) {
    for (const std::string& in : s.inputs) {
      fuzz::check(position.at(in) < position.at(s.name), "a stage ordered before its input");
    }
    fuzz::check(canonical_json(s.config_json, "config") == s.config_json,
                "a stage config is not canonical");
    spec.stage(s.name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_input_errors([&] { run(text); });
  fuzz::expect_input_errors([&] { canonical_json(text, "fuzz/any.json"); });
  return 0;
}
