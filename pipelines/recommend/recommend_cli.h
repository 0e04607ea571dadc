#pragma once
// The recommendation commands as the CLI calls them (train with a recommend config, recommend,
// export), so host/cli/main.cpp only forwards its parsed options.
#include <cstdint>
#include <string>
#include <vector>

#include "pipelines/recommend/recommend.h"

namespace tessera::recommend {

bool is_recommend_config(const std::string& path);

struct CliOptions {
  std::string device, runs_dir, run_dir, resume, format;
  int64_t epochs = -1;
  int64_t k = 10;
  bool quiet = false;
};

Result run_cli(const std::string& command, const std::vector<std::string>& positionals,
               const CliOptions& options);

}  // namespace tessera::recommend
