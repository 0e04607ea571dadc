#pragma once
// What the synthetic behaviour datasets (synthetic.h, synthetic_criteo.h) write alike: the config
// that trains on their DIR/train.EXT and DIR/test.EXT, written as DIR/config.json.
#include <string>

#include "host/core/atomic_file.h"

namespace tessera::behaviour {

// The start of a synthetic dataset's behaviour config named `name` (seed 42), through its data
// section's "train" and "test" files, DIR/train.EXT and DIR/test.EXT; the caller goes on with the
// rest of the data section. DIR goes in as it is (the callers' directories need no escaping).
inline std::string synthetic_config_head(const std::string& name, const std::string& dir,
                                         const std::string& ext) {
  return "{\n  \"task\": \"behaviour\",\n  \"name\": \"" + name +
         "\",\n  \"seed\": 42,\n  \"data\": {\n    \"train\": \"" + dir + "/train." + ext +
         "\",\n    \"test\": \"" + dir + "/test." + ext + "\",\n";
}

// Writes `text` to DIR/config.json (atomically); returns that path.
inline std::string write_synthetic_config(const std::string& dir, const std::string& text) {
  const std::string path = dir + "/config.json";
  write_file_atomic(path, text);
  return path;
}

}  // namespace tessera::behaviour
