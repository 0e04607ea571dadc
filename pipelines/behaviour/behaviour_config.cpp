// The behaviour task's config: its choice tables, the checks its declarations call, and the
// reader, writer, equality, example and schema instantiated from those declarations.
#include "pipelines/behaviour/behaviour_config.h"

#include <map>

#include "host/config/choices.h"
#include "host/config/entry_points.h"
#include "host/config/json_writer.h"

namespace tessera {

TESSERA_CHOICES(behaviour_model_choices, BehaviourModelType, {"mlp", BehaviourModelType::Mlp},
                {"dlrm", BehaviourModelType::Dlrm}, {"dcn_v2", BehaviourModelType::DcnV2},
                {"wide_deep", BehaviourModelType::WideDeep});

TESSERA_CHOICES(cross_structure_choices, CrossStructure, {"stacked", CrossStructure::Stacked},
                {"parallel", CrossStructure::Parallel});

TESSERA_CHOICES(data_read_choices, DataRead, {"auto", DataRead::Auto}, {"memory", DataRead::Memory},
                {"stream", DataRead::Stream});

TESSERA_CHOICES(table_storage_choices, TableStorage, {"f32", TableStorage::F32},
                {"bf16", TableStorage::BF16}, {"f16", TableStorage::F16});

TESSERA_CHOICES(tables_across_ranks_choices, emb::RankPlacement,
                {"replicated", emb::RankPlacement::Replicated},
                {"split", emb::RankPlacement::TableWise});

TESSERA_CHOICES(activation_choices, Activation, {"relu", Activation::Relu},
                {"tanh", Activation::Tanh}, {"sigmoid", Activation::Sigmoid});

TESSERA_CHOICES(early_stopping_metric_choices, EarlyStoppingMetric,
                {"auc", EarlyStoppingMetric::Auc}, {"logloss", EarlyStoppingMetric::Logloss});

TESSERA_CHOICES(table_format_choices, TableFormat, {"csv", TableFormat::Csv},
                {"criteo", TableFormat::Criteo}, {"libsvm", TableFormat::LibSvm});

TESSERA_CHOICES(column_type_choices, ColumnType, {"numeric", ColumnType::Numeric},
                {"categorical", ColumnType::Categorical}, {"label", ColumnType::Label},
                {"ignore", ColumnType::Ignore});

TESSERA_CHOICES(numeric_transform_choices, NumericTransform, {"none", NumericTransform::None},
                {"log1p", NumericTransform::Log1p});

TESSERA_CHOICES(bin_edges_choices, BinEdges, {"distinct_quantile", BinEdges::DistinctQuantile},
                {"quantile", BinEdges::Quantile});

TESSERA_CHOICES(normalization_choices, Normalization, {"standard", Normalization::Standard},
                {"minmax", Normalization::MinMax}, {"none", Normalization::None});

namespace behaviour_detail {

using json::ObjectReader;

namespace {

// Whether a column object's "type" is one of the column types (else its reader reported it).
bool type_is_known(const rapidjson::Value& column) {
  if (!column.IsObject()) return false;
  const auto type = column.FindMember("type");
  if (type == column.MemberEnd() || !type->value.IsString()) return false;
  const std::string name(type->value.GetString(), type->value.GetStringLength());
  for (const auto& c : column_type_choices()) {
    if (name == c.name) return true;
  }
  return false;
}

}  // namespace

void check_columns(ObjectReader& data, const std::vector<ColumnSpec>& columns) {
  const rapidjson::Value* list = data.raw("columns");
  if (!list || !list->IsArray()) return;
  // The path of each column read: the list's object elements, in order.
  const std::string base = data.path_of("columns");
  std::vector<std::string> paths;
  bool all_types_known = true;
  for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
    if (!(*list)[i].IsObject()) continue;
    paths.push_back(json::element_path(base, i));
    all_types_known = all_types_known && type_is_known((*list)[i]);
  }
  if (paths.size() != columns.size()) return;  // not read (nothing to check)
  json::ErrorList& errors = data.errors();
  std::map<std::string, std::string> first_with_name;  // name -> path of that column
  std::vector<std::string> label_paths;
  size_t features = 0;
  for (size_t i = 0; i < columns.size(); ++i) {
    const ColumnSpec& s = columns[i];
    if (!s.name.empty()) {
      auto [it, inserted] = first_with_name.emplace(s.name, paths[i]);
      if (!inserted) {
        errors.add(json::child_path(paths[i], "name"),
                   "duplicate column name \"" + s.name + "\" (also " + it->second + ")");
      }
    }
    if (s.type == ColumnType::Label) label_paths.push_back(paths[i]);
    if (s.type == ColumnType::Numeric || s.type == ColumnType::Categorical) ++features;
  }
  // Counting checks only make sense when every column's type is known.
  if (columns.empty() || !all_types_known) return;
  if (label_paths.empty()) {
    data.error("columns", "no label column: exactly one column needs \"type\": \"label\"");
  }
  for (size_t i = 1; i < label_paths.size(); ++i) {
    errors.add(json::child_path(label_paths[i], "type"), "a second label column (the first is " +
                                                             label_paths[0] +
                                                             "); exactly one column is the label");
  }
  if (features == 0) {
    data.error("columns",
               "no feature columns: at least one column must be \"numeric\" or \"categorical\"");
  }
}

// (Criteo has both; a registered dataset's columns are checked when it is read.)
void check_table_model_inputs(ObjectReader& root, const TableSchema& schema,
                              BehaviourModelType type) {
  const std::string at = config::detail::path_below(root.path(), "model.type");
  const std::string model =
      std::string("a \"") + json::choice_name(type, behaviour_model_choices()) + "\" model";
  // libSVM rows are the tables' ids and weights (sparse_input.h); without numeric columns a
  // DLRM has no bottom MLP.
  (void)type;
  if (schema.format != TableFormat::Csv || schema.columns.empty()) return;
  bool categorical = false;
  for (const ColumnSpec& col : schema.columns)
    categorical = categorical || col.type == ColumnType::Categorical;
  if (!categorical) {
    root.errors().add(at, model +
                              " needs at least one categorical column (its embedding "
                              "tables), and data.columns has none");
  }
}

std::string columns_implied_message(TableFormat format) {
  if (format == TableFormat::Csv) return "";
  const char* layout = format == TableFormat::Criteo
                           ? "label, 13 integer features I1-I13, 26 categorical C1-C26"
                           : "a label, then index:value pairs";
  return std::string("columns are implied by the \"") +
         json::choice_name(format, table_format_choices()) + "\" format (" + layout +
         "); remove \"columns\"";
}

}  // namespace behaviour_detail

TESSERA_CONFIG_IO(BehaviourConfig, parse_behaviour_config, load_behaviour_config,
                  json::read_text_file);

namespace {

// The example's settings besides the defaults: what a config must give (a training file and, for
// csv, its columns).
BehaviourConfig example_settings() {
  BehaviourConfig c;
  c.data.train.path = "train.csv";
  c.data.schema.columns = {
      {"age", ColumnType::Numeric, NumericTransform::None, {}, {}},
      {"city", ColumnType::Categorical, NumericTransform::None, {}, {}},
      {"clicked", ColumnType::Label, NumericTransform::None, {}, {}},
  };
  return c;
}

}  // namespace

TESSERA_CONFIG_DOCS(
    behaviour_config_example, behaviour_config_schema, "behaviour",
    "A behaviour config (tessera train CONFIG): a binary classifier (will this user click, buy, "
    "churn?) on a table of numeric and categorical features, an MLP or a DLRM. Every field is "
    "shown with its default and what it does; fields that do not apply to these settings are "
    "commented out, with the reason. data.train and, for csv data, data.columns (exactly one "
    "label) are required; the ones here are placeholders.",
    example_settings(), BehaviourConfig{});

}  // namespace tessera
