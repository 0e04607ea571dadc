#pragma once
// `tessera prep CONFIG`: a behaviour config's data (csv or criteo) as a prepared dataset
// (host/data/prepared_writer.h, docs/prepared-format.md): the preprocessor fitted on the train
// rows as `tessera train` fits it, every split's rows in column shards. A rerun with unchanged
// sources is "up to date"; a stopped one resumes; `--append FILE` adds a day of logs to the train
// split with the fitted vocabularies.
#include <cstdint>
#include <string>

#include "host/core/command_result.h"
#include "host/data/prepared_writer.h"

namespace tessera::behaviour {

struct PrepCommandOptions {
  std::string out;     // empty: default_prepared_dir(config)
  std::string append;  // a file to add to the train split of an existing dataset
  int64_t shard_rows = int64_t{1} << 18;
  int threads = 4;
  bool quiet = false;
};

// The prepare inputs a behaviour config's data section gives (registry files resolved).
PrepareInputs prepare_inputs_of(const std::string& config_path);
// The default output directory for a config: the directory its data.prepared names, where
// training will read it (so `tessera prep C && tessera train C` works for a config that names
// both its text files and `prepared`), else "<the config's directory>/prepared".
std::string default_prepared_dir(const std::string& config_path);

CommandResult prep(const std::string& config_path, const PrepCommandOptions& options);

}  // namespace tessera::behaviour
