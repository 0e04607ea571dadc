// The textclass config: its choice tables and codecs, and the reader, writer, equality, example
// and schema instantiated from the declarations in textclass_config.h.
#include "pipelines/textclass/textclass_config.h"

#include <cstdio>
#include <cstdlib>

#include "host/config/choices.h"
#include "host/config/entry_points.h"
#include "host/config/json_writer.h"

namespace tessera::textclass {

using json::ObjectReader;

TESSERA_CHOICES(pooling_choices, Pooling, {"mean", Pooling::Mean}, {"max", Pooling::Max},
                {"last", Pooling::Last});

namespace textclass_detail {

namespace {
// The float a config number was read into, back as the short decimal it came from (0.1, not
// 0.10000000149011612).
double as_written(float v) {
  char buf[32];
  for (int precision = 1; precision <= 9; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, static_cast<double>(v));
    if (std::strtof(buf, nullptr) == v) break;
  }
  return std::strtod(buf, nullptr);
}
}  // namespace

const config::Codec<ColumnRef>& column_codec() {
  static const config::Codec<ColumnRef> codec = {
      [](ObjectReader& parent, std::string_view key, bool, ColumnRef* out) {
        if (parent.kind(key) == json::JsonKind::Absent) return;
        if (parent.kind(key) == json::JsonKind::String) {
          out->name = parent.string(key, "", json::Text::NonEmpty);
          out->index = 0;
        } else if (parent.kind(key) == json::JsonKind::Number) {
          out->index = parent.integer<int64_t>(key, 0, json::IntBounds::closed(0, 100000));
          out->name.clear();
        } else {
          parent.allow(key);
          parent.error(key, "expected a column: a 0-based index or a header name");
        }
      },
      [](json::JsonWriter& w, const ColumnRef& c) {
        if (c.name.empty()) {
          w.value(c.index);
        } else {
          w.value(c.name);
        }
      },
      [](json::JsonWriter& w, const std::string& description) {
        w.begin_object().field("description", description).key("oneOf").begin_array();
        w.begin_object().field("type", "integer").field("minimum", 0);
        w.field("maximum", 100000).end_object();
        w.begin_object().field("type", "string").field("minLength", 1).end_object();
        w.end_array().end_object();
      }};
  return codec;
}

const config::Codec<bool>& bool_codec() {
  static const config::Codec<bool> codec = {
      [](ObjectReader& parent, std::string_view key, bool, bool* out) {
        *out = parent.boolean(key, *out);
      },
      [](json::JsonWriter& w, const bool& b) { w.value(b); },
      [](json::JsonWriter& w, const std::string& description) {
        w.begin_object().field("type", "boolean").field("description", description).end_object();
      }};
  return codec;
}

config::Codec<float> float_codec(json::Bounds bounds) {
  return {[bounds](ObjectReader& parent, std::string_view key, bool, float* out) {
            *out = static_cast<float>(parent.number(key, static_cast<double>(*out), bounds));
          },
          [](json::JsonWriter& w, const float& x) { w.value(as_written(x)); },
          [bounds](json::JsonWriter& w, const std::string& description) {
            w.begin_object().field("type", "number").field("description", description);
            config::detail::write_number_schema(w, bounds);
            w.end_object();
          }};
}

bool is_named(const std::optional<ColumnRef>& c) {
  return c && !c->name.empty();
}

bool same_column(const TextLayout& c) {
  const ColumnRef label = c.label_column.value_or(ColumnRef{0, ""});
  const ColumnRef text = c.text_column.value_or(ColumnRef{1, ""});
  return label == text;
}

}  // namespace textclass_detail

TESSERA_CONFIG_IO(TextclassConfig, parse_textclass_config, read_textclass_config,
                  json::read_text_file);

namespace {

// What a config must give besides the defaults: a training file and validation data.
TextclassConfig example_settings() {
  TextclassConfig c;
  c.data.train.path = "train.tsv";
  c.data.validation_fraction = 0.1;
  return c;
}

}  // namespace

TESSERA_CONFIG_DOCS(
    textclass_config_example, textclass_config_schema, "textclass",
    "A textclass config (tessera train CONFIG): a (bi)LSTM classifier over the tokens of "
    "labelled texts, early-stopped on validation accuracy. Rows are label<TAB>text by default; "
    "delimiter, header, label_column and text_column read other layouts, strip_markup removes "
    "HTML/XML. Every field is shown with its default and what it does; fields that do not "
    "apply to these settings are commented out, with the reason. data.train and validation "
    "data (a file or validation_fraction > 0) are required; the ones here are placeholders.",
    example_settings(), TextclassConfig{});

}  // namespace tessera::textclass
