// The non-template parts of the config declarations: the example's layout and the schema's
// number, size and document helpers.
#include "host/config/declare.h"

#include <cmath>

namespace tessera::config {
namespace detail {

std::string path_below(const std::string& base, std::string_view dotted) {
  std::string path = base;
  size_t start = 0;
  while (start <= dotted.size()) {
    const size_t dot = dotted.find('.', start);
    const size_t end = dot == std::string_view::npos ? dotted.size() : dot;
    path = json::child_path(path, dotted.substr(start, end - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return path;
}

void write_number_schema(json::JsonWriter& w, const json::Bounds& b) {
  if (std::isfinite(b.lo)) w.field(b.lo_open ? "exclusiveMinimum" : "minimum", b.lo);
  if (std::isfinite(b.hi)) w.field(b.hi_open ? "exclusiveMaximum" : "maximum", b.hi);
}

void write_integer_schema(json::JsonWriter& w, const json::IntBounds& b) {
  if (b.lo != json::IntBounds::any().lo) w.field("minimum", b.lo);
  if (b.hi != json::IntBounds::any().hi) w.field("maximum", b.hi);
}

void write_size_schema(json::JsonWriter& w, const json::IntBounds& size) {
  if (size.lo > 0) w.field("minItems", size.lo);
  if (size.hi != json::IntBounds::any().hi) w.field("maxItems", size.hi);
}

}  // namespace detail

// ---- example ------------------------------------------------------------------------------------

namespace {

constexpr size_t kCommentWidth = 96;

// `text` as // comment lines of at most kCommentWidth columns, broken at spaces.
void comment_lines(const std::string& indent, const std::string& text, std::string& out) {
  size_t start = 0;
  while (start < text.size()) {
    const size_t room = kCommentWidth > indent.size() + 3 ? kCommentWidth - indent.size() - 3 : 20;
    size_t end = text.size();
    if (end - start > room) {
      end = text.rfind(' ', start + room);
      if (end == std::string::npos || end <= start) end = text.find(' ', start + room);
      if (end == std::string::npos) end = text.size();
    }
    out += indent + "// " + text.substr(start, end - start) + "\n";
    start = end + 1;
  }
}

void render_members(const std::vector<ExampleNode>& members, size_t depth, bool commented,
                    std::string& out);

void render_node(const ExampleNode& n, size_t depth, bool commented, bool comma, std::string& out) {
  const std::string indent(2 * depth, ' ');
  if (!n.doc.empty()) comment_lines(indent, n.doc, out);
  if (n.off && !commented) {
    comment_lines(indent, "(" + n.why + ")", out);
    commented = true;
  }
  const std::string prefix = indent + (commented ? "// " : "");
  const std::string tail = comma ? "," : "";
  if (!n.value.empty()) {
    out += prefix + "\"" + n.key + "\": " + n.value + tail + "\n";
    return;
  }
  out += prefix + "\"" + n.key + "\": {\n";
  render_members(n.members, depth + 1, commented, out);
  out += prefix + "}" + tail + "\n";
}

void render_members(const std::vector<ExampleNode>& members, size_t depth, bool commented,
                    std::string& out) {
  size_t last_on = members.size();
  for (size_t i = 0; i < members.size(); ++i) {
    if (!members[i].off) last_on = i;
  }
  for (size_t i = 0; i < members.size(); ++i) {
    const bool comma = members[i].off ? true : i != last_on;
    render_node(members[i], depth, commented, comma, out);
  }
}

}  // namespace

std::string render_example(const ExampleNode& root) {
  std::string out;
  if (!root.doc.empty()) comment_lines("", root.doc, out);
  out += "{\n";
  render_members(root.members, 1, false, out);
  out += "}\n";
  return out;
}

ExampleNode& ExampleWriter::push(const F& f, const std::string& extra) {
  ExampleNode n;
  n.key = f.key;
  n.doc = f.doc;
  if (!extra.empty()) n.doc += n.doc.empty() ? extra : " (" + extra + ")";
  if (f.is_required) n.doc += n.doc.empty() ? "required" : " (required)";
  n.off = off_;
  n.why = why_;
  if (!f.written && !off_) {  // written only when set: not set here
    n.off = true;
    n.why = "optional";
  }
  node_.members.push_back(std::move(n));
  return node_.members.back();
}

// ---- schema -------------------------------------------------------------------------------------

bool SchemaWriter::claim(const F& f) {
  if (!seen_.insert(f.key).second) return false;
  if (f.is_required && conditional_ == 0) required_.emplace_back(f.key);
  return true;
}

bool SchemaWriter::open(const F& f, const char* type) {
  if (!claim(f)) return false;
  w_.key(f.key).begin_object();
  if (type) w_.field("type", type);
  const std::string description = describe(f);
  if (!description.empty()) w_.field("description", description);
  return true;
}

std::string SchemaWriter::describe(const F& f) const {
  std::string description = f.doc;
  if (!note_.empty()) description += (description.empty() ? "" : " ") + ("(" + note_ + ")");
  return description;
}

std::string schema_document(const std::string& title,
                            const std::function<void(SchemaWriter&)>& write_root) {
  json::JsonWriter body;
  SchemaWriter s(body);
  write_root(s);
  rapidjson::Document parsed;
  parsed.Parse(body.compact().c_str());
  rapidjson::Document out;
  out.SetObject();
  auto& a = out.GetAllocator();
  out.AddMember("$schema", "https://json-schema.org/draft/2020-12/schema", a);
  out.AddMember("title", rapidjson::Value(("tessera " + title + " config").c_str(), a), a);
  for (auto& m : parsed.GetObject()) {
    if (std::string(m.name.GetString()) == "description") continue;
    out.AddMember(rapidjson::Value(m.name, a), rapidjson::Value(m.value, a), a);
  }
  return json::format_pretty(out) + "\n";
}

}  // namespace tessera::config
