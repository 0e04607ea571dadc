#include "pipelines/recommend/recommend_config.h"

#include "host/config/choices.h"
#include "host/config/entry_points.h"
#include "host/config/json_writer.h"

namespace tessera::recommend {

TESSERA_CHOICES(model_choices, ModelKind, {"mf", ModelKind::Mf},
                {"two_tower", ModelKind::TwoTower});
TESSERA_CHOICES(loss_choices, Loss, {"bce", Loss::Bce}, {"bpr", Loss::Bpr});
TESSERA_CHOICES(on_error_choices, data::RatingsOnError, {"error", data::RatingsOnError::Error},
                {"skip", data::RatingsOnError::Skip});

namespace recommend_detail {

config::Codec<float> float_codec(json::Bounds bounds) {
  return {[bounds](json::ObjectReader& parent, std::string_view key, bool, float* out) {
            *out = static_cast<float>(parent.number(key, static_cast<double>(*out), bounds));
          },
          [](json::JsonWriter& w, const float& x) { w.value(static_cast<double>(x)); },
          [bounds](json::JsonWriter& w, const std::string& description) {
            w.begin_object().field("type", "number").field("description", description);
            config::detail::write_number_schema(w, bounds);
            w.end_object();
          }};
}

void settle_data_files(json::ObjectReader& r, RecommendData& c) {
  const bool older = !c.path.empty() || r.has("file");
  if (older && r.has("train")) {
    r.error(r.has("file") ? "file" : "path",
            std::string("\"") + (r.has("file") ? "file" : "path") +
                "\" is the older spelling of \"train\": give one of them");
    return;
  }
  if (!c.path.empty()) {  // a local file, whatever the dataset (as before "train")
    c.train.path = c.path;
    c.dataset.clear();
  } else if (r.has("file")) {
    c.train.path = c.file;
  } else if (r.has("train") && !r.has("dataset")) {
    c.dataset.clear();
  }
}

}  // namespace recommend_detail

TESSERA_CONFIG_IO(RecommendConfig, parse_recommend_config, read_recommend_config,
                  json::read_text_file);

TESSERA_CONFIG_DOCS(
    recommend_config_example, recommend_config_schema, "recommend",
    "A recommend config (tessera train CONFIG): biased matrix factorisation on explicit "
    "ratings (\"model\": \"mf\", RMSE on a random split or a test file) or a two-tower model "
    "on implicit feedback with sampled negatives (\"model\": \"two_tower\", HR and NDCG on "
    "each user's latest interaction). Ratings files are userId,movieId,rating[,timestamp] "
    "rows. Every field is shown with its default and what it does; fields that do not apply "
    "to these settings are commented out, with the reason. Only \"model\" is required.",
    RecommendConfig{}, RecommendConfig{});

}  // namespace tessera::recommend
