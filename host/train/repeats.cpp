#include "host/train/repeats.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "host/core/error.h"

namespace tessera::train {
namespace {

constexpr size_t kMaxSeeds = 100;

// Every number of `v`, by dotted path, in document order.
void flatten(const rapidjson::Value& v, const std::string& path,
             std::vector<std::pair<std::string, double>>* out) {
  if (v.IsNumber()) {
    out->emplace_back(path, v.GetDouble());
  } else if (v.IsObject()) {
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
      const std::string name(m->name.GetString(), m->name.GetStringLength());
      flatten(m->value, path.empty() ? name : path + "." + name, out);
    }
  }
}

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
};

Stats stats_of(const std::vector<double>& xs) {
  Stats s;
  s.min = *std::min_element(xs.begin(), xs.end());
  s.max = *std::max_element(xs.begin(), xs.end());
  double sum = 0;
  for (double x : xs) sum += x;
  s.mean = sum / static_cast<double>(xs.size());
  if (xs.size() > 1) {
    double ss = 0;
    for (double x : xs) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / static_cast<double>(xs.size() - 1));
  }
  return s;
}

std::string number_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

}  // namespace

std::vector<int64_t> parse_seed_list(const std::string& text) {
  std::vector<int64_t> seeds;
  std::set<int64_t> seen;
  size_t at = 0;
  while (at <= text.size()) {
    const size_t comma = std::min(text.find(',', at), text.size());
    const std::string item = text.substr(at, comma - at);
    int64_t seed = -1;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), seed);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || seed < 0)
      TESSERA_THROW(Usage, "option --seeds expects non-negative integers separated by commas "
                           "(e.g. 1,2,3), got '" << text << "'");
    if (!seen.insert(seed).second)
      TESSERA_THROW(Usage, "option --seeds lists seed " << seed << " twice");
    seeds.push_back(seed);
    if (seeds.size() > kMaxSeeds)
      TESSERA_THROW(Usage, "option --seeds takes at most " << kMaxSeeds << " seeds");
    at = comma + 1;
  }
  return seeds;
}

CommandResult summarize_repeats(const std::vector<int64_t>& seeds,
                                const std::vector<CommandResult>& runs) {
  if (seeds.size() != runs.size() || runs.empty())
    TESSERA_THROW(Internal, "summarize_repeats: " << seeds.size() << " seeds, " << runs.size()
                                                  << " runs");
  rapidjson::Document out(rapidjson::kObjectType);
  auto& alloc = out.GetAllocator();
  rapidjson::Value seed_list(rapidjson::kArrayType), run_list(rapidjson::kArrayType);
  // Values by path, in the first run's order; a path every run has.
  std::vector<std::string> order;
  std::map<std::string, std::vector<double>> values;
  for (size_t i = 0; i < runs.size(); ++i) {
    rapidjson::Document d(&alloc);
    d.Parse(runs[i].json.c_str());
    if (d.HasParseError() || !d.IsObject())
      TESSERA_THROW(Data, "the result of the run with seed " << seeds[i] << " is not a JSON object");
    std::vector<std::pair<std::string, double>> flat;
    flatten(d, "", &flat);
    for (const auto& [path, x] : flat) {
      if (i == 0) order.push_back(path);
      values[path].push_back(x);
    }
    seed_list.PushBack(seeds[i], alloc);
    run_list.PushBack(rapidjson::Value(d, alloc), alloc);
  }
  out.AddMember("command", "train", alloc);
  out.AddMember("seeds", seed_list, alloc);
  out.AddMember("runs", run_list, alloc);
  rapidjson::Value mean(rapidjson::kObjectType), sd(rapidjson::kObjectType),
      lo(rapidjson::kObjectType), hi(rapidjson::kObjectType);
  std::ostringstream summary;
  summary << runs.size() << " runs, seeds";
  for (size_t i = 0; i < seeds.size(); ++i) summary << (i ? "," : " ") << seeds[i];
  summary << ": mean +- sample std (min .. max) of what differs between them\n";
  for (const std::string& path : order) {
    const std::vector<double>& xs = values[path];
    if (xs.size() != runs.size()) continue;  // not in every run's result
    const Stats s = stats_of(xs);
    auto add = [&](rapidjson::Value& to, double x) {
      to.AddMember(rapidjson::Value(path.c_str(), alloc), rapidjson::Value(x), alloc);
    };
    add(mean, s.mean);
    add(sd, s.std);
    add(lo, s.min);
    add(hi, s.max);
    if (s.min != s.max && path.find("seconds") == std::string::npos &&
        path.find("_per_s") == std::string::npos)
      summary << "  " << path << ": " << number_text(s.mean) << " +- " << number_text(s.std)
              << " (" << number_text(s.min) << " .. " << number_text(s.max) << ")\n";
  }
  out.AddMember("mean", mean, alloc);
  out.AddMember("std", sd, alloc);
  out.AddMember("min", lo, alloc);
  out.AddMember("max", hi, alloc);
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  out.Accept(w);
  return {summary.str(), std::string(sb.GetString(), sb.GetSize())};
}

}  // namespace tessera::train
