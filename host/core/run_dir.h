#pragma once
// A training run's directory: <runs_dir>/<name>-<UTC timestamp>[-N], created with mkdir, which
// fails when the directory exists, so two runs started at once never share one. Holds the
// resolved config, metrics.jsonl (one JSON object per line, appended and flushed per epoch), the
// model artefact and result.json.
#include <string>

namespace tessera {

class RunDir {
 public:
  static RunDir create(const std::string& runs_dir, const std::string& name);
  // Exactly `path`, which must not exist yet.
  static RunDir create_exact(const std::string& path);
  const std::string& path() const { return path_; }

 private:
  explicit RunDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace tessera
