#pragma once
// Config sections declared once. A section is a struct (its member initialisers are the
// defaults) and one function template that lists its fields in order:
//
//   template <typename V>
//   void fields(V& v, OptimizerConfig& c) {
//     v.choice(F("type", "the update rule"), c.type, optimizer_choices());
//     v.number(F("lr", "learning rate"), c.lr, Bounds::open_closed(0, 10));
//     v.when(c.type == OptimizerType::Sgd, "only applies to \"sgd\"", [&] {
//       v.number(F("momentum", "heavy-ball momentum"), c.momentum, Bounds::closed_open(0, 1));
//     });
//     v.check(c.lr < 5, "lr", "...");       // a cross-field rule (the reader reports it)
//   }
//
// Every use of a config is a visitor over that list, so nothing is written twice:
//   read_section  - the validating reader (json_reader.h: file:line:col, JSON path, closest key,
//                   every error at once); a field outside an applicable `when` is an error that
//                   says why;
//   write_section - the resolved config (fields that apply, defaults filled in);
//   same_config   - equality: the resolved form, less the fields marked not_compared();
//   example_text  - `tessera config TASK --example`: every field with its default and its
//                   documentation as // comments (our reader accepts comments), the fields that
//                   do not apply to the defaults commented out with the reason;
//   schema_text   - `tessera config TASK --schema`: JSON Schema (draft 2020-12).
// A field whose JSON shape is unusual (a string or an object, a single character) gives a Codec.
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "host/config/json_reader.h"
#include "host/config/json_writer.h"

namespace tessera::config {

// A field's key and documentation, and how the visitors treat it.
struct F {
  F(const char* key, const char* doc) : key(key), doc(doc) {}
  F& required() {
    is_required = true;
    return *this;
  }
  // Left out of equality (settings that do not change results, e.g. how many shards).
  F& not_compared() {
    compared = false;
    return *this;
  }
  // Written only when `yes` (a key added later, written only when set so older resolved configs
  // stay the same). Readers and schema still show it; the example shows it commented out when
  // not written (an unset value, e.g. "", may not read back).
  F& written_if(bool yes) {
    written = yes;
    return *this;
  }
  // An older spelling of the key, still read (the writer, example and schema use `key`).
  F& formerly(const char* old) {
    old_key = old;
    return *this;
  }
  // A regular expression the schema gives for a string field.
  F& pattern(const char* regex) {
    schema_pattern = regex;
    return *this;
  }

  const char* key;
  const char* doc;
  bool is_required = false;
  bool compared = true;
  bool written = true;
  const char* schema_pattern = nullptr;
  const char* old_key = nullptr;
};

// How to read, write and describe a value of an unusual shape.
template <typename T>
struct Codec {
  // Reads parent[key] into *out (absent: leaves it and, when `required`, reports it).
  std::function<void(json::ObjectReader& parent, std::string_view key, bool required, T* out)> read;
  std::function<void(json::JsonWriter& w, const T& value)> write;
  // The value's schema (an object), with `description`.
  std::function<void(json::JsonWriter& w, const std::string& description)> schema;
};

namespace detail {

// What the reader does with the fields of a `when` that does not apply.
enum class Mode : uint8_t { Read, Reject, Allow, Leave };

std::string path_below(const std::string& base, std::string_view dotted);
void write_number_schema(json::JsonWriter& w, const json::Bounds& b);
void write_integer_schema(json::JsonWriter& w, const json::IntBounds& b);
void write_size_schema(json::JsonWriter& w, const json::IntBounds& size);

}  // namespace detail

// ---- the reader --------------------------------------------------------------------------------

class SectionReader {
 public:
  explicit SectionReader(json::ObjectReader& r) : r_(r) {}
  json::ObjectReader& raw() { return r_; }

  template <typename T>
  void integer(const F& f, T& x, json::IntBounds b = json::IntBounds::any()) {
    const F g = resolve(f);
    if (skip(g)) return;
    x = g.is_required ? r_.required_integer<T>(g.key, b) : r_.integer<T>(g.key, x, b);
  }
  void number(const F& f, double& x, json::Bounds b = json::Bounds::any()) {
    const F g = resolve(f);
    if (skip(g)) return;
    x = g.is_required ? r_.required_number(g.key, b) : r_.number(g.key, x, b);
  }
  void boolean(const F& f, bool& x) {
    const F g = resolve(f);
    if (skip(g)) return;
    if (g.is_required) r_.require(g.key);
    x = r_.boolean(g.key, x);
  }
  void string(const F& f, std::string& x, json::Text rule = json::Text::Any) {
    const F g = resolve(f);
    if (skip(g)) return;
    x = g.is_required ? r_.required_string(g.key, rule) : r_.string(g.key, x, rule);
  }
  template <typename E>
  void choice(const F& f, E& x, const json::Choices<E>& choices) {
    const F g = resolve(f);
    if (skip(g)) return;
    const size_t before = r_.errors().size();
    x = g.is_required ? r_.required_choice(g.key, choices, x) : r_.choice(g.key, x, choices);
    if (r_.errors().size() != before) choice_failed_ = true;
  }
  // The fixed value of a key that names what the file is ("task": "behaviour").
  void constant(const F& f, const char* value) {
    const F g = resolve(f);
    if (skip(g)) return;
    const json::Choices<int> one = {{value, 0}};
    g.is_required ? r_.required_choice(g.key, one, 0) : r_.choice(g.key, 0, one);
  }
  template <typename T>
  void integer_list(const F& f, std::vector<T>& x, json::IntBounds item, json::IntBounds size) {
    const F g = resolve(f);
    if (skip(g)) return;
    if (g.is_required) r_.require(g.key);
    x = r_.integer_list<T>(g.key, x, item, size);
  }
  void number_list(const F& f, std::vector<double>& x, json::Bounds item, json::IntBounds size) {
    const F g = resolve(f);
    if (skip(g)) return;
    if (g.is_required) r_.require(g.key);
    x = r_.number_list(g.key, x, item, size);
  }
  void string_list(const F& f, std::vector<std::string>& x, json::Text rule = json::Text::Any,
                   json::IntBounds size = json::IntBounds::any()) {
    const F g = resolve(f);
    if (skip(g)) return;
    if (g.is_required) r_.require(g.key);
    x = r_.string_list(g.key, x, rule, size);
  }
  template <typename T>
  void custom(const F& f, T& x, const Codec<T>& codec) {
    const F g = resolve(f);
    if (skip(g)) return;
    codec.read(r_, g.key, g.is_required, &x);
  }
  template <typename T>
  void custom(const F& f, std::optional<T>& x, const Codec<T>& codec) {
    const F g = resolve(f);
    if (skip(g)) return;
    if (!r_.has(g.key)) {
      g.is_required ? void(r_.require(g.key)) : r_.allow(g.key);
      return;
    }
    T value{};
    const size_t before = r_.errors().size();
    codec.read(r_, g.key, g.is_required, &value);
    if (r_.errors().size() == before) x = std::move(value);
  }
  template <typename T>
  void section(const F& f, T& sub) {
    const F g = resolve(f);
    if (skip(g)) return;
    json::ObjectReader r = g.is_required ? r_.required_object(g.key) : r_.object(g.key);
    SectionReader v(r);
    fields(v, sub);
    r.finish();
  }
  template <typename T>
  void optional_section(const F& f, std::optional<T>& sub) {
    const F g = resolve(f);
    if (skip(g)) return;
    if (!r_.has(g.key)) {
      r_.allow(g.key);
      return;
    }
    sub.emplace();
    section(f, *sub);
  }
  template <typename T>
  void section_list(const F& f, std::vector<T>& items,
                    json::IntBounds size = json::IntBounds::any()) {
    const F g = resolve(f);
    if (skip(g)) return;
    const bool present = r_.has(g.key);
    std::vector<json::ObjectReader> readers =
        g.is_required ? r_.required_object_list(g.key, size) : r_.object_list(g.key, size);
    if (!present) return;
    items.clear();
    for (json::ObjectReader& r : readers) {
      T item{};
      SectionReader v(r);
      fields(v, item);
      r.finish();
      items.push_back(std::move(item));
    }
  }

  // Fields that apply only when `applies`. Otherwise each one given is an error saying `why`
  // (empty `why`: left to finish(), which reports it as an unknown key) — unless a choice of
  // this section failed to read, when nobody knows what applies and that error is enough.
  template <typename Body>
  void when(bool applies, const std::string& why, Body&& body) {
    if (mode_ != detail::Mode::Read || applies) {
      body();
      return;
    }
    const std::string saved_why = why_;
    why_ = why;
    mode_ = choice_failed_ ? detail::Mode::Allow
                           : (why.empty() ? detail::Mode::Leave : detail::Mode::Reject);
    body();
    mode_ = detail::Mode::Read;
    why_ = saved_why;
  }
  // A rule across fields: when `ok` is false, an error at `key_path` ("a.b" below this
  // section; "" for the section itself).
  void check(bool ok, std::string_view key_path, const std::string& message) {
    if (ok || mode_ != detail::Mode::Read) return;
    if (key_path.empty()) {
      r_.error("", message);
    } else {
      r_.errors().add(detail::path_below(r_.path(), key_path), message);
    }
  }
  // Checks that need the raw reader (counting over a list, ...): run only when reading.
  template <typename Fn>
  void validate(Fn&& fn) {
    if (mode_ == detail::Mode::Read) fn(r_);
  }
  bool reading() const { return true; }

 private:
  // `f`, or `f` under its older spelling when the config uses that one (both: an error).
  F resolve(const F& f) {
    if (!f.old_key || !r_.has(f.old_key)) return f;
    F g = f;
    if (r_.has(f.key)) {
      r_.allow(f.old_key);
      r_.error(f.old_key, std::string("\"") + f.old_key + "\" is the older spelling of \"" + f.key +
                              "\": give one of them");
      return f;
    }
    g.key = f.old_key;
    return g;
  }
  // True when the field is not to be read (inside a `when` that does not apply).
  bool skip(const F& f) {
    switch (mode_) {
      case detail::Mode::Read:
        return false;
      case detail::Mode::Reject:
        if (r_.has(f.key)) {
          r_.allow(f.key);
          r_.error(f.key, why_);
        }
        return true;
      case detail::Mode::Allow:
        r_.allow(f.key);
        return true;
      case detail::Mode::Leave:
        return true;
    }
    return true;
  }

  json::ObjectReader& r_;
  detail::Mode mode_ = detail::Mode::Read;
  std::string why_;
  bool choice_failed_ = false;
};

// ---- the writer (resolved config, and the identity used for equality) -------------------------

class SectionWriter {
 public:
  SectionWriter(json::JsonWriter& w, bool identity) : w_(w), identity_(identity) {}

  template <typename T>
  void integer(const F& f, const T& x, json::IntBounds = {}) {
    if (keep(f)) w_.field(f.key, x);
  }
  void number(const F& f, const double& x, json::Bounds = {}) {
    if (keep(f)) w_.field(f.key, x);
  }
  void boolean(const F& f, const bool& x) {
    if (keep(f)) w_.field(f.key, x);
  }
  void string(const F& f, const std::string& x, json::Text = json::Text::Any) {
    if (keep(f)) w_.field(f.key, x);
  }
  template <typename E>
  void choice(const F& f, const E& x, const json::Choices<E>& choices) {
    if (keep(f)) w_.choice(f.key, x, choices);
  }
  void constant(const F& f, const char* value) {
    if (keep(f)) w_.field(f.key, value);
  }
  template <typename T>
  void integer_list(const F& f, const std::vector<T>& x, json::IntBounds, json::IntBounds) {
    if (keep(f)) w_.field(f.key, x);
  }
  void number_list(const F& f, const std::vector<double>& x, json::Bounds, json::IntBounds) {
    if (keep(f)) w_.field(f.key, x);
  }
  void string_list(const F& f, const std::vector<std::string>& x, json::Text = json::Text::Any,
                   json::IntBounds = json::IntBounds::any()) {
    if (keep(f)) w_.field(f.key, x);
  }
  template <typename T>
  void custom(const F& f, const T& x, const Codec<T>& codec) {
    if (!keep(f)) return;
    w_.key(f.key);
    codec.write(w_, x);
  }
  template <typename T>
  void custom(const F& f, const std::optional<T>& x, const Codec<T>& codec) {
    if (x) custom(f, *x, codec);
  }
  template <typename T>
  void section(const F& f, T& sub) {
    if (!keep(f)) return;
    w_.key(f.key);
    write_object(sub);
  }
  template <typename T>
  void optional_section(const F& f, std::optional<T>& sub) {
    if (sub) section(f, *sub);
  }
  template <typename T>
  void section_list(const F& f, std::vector<T>& items, json::IntBounds = {}) {
    if (!keep(f)) return;
    w_.key(f.key).begin_array();
    for (T& item : items) write_object(item);
    w_.end_array();
  }
  template <typename Body>
  void when(bool applies, const std::string&, Body&& body) {
    if (applies) body();
  }
  void check(bool, std::string_view, const std::string&) {}
  template <typename Fn>
  void validate(Fn&&) {}
  bool reading() const { return false; }

  template <typename T>
  void write_object(T& sub) {
    w_.begin_object();
    fields(*this, sub);
    w_.end_object();
  }

 private:
  bool keep(const F& f) const { return f.written && (!identity_ || f.compared); }

  json::JsonWriter& w_;
  bool identity_;
};

// ---- the example (every default, documented) ----------------------------------------------------

// One line-oriented node of the example: a key, its documentation and either a JSON value or
// members; `off` members are printed commented out after `why`.
struct ExampleNode {
  std::string key;
  std::string doc;
  std::string value;  // JSON text; empty for an object
  std::vector<ExampleNode> members;
  bool off = false;
  std::string why;
};
std::string render_example(const ExampleNode& root);

class ExampleWriter {
 public:
  explicit ExampleWriter(ExampleNode& node) : node_(node) {}

  template <typename T>
  void integer(const F& f, const T& x, json::IntBounds = {}) {
    add(f, [&](json::JsonWriter& w) { w.value(x); });
  }
  void number(const F& f, const double& x, json::Bounds = {}) {
    add(f, [&](json::JsonWriter& w) { w.value(x); });
  }
  void boolean(const F& f, const bool& x) {
    add(f, [&](json::JsonWriter& w) { w.value(x); });
  }
  void string(const F& f, const std::string& x, json::Text = json::Text::Any) {
    add(f, [&](json::JsonWriter& w) { w.value(x); });
  }
  template <typename E>
  void choice(const F& f, const E& x, const json::Choices<E>& choices) {
    add(
        f, [&](json::JsonWriter& w) { w.value(json::choice_name(x, choices)); },
        choice_doc(choices));
  }
  void constant(const F& f, const char* value) {
    add(f, [&](json::JsonWriter& w) { w.value(value); });
  }
  template <typename T>
  void integer_list(const F& f, const std::vector<T>& x, json::IntBounds, json::IntBounds) {
    add(f, [&](json::JsonWriter& w) { w.list(x); });
  }
  void number_list(const F& f, const std::vector<double>& x, json::Bounds, json::IntBounds) {
    add(f, [&](json::JsonWriter& w) { w.list(x); });
  }
  void string_list(const F& f, const std::vector<std::string>& x, json::Text = json::Text::Any,
                   json::IntBounds = json::IntBounds::any()) {
    add(f, [&](json::JsonWriter& w) { w.list(x); });
  }
  template <typename T>
  void custom(const F& f, const T& x, const Codec<T>& codec) {
    add(f, [&](json::JsonWriter& w) { codec.write(w, x); });
  }
  template <typename T>
  void custom(const F& f, const std::optional<T>& x, const Codec<T>& codec) {
    const T shown = x ? *x : T{};
    add(f, [&](json::JsonWriter& w) { codec.write(w, shown); });
    if (!x && !off_) {
      node_.members.back().off = true;
      node_.members.back().why = "optional";
    }
  }
  template <typename T>
  void section(const F& f, T& sub) {
    ExampleNode& n = push(f);
    ExampleWriter v(n);
    fields(v, sub);
  }
  template <typename T>
  void optional_section(const F& f, std::optional<T>& sub) {
    if (sub) {
      section(f, *sub);
      return;
    }
    T defaults{};
    const bool saved = off_;
    const std::string saved_why = why_;
    if (!off_) why_ = "optional";
    off_ = true;
    section(f, defaults);
    off_ = saved;
    why_ = saved_why;
  }
  template <typename T>
  void section_list(const F& f, std::vector<T>& items, json::IntBounds = {}) {
    add(f, [&](json::JsonWriter& w) {
      SectionWriter sw(w, /*identity=*/false);
      w.begin_array();
      for (T& item : items) sw.write_object(item);
      w.end_array();
    });
  }
  template <typename Body>
  void when(bool applies, const std::string& why, Body&& body) {
    if (applies || off_) {
      body();
      return;
    }
    off_ = true;
    why_ = why.empty() ? "does not apply to these settings" : why;
    body();
    off_ = false;
    why_.clear();
  }
  void check(bool, std::string_view, const std::string&) {}
  template <typename Fn>
  void validate(Fn&&) {}
  bool reading() const { return false; }

 private:
  template <typename E>
  static std::string choice_doc(const json::Choices<E>& choices) {
    std::vector<std::string> names;
    for (const auto& c : choices) names.emplace_back(c.name);
    return "one of " + json::quoted_list(names);
  }
  ExampleNode& push(const F& f, const std::string& extra = "");
  template <typename Write>
  void add(const F& f, Write&& write, const std::string& extra = "") {
    json::JsonWriter w;
    write(w);
    push(f, extra).value = w.compact();
  }

  ExampleNode& node_;
  bool off_ = false;
  std::string why_;
};

// ---- the JSON Schema
// -----------------------------------------------------------------------------

class SchemaWriter {
 public:
  explicit SchemaWriter(json::JsonWriter& w) : w_(w) {}

  template <typename T>
  void integer(const F& f, const T& x, json::IntBounds b = json::IntBounds::any()) {
    if (!open(f, "integer")) return;
    detail::write_integer_schema(w_, b);
    w_.field("default", x);
    close();
  }
  void number(const F& f, const double& x, json::Bounds b = json::Bounds::any()) {
    if (!open(f, "number")) return;
    detail::write_number_schema(w_, b);
    w_.field("default", x);
    close();
  }
  void boolean(const F& f, const bool& x) {
    if (!open(f, "boolean")) return;
    w_.field("default", x);
    close();
  }
  void string(const F& f, const std::string& x, json::Text rule = json::Text::Any) {
    if (!open(f, "string")) return;
    if (rule == json::Text::NonEmpty) w_.field("minLength", 1);
    if (f.schema_pattern) w_.field("pattern", f.schema_pattern);
    if (!f.is_required) w_.field("default", x);
    close();
  }
  template <typename E>
  void choice(const F& f, const E& x, const json::Choices<E>& choices) {
    if (!open(f, nullptr)) return;
    std::vector<std::string> names;
    for (const auto& c : choices) names.emplace_back(c.name);
    w_.field("enum", names);
    if (!f.is_required) w_.field("default", json::choice_name(x, choices));
    close();
  }
  void constant(const F& f, const char* value) {
    if (!open(f, nullptr)) return;
    w_.field("const", value);
    close();
  }
  template <typename T>
  void integer_list(const F& f, const std::vector<T>& x, json::IntBounds item,
                    json::IntBounds size) {
    list_of(f, x, "integer", size, [&] { detail::write_integer_schema(w_, item); });
  }
  void number_list(const F& f, const std::vector<double>& x, json::Bounds item,
                   json::IntBounds size) {
    list_of(f, x, "number", size, [&] { detail::write_number_schema(w_, item); });
  }
  void string_list(const F& f, const std::vector<std::string>& x, json::Text rule = json::Text::Any,
                   json::IntBounds size = json::IntBounds::any()) {
    list_of(f, x, "string", size, [&] {
      if (rule == json::Text::NonEmpty) w_.field("minLength", 1);
    });
  }
  template <typename T>
  void custom(const F& f, const T&, const Codec<T>& codec) {
    if (!claim(f)) return;
    w_.key(f.key);
    codec.schema(w_, describe(f));
  }
  template <typename T>
  void custom(const F& f, const std::optional<T>& x, const Codec<T>& codec) {
    custom(f, x ? *x : T{}, codec);
  }
  template <typename T>
  void section(const F& f, T& sub) {
    if (!claim(f)) return;
    w_.key(f.key);
    write_object(sub, f.doc);
  }
  template <typename T>
  void optional_section(const F& f, std::optional<T>& sub) {
    T defaults{};
    section(f, sub ? *sub : defaults);
  }
  template <typename T>
  void section_list(const F& f, std::vector<T>&, json::IntBounds size = {}) {
    if (!open(f, "array")) return;
    T item{};
    w_.key("items");
    write_object(item, "");
    detail::write_size_schema(w_, size);
    close();
  }
  // Both branches are described; a key required only in a branch is not required overall
  // (the schema cannot say when a branch applies, so it never refuses a valid config).
  template <typename Body>
  void when(bool, const std::string& why, Body&& body) {
    const std::string saved = note_;
    if (!why.empty()) note_ = why;
    ++conditional_;
    body();
    --conditional_;
    note_ = saved;
  }
  void check(bool, std::string_view, const std::string&) {}
  template <typename Fn>
  void validate(Fn&&) {}
  bool reading() const { return false; }

  // An object schema: its properties (the fields), required keys, no others.
  template <typename T>
  void write_object(T& sub, const char* doc) {
    w_.begin_object().field("type", "object");
    if (doc && *doc) w_.field("description", doc);
    w_.key("properties").begin_object();
    SchemaWriter v(w_);
    fields(v, sub);
    w_.end_object();
    if (!v.required_.empty()) w_.field("required", v.required_);
    w_.field("additionalProperties", false).end_object();
  }

 private:
  bool claim(const F& f);  // false when a key is already described (two `when` branches)
  bool open(const F& f, const char* type);
  std::string describe(const F& f) const;  // the doc and, in a `when`, when it applies
  void close() { w_.end_object(); }
  // An array of `item_type`s: `item_rules()` adds what each item must be to its "items" schema.
  template <typename T, typename ItemRules>
  void list_of(const F& f, const std::vector<T>& x, const char* item_type, json::IntBounds size,
               ItemRules&& item_rules) {
    if (!open(f, "array")) return;
    w_.key("items").begin_object().field("type", item_type);
    item_rules();
    w_.end_object();
    detail::write_size_schema(w_, size);
    w_.field("default", x);
    close();
  }

  json::JsonWriter& w_;
  std::set<std::string> seen_;
  std::vector<std::string> required_;
  std::string note_;
  int conditional_ = 0;  // inside how many `when`s
};

// ---- entry points -------------------------------------------------------------------------------

// Reads a whole config document into a T (defaults first), throwing every error at once.
template <typename T>
T read_config(const std::string& text, const std::string& source_path) {
  return json::read_document<T>(text, source_path, [](json::ObjectReader& root, T& c) {
    SectionReader v(root);
    fields(v, c);
  });
}

// The resolved config as pretty JSON (ends with a newline).
template <typename T>
std::string write_config(const T& c) {
  json::JsonWriter w;
  SectionWriter(w, /*identity=*/false).write_object(const_cast<T&>(c));
  return w.pretty();
}

// Equality of everything that takes part in a config's identity.
template <typename T>
bool same_config(const T& a, const T& b) {
  json::JsonWriter wa, wb;
  SectionWriter(wa, /*identity=*/true).write_object(const_cast<T&>(a));
  SectionWriter(wb, /*identity=*/true).write_object(const_cast<T&>(b));
  return wa.compact() == wb.compact();
}

// `tessera config TASK --example`: `header` (comment lines) then every field.
template <typename T>
std::string example_config(const std::string& header, T defaults = T{}) {
  ExampleNode root;
  root.doc = header;
  ExampleWriter v(root);
  fields(v, defaults);
  return render_example(root);
}

// `tessera config TASK --schema`.
std::string schema_document(const std::string& title,
                            const std::function<void(SchemaWriter&)>& write_root);
template <typename T>
std::string schema_config(const std::string& title, T defaults = T{}) {
  return schema_document(title, [&](SchemaWriter& s) { s.write_object(defaults, title.c_str()); });
}

}  // namespace tessera::config
