#pragma once
// What the task registrations (pipelines/*/task.cpp) write alike: a task whose train takes the
// common run options, and model verbs of the shapes `VERB MODEL DATA` and
// `VERB MODEL INPUT OUTPUT` whose options a task reads from the command line.
#include <functional>
#include <string>
#include <utility>

#include "host/core/error.h"
#include "pipelines/task.h"

namespace tessera {

// A task `name` (`about`: its line in `tessera --help`) whose `tessera train CONFIG` is
// train(CONFIG, run_options_of(args)), with its pipeline stage kinds and its config's example and
// schema; the caller adds its model verbs.
template <typename Train>
Task task_with_train(std::string name, std::string about, Train train,
                     std::function<void(scheduler::StageRegistry&)> stages,
                     std::function<std::string()> config_example,
                     std::function<std::string()> config_schema) {
  Task t;
  t.name = std::move(name);
  t.about = std::move(about);
  t.train = [train](const CliArgs& a) { return train(a.positionals.at(0), run_options_of(a)); };
  t.stages = std::move(stages);
  t.config_example = std::move(config_example);
  t.config_schema = std::move(config_schema);
  return t;
}

// `VERB MODEL DATA`: f(MODEL, DATA, options(args)). With a `usage`, another count of arguments
// is a Usage error saying it (for verbs the CLI lets take more).
template <typename F, typename Options>
Verb model_data_verb(F f, Options options, std::string usage = "") {
  return [f, options, usage](const CliArgs& a) {
    if (!usage.empty() && a.positionals.size() != 2) TESSERA_THROW(Usage, usage);
    return f(a.positionals.at(0), a.positionals.at(1), options(a));
  };
}

// `VERB MODEL INPUT OUTPUT`: f(MODEL, INPUT, OUTPUT, options(args)); another count of arguments
// is a Usage error saying `usage`.
template <typename F, typename Options>
Verb model_input_output_verb(F f, Options options, std::string usage) {
  return [f, options, usage](const CliArgs& a) {
    if (a.positionals.size() != 3) TESSERA_THROW(Usage, usage);
    return f(a.positionals[0], a.positionals[1], a.positionals[2], options(a));
  };
}

}  // namespace tessera
