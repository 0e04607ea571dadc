#include "pipelines/recommend/recommend_config.h"

#include "host/config/json_writer.h"

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
const json::Choices<data::RatingsOnError>& on_error_choices() {
  static const json::Choices<data::RatingsOnError> c = {{"error", data::RatingsOnError::Error},
                                                        {"skip", data::RatingsOnError::Skip}};
  return c;
}

bool is_recommend_config(const std::string& path) {
  return json::file_has_task(path, "recommend");
}

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

RecommendConfig parse_recommend_config(const std::string& text, const std::string& source) {
  return config::read_config<RecommendConfig>(text, source);
}

RecommendConfig read_recommend_config(const std::string& path) {
  return parse_recommend_config(json::read_text_file(path), path);
}

std::string to_json(const RecommendConfig& c) {
  return config::write_config(c);
}

bool operator==(const RecommendConfig& a, const RecommendConfig& b) {
  return config::same_config(a, b);
}

std::string recommend_config_example() {
  return config::example_config<RecommendConfig>(
      "A recommend config (tessera train CONFIG): biased matrix factorisation on explicit "
      "ratings (\"model\": \"mf\", RMSE on a random split or a test file) or a two-tower model "
      "on implicit feedback with sampled negatives (\"model\": \"two_tower\", HR and NDCG on "
      "each user's latest interaction). Ratings files are userId,movieId,rating[,timestamp] "
      "rows. Every field is shown with its default and what it does; fields that do not apply "
      "to these settings are commented out, with the reason. Only \"model\" is required.");
}

std::string recommend_config_schema() {
  return config::schema_config<RecommendConfig>("recommend");
}

}  // namespace tessera::recommend
