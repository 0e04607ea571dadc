#include "pipelines/recommend/recommend_cli.h"

#include "host/core/error.h"
#include "pipelines/recommend/export.h"

namespace tessera::recommend {

Result run_cli(const std::string& command, const std::vector<std::string>& pos,
               const CliOptions& o) {
  if (command == "train") {
    TrainOptions t;
    t.device = o.device;
    t.runs_dir = o.runs_dir;
    t.run_dir = o.run_dir;
    t.resume = o.resume;
    t.epochs = o.epochs;
    t.quiet = o.quiet;
    if (!t.resume.empty() && !t.run_dir.empty())
      TESSERA_THROW(Usage, "--resume continues its own run directory; drop --run-dir");
    return train(pos.at(0), t);
  }
  if (command == "recommend") {
    RecommendOptions r;
    r.k = o.k;
    r.quiet = o.quiet;
    return recommend(pos.at(0), pos.at(1), r);
  }
  if (command == "export") return export_model(pos.at(0), parse_export_format(o.format), pos.at(1));
  TESSERA_THROW(Internal, "run_cli: unknown command '" << command << "'");
}

}  // namespace tessera::recommend
