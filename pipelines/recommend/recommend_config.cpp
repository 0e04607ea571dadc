#include "pipelines/recommend/recommend_config.h"

#include "host/config/json_writer.h"
#include "host/config/sections.h"
#include "host/core/atomic_file.h"

namespace tessera::recommend {

const json::Choices<ModelKind>& model_choices() {
  static const json::Choices<ModelKind> c = {{"mf", ModelKind::Mf},
                                             {"two_tower", ModelKind::TwoTower}};
  return c;
}
const json::Choices<Loss>& loss_choices() {
  static const json::Choices<Loss> c = {{"bce", Loss::Bce}, {"bpr", Loss::Bpr}};
  return c;
}
const json::Choices<ShardPlacement>& placement_choices() {
  static const json::Choices<ShardPlacement> c = {{"auto", ShardPlacement::Auto},
                                                  {"table", ShardPlacement::Table},
                                                  {"row", ShardPlacement::Row},
                                                  {"column", ShardPlacement::Column}};
  return c;
}
const json::Choices<emb::SparseOptimizer>& sparse_optimizer_choices() {
  using emb::SparseOptimizer;
  static const json::Choices<SparseOptimizer> c = {
      {"sgd", SparseOptimizer::Sgd},
      {"adagrad", SparseOptimizer::Adagrad},
      {"rowwise_adagrad", SparseOptimizer::RowwiseAdagrad},
      {"lazy_adam", SparseOptimizer::LazyAdam}};
  return c;
}
const json::Choices<data::RatingsOnError>& on_error_choices() {
  static const json::Choices<data::RatingsOnError> c = {{"error", data::RatingsOnError::Error},
                                                        {"skip", data::RatingsOnError::Skip}};
  return c;
}

bool is_recommend_config(const std::string& path) {
  return json::file_has_task(path, "recommend");
}

namespace {

void read_data(json::ObjectReader& root, RecommendConfig& c) {
  const bool mf = c.model == ModelKind::Mf;
  json::ObjectReader d = root.object("data");
  c.data.dataset = d.string("dataset", c.data.dataset, json::Text::NonEmpty);
  c.data.file = d.string("file", c.data.file, json::Text::NonEmpty);
  c.data.path = d.string("path", c.data.path);
  c.data.max_rows = d.integer<int64_t>("max_rows", 0, json::IntBounds::at_least(0));
  c.data.on_error = d.choice("on_error", c.data.on_error, on_error_choices());
  c.data.test_fraction =
      d.number("test_fraction", c.data.test_fraction, json::Bounds::open_closed(0, 0.5));
  c.data.test = d.string("test", c.data.test, json::Text::NonEmpty);
  for (const char* k : {"test_fraction", "test"})
    if (!mf && d.has(k))
      d.error(k,
              "only applies to \"model\": \"mf\" (two_tower holds out each "
              "user's latest interaction)");
  if (mf && d.has("test") && d.has("test_fraction"))
    d.error("test_fraction",
            "give either \"test\" (a ratings file to measure on; training then uses every row "
            "of the training file) or \"test_fraction\" (a random split of it), not both");
  d.finish();
}

void read_embeddings(json::ObjectReader& root, RecommendConfig& c) {
  json::ObjectReader e = root.object("embeddings");
  c.embeddings.dim =
      e.integer<int64_t>("dim", c.embeddings.dim, json::IntBounds::closed(1, 4096));
  c.embeddings.init_scale =
      e.number("init_scale", c.embeddings.init_scale, json::Bounds::closed(0, 10));
  c.embeddings.shards =
      e.integer<int64_t>("shards", c.embeddings.shards, json::IntBounds::closed(1, 64));
  c.embeddings.placement = e.choice("placement", c.embeddings.placement, placement_choices());
  c.embeddings.remote_shards = e.boolean("remote_shards", c.embeddings.remote_shards);
  json::ObjectReader o = e.object("optimizer");
  auto& oc = c.embeddings.optimizer;
  oc.kind = o.choice("kind", emb::SparseOptimizer::Adagrad, sparse_optimizer_choices());
  if (c.embeddings.shards > 1 && c.embeddings.placement == ShardPlacement::Column &&
      oc.kind == emb::SparseOptimizer::RowwiseAdagrad)
    e.error("placement",
            "column-wise sharding cannot train with rowwise_adagrad (its per-row state is a "
            "mean over all of a row's columns); use \"table\" or \"row\", or another sparse "
            "optimizer");
  oc.lr = static_cast<float>(o.number("lr", 0.05, json::Bounds::positive()));
  oc.eps = static_cast<float>(o.number("eps", oc.eps, json::Bounds::positive()));
  oc.beta1 = static_cast<float>(o.number("beta1", oc.beta1, json::Bounds::closed_open(0, 1)));
  oc.beta2 = static_cast<float>(o.number("beta2", oc.beta2, json::Bounds::closed_open(0, 1)));
  oc.initial_accumulator = static_cast<float>(
      o.number("initial_accumulator", oc.initial_accumulator, json::Bounds::at_least(0)));
  const bool adam = oc.kind == emb::SparseOptimizer::LazyAdam;
  const bool adagrad =
      oc.kind == emb::SparseOptimizer::Adagrad || oc.kind == emb::SparseOptimizer::RowwiseAdagrad;
  for (const char* k : {"beta1", "beta2"})
    if (!adam && o.has(k)) o.error(k, "only applies to \"kind\": \"lazy_adam\"");
  if (!adagrad && o.has("initial_accumulator"))
    o.error("initial_accumulator",
            "only applies to \"kind\": \"adagrad\" or \"rowwise_adagrad\"");
  o.finish();
  e.finish();
}

}  // namespace

RecommendConfig parse_recommend_config(const std::string& text, const std::string& source) {
  RecommendConfig c;
  std::unique_ptr<json::Document> doc = json::parse(text, source);
  json::ObjectReader root = doc->root();
  const std::string task = root.required_string("task");
  if (!task.empty() && task != "recommend")
    root.error("task", "expected \"recommend\" (this reader handles recommendation configs)");
  c.name = config::read_run_name(root, "name", c.name);
  c.model = root.required_choice("model", model_choices(), c.model);
  c.seed = root.integer<int64_t>("seed", c.seed, json::IntBounds::at_least(0));
  c.device = root.string("device", c.device, json::Text::NonEmpty);
  c.runs_dir = root.string("runs_dir", c.runs_dir, json::Text::NonEmpty);
  const bool mf = c.model == ModelKind::Mf;
  read_data(root, c);
  read_embeddings(root, c);
  {
    json::ObjectReader t = root.object("train");
    c.train.epochs =
        t.integer<int64_t>("epochs", c.train.epochs, json::IntBounds::closed(1, 100000));
    c.train.batch_size =
        t.integer<int64_t>("batch_size", c.train.batch_size, json::IntBounds::closed(1, 1 << 22));
    c.train.l2 = t.number("l2", c.train.l2, json::Bounds::at_least(0));
    c.train.bias_l2 = t.number("bias_l2", c.train.bias_l2, json::Bounds::at_least(0));
    c.train.negatives =
        t.integer<int64_t>("negatives", c.train.negatives, json::IntBounds::closed(1, 1000));
    c.train.loss = t.choice("loss", c.train.loss, loss_choices());
    c.train.on_nonfinite =
        t.choice(kOnNonFiniteKey, c.train.on_nonfinite, nonfinite_policy_choices());
    c.train.lr_schedule =
        config::read_lr_schedule(t, "lr_schedule", c.embeddings.optimizer.lr, c.train.lr_schedule);
    for (const char* k : {"negatives", "loss"})
      if (mf && t.has(k)) t.error(k, "only applies to \"model\": \"two_tower\"");
    t.finish();
  }
  {
    json::ObjectReader v = root.object("evaluate");
    c.evaluate.k = v.integer<int64_t>("k", c.evaluate.k, json::IntBounds::closed(1, 1000));
    c.evaluate.negatives =
        v.integer<int64_t>("negatives", c.evaluate.negatives, json::IntBounds::closed(1, 100000));
    c.evaluate.full_ranking = v.boolean("full_ranking", c.evaluate.full_ranking);
    for (const char* k : {"k", "negatives", "full_ranking"})
      if (mf && v.has(k)) v.error(k, "only applies to \"model\": \"two_tower\" (mf reports RMSE)");
    v.finish();
  }
  root.finish();
  doc->errors.throw_if_any();
  return c;
}

RecommendConfig read_recommend_config(const std::string& path) {
  return parse_recommend_config(json::read_text_file(path), path);
}

std::string to_json(const RecommendConfig& c) {
  json::JsonWriter w;
  w.begin_object();
  w.field("task", "recommend").field("name", c.name).choice("model", c.model, model_choices());
  w.field("seed", c.seed).field("device", c.device).field("runs_dir", c.runs_dir);
  w.key("data").begin_object();
  w.field("dataset", c.data.dataset).field("file", c.data.file).field("path", c.data.path);
  w.field("max_rows", c.data.max_rows).choice("on_error", c.data.on_error, on_error_choices());
  // With a test file there is no split: test_fraction is not written (it may not be given).
  if (c.model == ModelKind::Mf && !c.data.test.empty()) w.field("test", c.data.test);
  if (c.model == ModelKind::Mf && c.data.test.empty())
    w.field("test_fraction", c.data.test_fraction);
  w.end_object();
  const auto& o = c.embeddings.optimizer;
  w.key("embeddings").begin_object();
  w.field("dim", c.embeddings.dim).field("init_scale", c.embeddings.init_scale);
  w.field("shards", c.embeddings.shards)
      .choice("placement", c.embeddings.placement, placement_choices());
  // Written only when set: configs (and resume keys) from before the key stay the same.
  if (c.embeddings.remote_shards) w.field("remote_shards", true);
  w.key("optimizer").begin_object().choice("kind", o.kind, sparse_optimizer_choices());
  w.field("lr", static_cast<double>(o.lr)).field("eps", static_cast<double>(o.eps));
  if (o.kind == emb::SparseOptimizer::LazyAdam)
    w.field("beta1", static_cast<double>(o.beta1)).field("beta2", static_cast<double>(o.beta2));
  if (o.kind == emb::SparseOptimizer::Adagrad || o.kind == emb::SparseOptimizer::RowwiseAdagrad)
    w.field("initial_accumulator", static_cast<double>(o.initial_accumulator));
  w.end_object().end_object();
  w.key("train").begin_object();
  w.field("epochs", c.train.epochs).field("batch_size", c.train.batch_size);
  w.field("l2", c.train.l2).field("bias_l2", c.train.bias_l2);
  if (c.model == ModelKind::TwoTower)
    w.field("negatives", c.train.negatives).choice("loss", c.train.loss, loss_choices());
  w.choice(kOnNonFiniteKey, c.train.on_nonfinite, nonfinite_policy_choices());
  // Written only when not the default: configs (and resume keys) from before the key stay the
  // same.
  if (c.train.lr_schedule != LrScheduleConfig{}) {
    w.key("lr_schedule");
    config::write_lr_schedule(w, c.train.lr_schedule);
  }
  w.end_object();
  if (c.model == ModelKind::TwoTower) {
    w.key("evaluate").begin_object();
    w.field("k", c.evaluate.k).field("negatives", c.evaluate.negatives);
    w.field("full_ranking", c.evaluate.full_ranking).end_object();
  }
  w.end_object();
  return w.pretty();
}

}  // namespace tessera::recommend
