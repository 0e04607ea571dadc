#pragma once
// What the tasks' stage registrations (pipelines/*/stages.cpp) write alike: every task's prep
// stage kind, which is its own, and its train stage kind, scheduler::train_stage on the task
// config the prep stage names.
#include <string>
#include <utility>

#include "host/scheduler/scheduler.h"
#include "host/scheduler/stage_helpers.h"

namespace tessera {

// Registers task `task`'s stage kinds prep (`prep`) and train: scheduler::train_stage(budget,
// prep_config, train, run_dir).
inline void add_prep_and_train(scheduler::StageRegistry& registry, const std::string& task,
                               scheduler::StageRunner prep, scheduler::TimeBudget budget,
                               scheduler::PrepConfigOf prep_config, scheduler::TaskTrain train,
                               scheduler::RunDir run_dir = scheduler::RunDir::Sub) {
  registry.add(task, scheduler::StageKind::Prep, std::move(prep));
  registry.add(task, scheduler::StageKind::Train,
               scheduler::train_stage(budget, std::move(prep_config), std::move(train), run_dir));
}

// The task config a prep stage names, for a task whose `read_prep(ctx)` reads the prep stage's
// data.json into a struct with its "config".
template <class ReadPrep>
scheduler::PrepConfigOf config_of_prep(ReadPrep read_prep) {
  return [read_prep](const scheduler::StageContext& ctx) { return read_prep(ctx).config; };
}

}  // namespace tessera
