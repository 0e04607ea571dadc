#pragma once
// What a command (a task's train, evaluate, predict, ...; a pipeline run) returns: the lines a
// person reads on stdout, and one compact JSON object, the last stdout line under --json.
#include <string>

namespace tessera {

struct CommandResult {
  std::string summary;  // human-readable lines
  std::string json;     // one JSON object, compact
};

}  // namespace tessera
