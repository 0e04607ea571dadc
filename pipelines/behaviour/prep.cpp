#include "pipelines/behaviour/prep.h"

#include "host/config/json_writer.h"
#include "host/core/error.h"
#include "host/data/registry.h"
#include "pipelines/behaviour/behaviour_config.h"

namespace tessera::behaviour {

namespace {

// A relative path of a registered dataset is found through the registry, as training finds it.
FileSpec resolved(const std::string& dataset, FileSpec f) {
  if (!dataset.empty() && !f.path.empty() && f.path[0] != '/')
    f.path = resolve_dataset_file(dataset, f.path);
  return f;
}

}  // namespace

PrepareInputs prepare_inputs_of(const std::string& config_path) {
  const BehaviourConfig cfg = load_behaviour_config(config_path);
  const BehaviourDataConfig& d = cfg.data;
  if (!d.derive.empty())
    TESSERA_THROW(Config, config_path << ": data.derive \"" << d.derive
                                      << "\" is not supported by prep yet: prepare the derived "
                                         "files' config (train/test naming them) instead");
  if (d.schema.format == TableFormat::LibSvm)
    TESSERA_THROW(Config, config_path << ": data.format libsvm: prep prepares csv and criteo "
                                         "data (libSVM rows have no fitted preprocessor)");
  PrepareInputs in;
  in.schema = d.schema;
  in.options.categorical = d.categorical;
  in.options.numeric = d.numeric;
  in.options.fit_memory_bytes = d.fit_memory_mb << 20;
  in.train = resolved(d.dataset, d.train);
  if (d.validation) in.validation = resolved(d.dataset, *d.validation);
  in.validation_fraction = d.validation ? 0.0 : d.validation_fraction;
  in.seed = static_cast<uint64_t>(cfg.seed);
  if (d.test) in.test = resolved(d.dataset, *d.test);
  return in;
}

std::string default_prepared_dir(const std::string& config_path) {
  const BehaviourConfig cfg = load_behaviour_config(config_path);
  if (!cfg.data.prepared.empty()) return cfg.data.prepared;  // where training will read it
  const size_t slash = config_path.rfind('/');
  return (slash == std::string::npos ? std::string(".") : config_path.substr(0, slash)) +
         "/prepared";
}

CommandResult prep(const std::string& config_path, const PrepCommandOptions& o) {
  const std::string dir = o.out.empty() ? default_prepared_dir(config_path) : o.out;
  PrepareOptions po;
  po.shard_rows = o.shard_rows;
  po.threads = o.threads;
  po.quiet = o.quiet;
  PrepareResult r;
  if (o.append.empty()) {
    r = prepare_dataset(prepare_inputs_of(config_path), dir, po);
  } else {
    load_behaviour_config(config_path);  // the config must still be a valid behaviour config
    r = append_source(dir, FileSpec{o.append, 0}, po);
  }
  json::JsonWriter w;
  w.begin_object().field("command", "prep").field("dir", dir);
  w.field("status", std::string(prepare_status_name(r.status)));
  w.field("shards_written", r.shards_written).field("records_read", r.records_read);
  w.field("bad_rows", r.bad_rows).field("seconds", r.seconds);
  w.key("rows").begin_object();
  for (const auto& [split, n] : r.rows) w.field(split, n);
  w.end_object();
  if (r.fit.budget_bytes > 0)  // the call fitted: its counting memory (prepared-format.md)
    w.key("fit")
        .begin_object()
        .field("sketched", r.fit.sketched)
        .field("peak_counting_bytes", r.fit.peak_bytes)
        .field("candidates", r.fit.candidates)
        .end_object();
  w.end_object();
  return {r.summary(dir), w.compact()};
}

}  // namespace tessera::behaviour
