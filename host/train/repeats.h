#pragma once
// Repeats of one training run with different seeds (`tessera train CONFIG --seeds 1,2,3`): one
// seed's figure is not a result (SST-2, same config and seed on two machines: 85.4% and 84.5%), so
// a user asks for several and reads each metric's mean and spread.
//
//   std::vector<int64_t> seeds = parse_seed_list("1,2,3");
//   ... train once per seed (RunOptions::seed), each in its own run directory ...
//   CommandResult r = summarize_repeats(seeds, results);
//
// The summary's JSON is {"command": "train", "seeds": [...], "runs": [each run's result],
// "mean": {...}, "std": {...}, "min": {...}, "max": {...}}: every number the runs' results hold
// at the same place (objects flattened into dotted names, "test.auc"; arrays and non-numbers left
// out), std the sample standard deviation (n - 1; 0 for one run).
#include <cstdint>
#include <string>
#include <vector>

#include "host/core/command_result.h"

namespace tessera::train {

// "1,2,3" -> {1, 2, 3}: non-negative integers, distinct, at most 100 (Usage error naming the
// option otherwise).
std::vector<int64_t> parse_seed_list(const std::string& text);

// `runs[i]` is the result of the run with `seeds[i]` (its JSON one object). Data error when a
// result is not a JSON object.
CommandResult summarize_repeats(const std::vector<int64_t>& seeds,
                                const std::vector<CommandResult>& runs);

}  // namespace tessera::train
