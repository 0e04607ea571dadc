#include "host/scheduler/commands.h"

#include <dirent.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/json_fields.h"
#include "host/scheduler/curve_png.h"
#include "host/scheduler/stage_helpers.h"

namespace tessera::scheduler {

namespace {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string fmt(double v, int digits = 4) {
  if (std::isnan(v)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof(b), "%.*f", digits, v);
  return b;
}

double number_at(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject() || !obj.HasMember(key) || !obj[key].IsNumber()) return NAN;
  return obj[key].GetDouble();
}

// The metrics a run is known by: the evaluate stage's of a pipeline run, else the test (or
// validation) metrics of a train run.
struct Headline {
  std::string kind;  // "pipeline" | "train" | "?"
  std::string name;
  double auc = NAN, logloss = NAN, accuracy = NAN;
  std::string source;                    // which metrics these are
  std::string metrics_json;              // the whole metrics object they came from ("" when none)
  std::vector<std::string> class_names;  // a classifier's, when its result lists them
};

std::string to_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// The class names a classification result lists: "classes" (text) or "class_names" (image).
std::vector<std::string> class_names_in(const rapidjson::Value& result) {
  std::vector<std::string> names;
  if (!result.IsObject()) return names;
  for (const char* key : {"class_names", "classes"}) {
    if (!result.HasMember(key) || !result[key].IsArray()) continue;
    for (const auto& v : result[key].GetArray())
      names.push_back(v.IsString() ? v.GetString() : "?");
    return names;
  }
  return names;
}

Headline headline_of(const std::string& run_dir) {
  Headline h;
  const std::string path = run_dir + "/result.json";
  if (!path_exists(path)) return h;
  rapidjson::Document d;
  const std::string text = read_file(path);
  if (!json_nesting_within(text.data(), text.size(), kJsonMaxNesting)) return h;
  d.Parse(text.c_str(), text.size());
  if (d.HasParseError() || !d.IsObject()) return h;
  auto take = [&](const rapidjson::Value& m, const std::string& source) {
    h.auc = number_at(m, "auc");
    h.logloss = number_at(m, "logloss");
    h.accuracy = number_at(m, "accuracy");
    h.source = source;
    h.metrics_json = to_json(m);
  };
  if (d.HasMember("stages") && d["stages"].IsObject()) {
    h.kind = "pipeline";
    h.name = d.HasMember("pipeline") && d["pipeline"].IsString() ? d["pipeline"].GetString() : "";
    for (const auto& s : d["stages"].GetObject()) {
      const auto& v = s.value;
      if (v.IsObject() && v.HasMember("kind") && v["kind"].IsString() &&
          std::string(v["kind"].GetString()) == "evaluate" && v.HasMember("result") &&
          v["result"].IsObject() && v["result"].HasMember("metrics"))
        take(v["result"]["metrics"], std::string(s.name.GetString()) + " (test)");
    }
    if (h.source.empty())  // no evaluate stage: the train stage's own test metrics
      for (const auto& s : d["stages"].GetObject()) {
        const auto& v = s.value;
        if (v.IsObject() && v.HasMember("kind") && v["kind"].IsString() &&
            std::string(v["kind"].GetString()) == "train" && v.HasMember("result") &&
            v["result"].IsObject() && v["result"].HasMember("test") &&
            v["result"]["test"].IsObject())
          take(v["result"]["test"], std::string(s.name.GetString()) + " (test)");
      }
    for (const auto& s : d["stages"].GetObject())  // the trained model's classes
      if (s.value.IsObject() && s.value.HasMember("result") && h.class_names.empty())
        h.class_names = class_names_in(s.value["result"]);
  } else {
    h.kind = "train";
    h.name = d.HasMember("name") && d["name"].IsString() ? d["name"].GetString() : "";
    if (d.HasMember("test"))
      take(d["test"], "test");
    else if (d.HasMember("validation"))
      take(d["validation"], "validation");
    else if (d.HasMember("metrics"))  // recommend
      take(d["metrics"], "test");
    h.class_names = class_names_in(d);
  }
  return h;
}

struct EpochPoint {
  double epoch = NAN, train_loss = NAN, val_logloss = NAN, val_auc = NAN, val_accuracy = NAN;
};

std::vector<EpochPoint> read_metrics(const std::string& path) {
  std::vector<EpochPoint> pts;
  if (!path_exists(path)) return pts;
  std::istringstream in(read_file(path));
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    rapidjson::Document d;
    if (json_nesting_within(line.data(), line.size(), kJsonMaxNesting))
      d.Parse(line.c_str(), line.size());
    if (!d.IsObject() || d.HasParseError())
      TESSERA_THROW(Data, path << ":" << lineno << ": not a JSON object");
    EpochPoint p;
    p.epoch = number_at(d, "epoch");
    p.train_loss = number_at(d, "train_loss");
    if (d.HasMember("validation")) {
      p.val_logloss = number_at(d["validation"], "logloss");
      p.val_auc = number_at(d["validation"], "auc");
      p.val_accuracy = number_at(d["validation"], "accuracy");
    }
    // The image and text-generation tasks log flat keys (loss in nats per token for text).
    if (std::isnan(p.train_loss)) p.train_loss = number_at(d, "train_nats_per_token");
    if (std::isnan(p.val_logloss)) p.val_logloss = number_at(d, "validation_nats_per_token");
    if (std::isnan(p.val_accuracy)) p.val_accuracy = number_at(d, "validation_accuracy");
    pts.push_back(p);
  }
  return pts;
}

struct Series {
  std::string label;
  std::string colour;
  std::vector<std::pair<double, double>> xy;
};

// A line chart as inline SVG: axes with min/max ticks, one polyline per series, a legend.
std::string svg_chart(const std::string& title, const std::vector<Series>& series,
                      const std::string& x_label = "epoch") {
  const double W = 560, H = 300, L = 60, R = 150, T = 30, B = 40;
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const Series& s : series)
    for (auto [x, y] : s.xy) {
      if (std::isnan(y)) continue;
      xmin = std::min(xmin, x);
      xmax = std::max(xmax, x);
      ymin = std::min(ymin, y);
      ymax = std::max(ymax, y);
    }
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\" role=\"img\" aria-label=\"" << html_escape(title)
    << "\">"
    << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    << "<text x=\"" << L << "\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\">"
    << html_escape(title) << "</text>";
  if (!std::isfinite(xmin)) {
    o << "<text x=\"" << L << "\" y=\"" << H / 2
      << "\" font-family=\"sans-serif\">no data</text></svg>";
    return o.str();
  }
  if (xmax == xmin) xmax = xmin + 1;
  if (ymax == ymin) {
    ymax += 0.5;
    ymin -= 0.5;
  }
  const double pad = (ymax - ymin) * 0.05;
  ymin -= pad;
  ymax += pad;
  auto X = [&](double x) { return L + (x - xmin) / (xmax - xmin) * (W - L - R); };
  auto Y = [&](double y) { return H - B - (y - ymin) / (ymax - ymin) * (H - T - B); };
  o << "<g stroke=\"#444\" stroke-width=\"1\"><line x1=\"" << L << "\" y1=\"" << H - B << "\" x2=\""
    << W - R << "\" y2=\"" << H - B << "\"/><line x1=\"" << L << "\" y1=\"" << T << "\" x2=\"" << L
    << "\" y2=\"" << H - B
    << "\"/></g><g font-size=\"11\" font-family=\"sans-serif\" fill=\"#333\">"
    << "<text x=\"" << L - 4 << "\" y=\"" << Y(ymax) + 4 << "\" text-anchor=\"end\">"
    << fmt(ymax, 3) << "</text>"
    << "<text x=\"" << L - 4 << "\" y=\"" << Y(ymin) << "\" text-anchor=\"end\">" << fmt(ymin, 3)
    << "</text>"
    << "<text x=\"" << L << "\" y=\"" << H - B + 16 << "\">" << fmt(xmin, 0) << "</text>"
    << "<text x=\"" << W - R << "\" y=\"" << H - B + 16 << "\" text-anchor=\"end\">" << fmt(xmax, 0)
    << "</text>"
    << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\">"
    << html_escape(x_label) << "</text></g>";
  int row = 0;
  for (const Series& s : series) {
    std::ostringstream pts;
    for (auto [x, y] : s.xy)
      if (!std::isnan(y)) pts << fmt(X(x), 1) << "," << fmt(Y(y), 1) << " ";
    o << "<polyline fill=\"none\" stroke=\"" << s.colour << "\" stroke-width=\"2\" points=\""
      << pts.str() << "\"/>";
    for (auto [x, y] : s.xy)
      if (!std::isnan(y))
        o << "<circle cx=\"" << fmt(X(x), 1) << "\" cy=\"" << fmt(Y(y), 1) << "\" r=\"2.5\" fill=\""
          << s.colour << "\"/>";
    const double ly = T + 14 + 18 * row++;
    o << "<line x1=\"" << W - R + 10 << "\" y1=\"" << ly - 4 << "\" x2=\"" << W - R + 30
      << "\" y2=\"" << ly - 4 << "\" stroke=\"" << s.colour << "\" stroke-width=\"2\"/><text x=\""
      << W - R + 34 << "\" y=\"" << ly << "\" font-size=\"11\" font-family=\"sans-serif\">"
      << html_escape(s.label) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

// Points of a plot on the unit square from a JSON array of [x, y, ...] arrays: entries that are
// not arrays of at least `width` numbers, or whose x or y lie outside [0, 1], are passed over
// (a hand-edited result file still reports).
std::vector<std::vector<double>> unit_points(const rapidjson::Value& a, rapidjson::SizeType width) {
  std::vector<std::vector<double>> pts;
  if (!a.IsArray()) return pts;
  for (const auto& p : a.GetArray()) {
    if (!p.IsArray() || p.Size() < width) continue;
    std::vector<double> v;
    for (rapidjson::SizeType i = 0; i < width && p[i].IsNumber(); ++i)
      v.push_back(p[i].GetDouble());
    if (v.size() == width && v[0] >= 0 && v[0] <= 1 && v[1] >= 0 && v[1] <= 1) pts.push_back(v);
  }
  return pts;
}

// A square plot over [0, 1] x [0, 1]: the frame, ticks at 0, 0.5 and 1, axis labels and the
// dashed diagonal (`diagonal` names it in the legend). Returns the open <svg>; callers draw with
// unit_x / unit_y and close it.
constexpr double kUnitW = 380, kUnitH = 380, kUnitL = 56, kUnitR = 16, kUnitT = 34, kUnitB = 48;
double unit_x(double x) {
  return kUnitL + x * (kUnitW - kUnitL - kUnitR);
}
double unit_y(double y) {
  return kUnitH - kUnitB - y * (kUnitH - kUnitT - kUnitB);
}

std::string unit_frame(const std::string& title, const std::string& x_label,
                       const std::string& y_label, const std::string& diagonal) {
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kUnitW << "\" height=\"" << kUnitH
    << "\" viewBox=\"0 0 " << kUnitW << " " << kUnitH << "\" role=\"img\" aria-label=\""
    << html_escape(title) << "\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
    << "<text x=\"" << kUnitL << "\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\">"
    << html_escape(title) << "</text><g stroke=\"#444\" stroke-width=\"1\" fill=\"none\">"
    << "<rect x=\"" << unit_x(0) << "\" y=\"" << unit_y(1) << "\" width=\"" << unit_x(1) - unit_x(0)
    << "\" height=\"" << unit_y(0) - unit_y(1) << "\"/></g>"
    << "<line x1=\"" << unit_x(0) << "\" y1=\"" << unit_y(0) << "\" x2=\"" << unit_x(1)
    << "\" y2=\"" << unit_y(1) << "\" stroke=\"#999\" stroke-dasharray=\"5,4\"/>"
    << "<g font-size=\"11\" font-family=\"sans-serif\" fill=\"#333\">";
  for (double t : {0.0, 0.5, 1.0})
    o << "<text x=\"" << unit_x(t) << "\" y=\"" << unit_y(0) + 14 << "\" text-anchor=\"middle\">"
      << fmt(t, 1) << "</text><text x=\"" << unit_x(0) - 4 << "\" y=\"" << unit_y(t) + 4
      << "\" text-anchor=\"end\">" << fmt(t, 1) << "</text>";
  o << "<text x=\"" << (unit_x(0) + unit_x(1)) / 2 << "\" y=\"" << kUnitH - 10
    << "\" text-anchor=\"middle\">" << html_escape(x_label) << "</text><text x=\"14\" y=\""
    << (unit_y(0) + unit_y(1)) / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
    << (unit_y(0) + unit_y(1)) / 2 << ")\">" << html_escape(y_label) << "</text><text x=\""
    << unit_x(1) - 4 << "\" y=\"" << unit_y(0) - 6 << "\" text-anchor=\"end\" fill=\"#777\">- - "
    << html_escape(diagonal) << "</text></g>";
  return o.str();
}

// The ROC curve: one polyline through the stored (false positive rate, true positive rate)
// points.
std::string svg_roc(const std::vector<std::vector<double>>& pts, double auc) {
  std::ostringstream o;
  o << unit_frame("ROC curve (test), AUC " + fmt(auc), "false positive rate", "true positive rate",
                  "chance")
    << "<polyline class=\"roc\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"";
  for (size_t i = 0; i < pts.size(); ++i)
    o << (i ? " " : "") << fmt(unit_x(pts[i][0]), 1) << "," << fmt(unit_y(pts[i][1]), 1);
  o << "\"/></svg>";
  return o.str();
}

// The reliability plot: observed positive rate against mean predicted probability per bin, a
// dot per bin sized by its rows (hover: the numbers).
std::string svg_reliability(const std::vector<std::vector<double>>& bins) {
  double most = 1;
  for (const auto& b : bins) most = std::max(most, b[2]);
  std::ostringstream o, line;
  o << unit_frame("Calibration (test): observed vs predicted", "mean predicted probability",
                  "observed positive rate", "perfect calibration");
  for (size_t i = 0; i < bins.size(); ++i)
    line << (i ? " " : "") << fmt(unit_x(bins[i][0]), 1) << "," << fmt(unit_y(bins[i][1]), 1);
  o << "<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"" << line.str()
    << "\"/>";
  for (const auto& b : bins)
    o << "<circle class=\"calibration-bin\" cx=\"" << fmt(unit_x(b[0]), 1) << "\" cy=\""
      << fmt(unit_y(b[1]), 1) << "\" r=\"" << fmt(3 + 5 * std::sqrt(std::max(b[2], 0.0) / most), 1)
      << "\" fill=\"#d62728\" fill-opacity=\"0.7\"><title>mean predicted " << fmt(b[0])
      << ", observed " << fmt(b[1]) << ", " << fmt(b[2], 0) << " rows</title></circle>";
  o << "</svg>";
  return o.str();
}

// A binary classifier's test plots, when its metrics carry them ("roc", "calibration").
std::string binary_plots_html(const rapidjson::Value& m) {
  std::vector<std::vector<double>> roc, cal;
  if (m.HasMember("roc")) roc = unit_points(m["roc"], 2);
  if (m.HasMember("calibration")) cal = unit_points(m["calibration"], 3);
  if (roc.empty() && cal.empty()) return "";
  std::ostringstream o;
  o << "<h3>ROC curve and calibration (test set)</h3><div>";
  if (!roc.empty()) o << svg_roc(roc, number_at(m, "auc")) << " ";
  if (!cal.empty()) o << svg_reliability(cal);
  o << "</div>\n";
  return o.str();
}

// A recommender's HR and NDCG at K = 1, 2, ... ("<metric>_at_k" arrays): one line each.
std::string rank_curves_html(const rapidjson::Value& m) {
  static const char* const kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
  std::vector<Series> series;
  for (const auto& c : m.GetObject()) {
    const std::string name = c.name.GetString();
    if (name.size() < 6 || name.compare(name.size() - 5, 5, "_at_k") != 0 || !c.value.IsArray())
      continue;
    Series s{name.substr(0, name.size() - 5) + "@K", kColours[series.size() % 4], {}};
    for (const auto& v : c.value.GetArray())
      s.xy.emplace_back(static_cast<double>(s.xy.size() + 1), v.IsNumber() ? v.GetDouble() : NAN);
    series.push_back(std::move(s));
  }
  if (series.empty()) return "";
  return "<h3>Ranking at each cut-off K (test)</h3><div>" +
         svg_chart("HR and NDCG at K", series, "K (length of the top list)") + "</div>\n";
}

// A classifier's confusion matrix ("confusion_matrix" or "confusion": rows true class, columns
// predicted), labelled with the class names when the result lists one per row. Each cell shows
// its count and its share of the true class's row, shaded by that share so the diagonal stands
// out.
std::string confusion_html(const rapidjson::Value& m, const std::vector<std::string>& names) {
  const char* key = m.HasMember("confusion_matrix") ? "confusion_matrix" : "confusion";
  if (!m.HasMember(key) || !m[key].IsArray()) return "";
  const auto& cm = m[key].GetArray();
  rapidjson::SizeType cols = 0;
  for (const auto& row : cm) cols = std::max(cols, row.IsArray() ? row.Size() : 0u);
  auto label = [&](rapidjson::SizeType i) {
    return names.size() == cm.Size() && i < names.size() ? html_escape(names[i])
                                                         : std::to_string(i);
  };
  std::ostringstream o;
  o << "<h3>Confusion matrix</h3><p>rows: true class, columns: predicted class; each cell: rows,"
    << " and their share of the true class</p><table class=\"cm\"><tr><th>true \\ predicted</th>";
  for (rapidjson::SizeType c = 0; c < cols; ++c) o << "<th>" << label(c) << "</th>";
  o << "</tr>";
  for (rapidjson::SizeType r = 0; r < cm.Size(); ++r) {
    if (!cm[r].IsArray()) continue;
    double total = 0;
    for (const auto& v : cm[r].GetArray()) total += v.IsNumber() ? v.GetDouble() : 0;
    o << "<tr><th>" << label(r) << "</th>";
    for (const auto& v : cm[r].GetArray()) {
      const double x = v.IsNumber() ? v.GetDouble() : 0;
      const double share = total > 0 ? x / total : 0;
      const int shade = static_cast<int>(255 - 155 * std::min(std::max(share, 0.0), 1.0));
      o << "<td style=\"background:rgb(" << shade << "," << shade << ",255)\">" << fmt(x, 0)
        << "<br><small>" << (total > 0 ? fmt(100 * share, 1) + "%" : "-") << "</small></td>";
    }
    o << "</tr>";
  }
  o << "</table>\n";
  return o.str();
}

// Every numeric metric of the final metrics object (ranking metrics such as HR@10 and NDCG@10
// included, whatever the task names them), then the plots or the confusion matrix the run has.
std::string metrics_details_html(const std::string& metrics_json,
                                 const std::vector<std::string>& class_names) {
  if (metrics_json.empty()) return "";
  rapidjson::Document d;
  if (!json_nesting_within(metrics_json.data(), metrics_json.size(), kJsonMaxNesting)) return "";
  d.Parse(metrics_json.c_str(), metrics_json.size());
  if (d.HasParseError() || !d.IsObject()) return "";
  std::ostringstream o;
  o << "<h3>All final metrics</h3><table><tr><th>metric</th><th>value</th></tr>";
  for (const auto& m : d.GetObject())
    if (m.value.IsNumber())
      o << "<tr><td>" << html_escape(m.name.GetString()) << "</td><td>"
        << (m.value.IsInt64() ? std::to_string(m.value.GetInt64()) : fmt(m.value.GetDouble()))
        << "</td></tr>";
  o << "</table>\n"
    << binary_plots_html(d) << rank_curves_html(d) << confusion_html(d, class_names);
  return o.str();
}

// The stages of a pipeline run with when each started and ended (stages.jsonl): independent
// stages that ran side by side show overlapping intervals.
std::string stages_html(const std::string& path) {
  if (!path_exists(path)) return "";
  std::ostringstream o;
  o << "<h2>Stages</h2><table><tr><th>stage</th><th>kind</th><th>cached</th><th>start (s)</th>"
    << "<th>end (s)</th><th>seconds</th></tr>";
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) {
    rapidjson::Document d;
    if (json_nesting_within(line.data(), line.size(), kJsonMaxNesting))
      d.Parse(line.c_str(), line.size());
    if (!d.IsObject() || d.HasParseError() || !d.HasMember("stage") || !d["stage"].IsString())
      continue;  // a line cut by a crash: the rest of the report still stands
    const bool cached = d.HasMember("cached") && d["cached"].IsBool() && d["cached"].GetBool();
    o << "<tr><td>" << html_escape(d["stage"].GetString()) << "</td><td>"
      << html_escape(d.HasMember("kind") && d["kind"].IsString() ? d["kind"].GetString() : "")
      << "</td><td>" << (cached ? "yes" : "no") << "</td><td>" << fmt(number_at(d, "start"), 2)
      << "</td><td>" << fmt(number_at(d, "end"), 2) << "</td><td>"
      << fmt(number_at(d, "seconds"), 2) << "</td></tr>";
  }
  o << "</table>\n";
  return o.str();
}

std::string pretty_json_file(const std::string& path) {
  if (!path_exists(path)) return "";
  return read_file(path);  // shown as written: configs are already laid out for reading
}

}  // namespace

CommandResult run_command(const std::string& pipeline_path, const StageRegistry& registry,
                          const RunOptions& options, Execution execution) {
  const PipelineSpec spec = load_pipeline_spec(pipeline_path);
  CommandResult r;
  if (execution == Execution::DryRun) {
    const std::vector<PlannedStage> plan = plan_pipeline(spec, registry, options);
    r.summary = describe_plan(spec, plan);
    std::ostringstream j;
    j << "{\"command\":\"run\",\"dry_run\":true,\"pipeline\":" << json_quote(spec.name)
      << ",\"stages\":[";
    for (size_t i = 0; i < plan.size(); ++i)
      j << (i ? "," : "") << "{\"name\":" << json_quote(plan[i].name)
        << ",\"kind\":" << json_quote(stage_kind_name(plan[i].kind))
        << ",\"key\":" << json_quote(plan[i].key) << ",\"state\":"
        << json_quote(plan[i].state == StageState::Cached    ? "cached"
                      : plan[i].state == StageState::Partial ? "partial"
                                                             : "pending")
        << ",\"dir\":" << json_quote(plan[i].dir) << "}";
    j << "]}";
    r.json = j.str();
    return r;
  }
  PipelineRun run = run_pipeline(spec, registry, options);
  std::ostringstream s;
  s << "pipeline " << spec.name << ": " << run.stages.size() << " stages\n";
  for (const StageRecord& st : run.stages) {
    std::string first = st.summary.substr(0, st.summary.find('\n'));
    s << "  " << st.plan.name << " (" << stage_kind_name(st.plan.kind)
      << "): " << (st.ran ? "ran, " + fmt(st.seconds, 2) + " s" : std::string("cached"))
      << (st.ran ? " - " + first : "") << "\n";
  }
  const Headline h = headline_of(run.run_dir);
  if (!std::isnan(h.auc))
    s << "  " << h.source << ": AUC " << fmt(h.auc) << "  logloss " << fmt(h.logloss)
      << "  accuracy " << fmt(h.accuracy) << "\n";
  s << "  run directory: " << run.run_dir << "\n";
  // Every finished run gets its report (tessera report RUN_DIR rewrites it).
  report_command(run.run_dir);
  const std::string report = run.run_dir + "/report.html";
  s << "  report: " << report << " (curves also in " << run.run_dir << "/curves.png)\n";
  r.summary = s.str();
  r.json = run.result_json.substr(0, run.result_json.size() - 1) +
           ",\"report\":" + json_quote(report) + "}";
  return r;
}

CommandResult runs_command(const std::string& runs_dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(runs_dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n == "." || n == ".." || n == "cache") continue;
      if (path_exists(runs_dir + "/" + n + "/result.json") ||
          path_exists(runs_dir + "/" + n + "/metrics.jsonl"))
        names.push_back(n);
    }
    ::closedir(d);
  } else {
    TESSERA_THROW(Io, "cannot list runs in '" << runs_dir << "': no such directory");
  }
  std::sort(names.begin(), names.end());
  std::ostringstream s, j;
  char line[512];
  std::snprintf(line, sizeof(line), "%-44s %-9s %-8s %-8s %-8s %s\n", "run", "kind", "AUC",
                "logloss", "accuracy", "metrics");
  s << line;
  j << "{\"command\":\"runs\",\"runs_dir\":" << json_quote(runs_dir) << ",\"runs\":[";
  for (size_t i = 0; i < names.size(); ++i) {
    const Headline h = headline_of(runs_dir + "/" + names[i]);
    const bool finished = !h.kind.empty();
    std::snprintf(line, sizeof(line), "%-44s %-9s %-8s %-8s %-8s %s\n", names[i].c_str(),
                  finished ? h.kind.c_str() : "unfinished", fmt(h.auc).c_str(),
                  fmt(h.logloss).c_str(), fmt(h.accuracy).c_str(), h.source.c_str());
    s << line;
    auto num = [](double v) { return std::isnan(v) ? std::string("null") : fmt(v, 6); };
    j << (i ? "," : "") << "{\"run\":" << json_quote(names[i])
      << ",\"finished\":" << (finished ? "true" : "false") << ",\"auc\":" << num(h.auc)
      << ",\"logloss\":" << num(h.logloss) << ",\"accuracy\":" << num(h.accuracy) << "}";
  }
  j << "]}";
  if (names.empty()) s << "(no runs in " << runs_dir << ")\n";
  return {s.str(), j.str()};
}

std::string render_report_html(const std::string& run_dir) {
  if (!path_exists(run_dir)) TESSERA_THROW(Io, "run directory '" << run_dir << "' does not exist");
  const std::vector<EpochPoint> pts = read_metrics(run_dir + "/metrics.jsonl");
  Series train_loss{"train loss", "#1f77b4", {}}, val_loss{"validation logloss", "#d62728", {}};
  Series val_auc{"validation AUC", "#2ca02c", {}}, val_acc{"validation accuracy", "#9467bd", {}};
  for (const EpochPoint& p : pts) {
    train_loss.xy.emplace_back(p.epoch, p.train_loss);
    val_loss.xy.emplace_back(p.epoch, p.val_logloss);
    val_auc.xy.emplace_back(p.epoch, p.val_auc);
    val_acc.xy.emplace_back(p.epoch, p.val_accuracy);
  }
  const Headline h = headline_of(run_dir);
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tessera report: "
    << html_escape(run_dir)
    << "</title><style>body{font-family:sans-serif;margin:2em;color:#222;background:#fff}"
    << "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px "
       "10px;text-align:right}"
    << "pre{background:#f4f4f4;padding:1em;overflow:auto;font-size:12px}</style></head><body>\n"
    << "<h1>tessera run report</h1><p>" << html_escape(run_dir) << "</p>\n"
    << "<p>Curves as a PNG: curves.png (loss above; AUC and accuracy below).</p>\n";
  o << "<h2>Final metrics</h2>";
  if (!std::isnan(h.auc) || !std::isnan(h.accuracy)) {
    o << "<table><tr><th>metrics</th><th>AUC</th><th>logloss</th><th>accuracy</th></tr><tr><td>"
      << html_escape(h.source) << "</td><td>" << fmt(h.auc) << "</td><td>" << fmt(h.logloss)
      << "</td><td>" << fmt(h.accuracy) << "</td></tr></table>\n";
  } else if (h.source.empty()) {
    o << "<p>No final metrics (the run has not finished).</p>\n";
  }
  o << metrics_details_html(h.metrics_json, h.class_names);
  o << "<h2>Training curves</h2><div>" << svg_chart("loss per epoch", {train_loss, val_loss})
    << "</div><div>" << svg_chart("validation AUC and accuracy per epoch", {val_auc, val_acc})
    << "</div>\n";
  o << "<h2>Per-epoch metrics</h2><table><tr><th>epoch</th><th>train loss</th><th>val logloss</th>"
    << "<th>val AUC</th><th>val accuracy</th></tr>";
  for (const EpochPoint& p : pts)
    o << "<tr><td>" << fmt(p.epoch, 0) << "</td><td>" << fmt(p.train_loss) << "</td><td>"
      << fmt(p.val_logloss) << "</td><td>" << fmt(p.val_auc) << "</td><td>" << fmt(p.val_accuracy)
      << "</td></tr>";
  o << "</table>\n" << stages_html(run_dir + "/stages.jsonl");
  for (const char* f : {"pipeline.json", "config.json", "environment.json"}) {
    const std::string text = pretty_json_file(run_dir + "/" + f);
    if (!text.empty()) o << "<h2>" << f << "</h2><pre>" << html_escape(text) << "</pre>\n";
  }
  o << "</body></html>\n";
  return o.str();
}

CommandResult report_command(const std::string& run_dir) {
  const std::string path = run_dir + "/report.html";
  write_file_atomic(path, render_report_html(run_dir));
  // The same curves as a PNG, in the HTML legend's colours: loss above, AUC/accuracy below.
  CurveSeries train_loss{"train loss", 0x1f77b4, {}}, val_loss{"validation logloss", 0xd62728, {}};
  CurveSeries val_auc{"validation AUC", 0x2ca02c, {}}, val_acc{"validation accuracy", 0x9467bd, {}};
  for (const EpochPoint& p : read_metrics(run_dir + "/metrics.jsonl")) {
    train_loss.xy.emplace_back(p.epoch, p.train_loss);
    val_loss.xy.emplace_back(p.epoch, p.val_logloss);
    val_auc.xy.emplace_back(p.epoch, p.val_auc);
    val_acc.xy.emplace_back(p.epoch, p.val_accuracy);
  }
  const std::string png = run_dir + "/curves.png";
  write_curves_png(
      png, {{"loss per epoch", "loss", {train_loss, val_loss}},
            {"validation AUC and accuracy per epoch", "AUC / accuracy", {val_auc, val_acc}}});
  return {"wrote " + path + " and " + png + "\n",
          "{\"command\":\"report\",\"run_dir\":" + json_quote(run_dir) +
              ",\"report\":" + json_quote(path) + ",\"curves_png\":" + json_quote(png) + "}"};
}

}  // namespace tessera::scheduler
