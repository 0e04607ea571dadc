// `tessera report`: a self-contained HTML page with inline SVG curves, and curves.png. Where
// headless Chromium is installed, the page is rendered and the screenshot must not be blank.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/commands.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace tessera::scheduler {
namespace {

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/sched_report_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  make_directories(d);
  return d;
}

// A finished pipeline run directory with three epochs of metrics.
std::string fake_run(const std::string& name) {
  const std::string d = temp_dir(name);
  write_file_atomic(
      d + "/metrics.jsonl",
      R"({"epoch":1,"train_loss":0.60,"validation":{"auc":0.80,"logloss":0.50,"accuracy":0.75}}
{"epoch":2,"train_loss":0.45,"validation":{"auc":0.85,"logloss":0.42,"accuracy":0.80}}
{"epoch":3,"train_loss":0.40,"validation":{"auc":0.87,"logloss":0.40,"accuracy":0.82}}
)");
  write_file_atomic(
      d + "/result.json",
      R"({"command":"run","pipeline":"p","stages":{"evaluate":{"kind":"evaluate","result":{"metrics":{"auc":0.8765,"logloss":0.3999,"accuracy":0.8123}}}}})");
  write_file_atomic(d + "/config.json", "{\"name\": \"a <config>\"}\n");
  return d;
}

struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
};

Image read_png(const std::string& path) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  EXPECT_TRUE(png_image_begin_read_from_file(&img, path.c_str())) << path << ": " << img.message;
  img.format = PNG_FORMAT_RGB;
  Image out;
  out.w = static_cast<int>(img.width);
  out.h = static_cast<int>(img.height);
  out.rgb.resize(PNG_IMAGE_SIZE(img));
  EXPECT_TRUE(png_image_finish_read(&img, nullptr, out.rgb.data(), 0, nullptr)) << img.message;
  return out;
}

// Pixels that are not (near) white, and the distinct colours among them.
std::pair<size_t, size_t> ink(const Image& im) {
  size_t n = 0;
  std::set<uint32_t> colours;
  for (size_t i = 0; i + 2 < im.rgb.size(); i += 3) {
    const uint8_t r = im.rgb[i], g = im.rgb[i + 1], b = im.rgb[i + 2];
    if (r > 240 && g > 240 && b > 240) continue;
    ++n;
    colours.insert((r >> 4) << 8 | (g >> 4) << 4 | (b >> 4));
  }
  return {n, colours.size()};
}

TEST(Report, HtmlIsSelfContainedWithCurvesMetricsAndEscapedConfig) {
  const std::string d = fake_run("html");
  CommandResult r = report_command(d);
  EXPECT_NE(r.json.find("report.html"), std::string::npos);
  const std::string html = read_file(d + "/report.html");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  size_t polylines = 0;
  for (size_t p = html.find("<polyline"); p != std::string::npos; p = html.find("<polyline", p + 1))
    ++polylines;
  EXPECT_EQ(polylines, 4u);  // train loss, validation logloss, AUC, accuracy
  EXPECT_NE(html.find("0.8765"), std::string::npos);            // the final AUC
  EXPECT_NE(html.find("a &lt;config&gt;"), std::string::npos);  // the config, escaped
  EXPECT_EQ(html.find("a <config>"), std::string::npos);
}

TEST(Report, CurvesPngHasTheSeriesColours) {
  const std::string d = fake_run("png");
  report_command(d);
  Image im = read_png(d + "/curves.png");
  EXPECT_EQ(im.w, 720);
  EXPECT_EQ(im.h, 560);
  bool blue = false, red = false, green = false, purple = false;
  for (size_t i = 0; i + 2 < im.rgb.size(); i += 3) {
    const uint32_t c = im.rgb[i] << 16 | im.rgb[i + 1] << 8 | im.rgb[i + 2];
    blue |= c == 0x1f77b4;
    red |= c == 0xd62728;
    green |= c == 0x2ca02c;
    purple |= c == 0x9467bd;
  }
  EXPECT_TRUE(blue && red && green && purple);
}

TEST(Report, UnfinishedRunStillReportsAndBadMetricsLineIsNamed) {
  const std::string d = temp_dir("unfinished");
  write_file_atomic(d + "/metrics.jsonl", "{\"epoch\":1,\"train_loss\":0.6}\n");
  EXPECT_NE(render_report_html(d).find("has not finished"), std::string::npos);
  write_file_atomic(d + "/metrics.jsonl", "{\"epoch\":1,\"train_loss\":0.6}\n{oops\n");
  try {
    render_report_html(d);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl:2"), std::string::npos) << e.what();
  }
  try {
    report_command(d + "/nope");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
  }
}

// Run files edited or damaged by hand are read as far as they make sense, never crashed on:
// stage entries that are not objects (HasMember on them was undefined behaviour) and JSON
// nested deep enough to exhaust the parser's stack are passed over; a deep metrics line is
// named like any other bad line.
TEST(Report, HostileRunFilesAreSkippedOrNamedNotCrashedOn) {
  const std::string runs = temp_dir("hostile");
  const std::string d = runs + "/r1";
  make_directories(d);
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  write_file_atomic(d + "/result.json",
                    R"({"command":"run","pipeline":"p","stages":{"a":5,"b":[1],"c":"x",)"
                    R"("d":{"kind":"evaluate","result":{"metrics":{"auc":0.5}}}}})");
  write_file_atomic(d + "/stages.jsonl", deep + "\n" + R"({"stage":"d","kind":"train"})" + "\n");
  write_file_atomic(d + "/metrics.jsonl", "{\"epoch\":1,\"train_loss\":0.6}\n");
  EXPECT_NE(render_report_html(d).find("0.5000"), std::string::npos);
  EXPECT_NE(runs_command(runs).summary.find("r1"), std::string::npos);
  write_file_atomic(d + "/result.json", R"({"name":"n","test":)" + deep + "}");
  EXPECT_NE(runs_command(runs).summary.find("r1"), std::string::npos);
  write_file_atomic(d + "/metrics.jsonl", "{\"epoch\":1,\"train_loss\":0.6}\n" + deep + "\n");
  try {
    render_report_html(d);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.jsonl:2"), std::string::npos) << e.what();
  }
}

TEST(Report, ShowsEveryFinalMetricAndTheConfusionMatrixWhenTheRunHasThem) {
  const std::string d = temp_dir("extras");
  // An image run without an evaluate stage: the train stage's test metrics are the headline.
  write_file_atomic(
      d + "/result.json",
      R"({"command":"run","pipeline":"img","stages":{"train":{"kind":"train","result":{"test":{"accuracy":0.9,"macro_f1":0.8876,"confusion_matrix":[[7,1],[2,9123]]}}}}})");
  std::string html = render_report_html(d);
  EXPECT_NE(html.find("Confusion matrix"), std::string::npos);
  EXPECT_NE(html.find(">9123<"), std::string::npos);  // a cell
  EXPECT_NE(html.find("0.8876"), std::string::npos);  // macro F1 listed with the rest
  EXPECT_NE(html.find("train (test)"), std::string::npos);
  // Ranking metrics of an evaluate stage, whatever the task calls them; no matrix.
  write_file_atomic(
      d + "/result.json",
      R"({"command":"run","pipeline":"rec","stages":{"eval":{"kind":"evaluate","result":{"metrics":{"hr@10":0.6543,"ndcg@10":0.3821,"users":610}}}}})");
  html = render_report_html(d);
  EXPECT_NE(html.find("hr@10"), std::string::npos);
  EXPECT_NE(html.find("0.3821"), std::string::npos);
  EXPECT_NE(html.find(">610<"), std::string::npos);
  EXPECT_EQ(html.find("Confusion matrix"), std::string::npos);
}

size_t count_of(const std::string& html, const std::string& what) {
  size_t n = 0;
  for (size_t p = html.find(what); p != std::string::npos; p = html.find(what, p + 1)) ++n;
  return n;
}

// The points of the ROC polyline: "x,y" pairs separated by spaces.
size_t roc_points(const std::string& html) {
  const std::string tag = "class=\"roc\"";
  const size_t at = html.find(tag);
  if (at == std::string::npos) return 0;
  const size_t open = html.find("points=\"", at) + 8, close = html.find('"', open);
  const std::string pts = html.substr(open, close - open);
  return pts.empty() ? 0 : count_of(pts, ",");
}

// A behaviour train run: its test metrics carry 7 ROC points and 4 reliability bins, plus one
// entry of each that is out of range or malformed (passed over, not drawn).
std::string behaviour_run(const std::string& name) {
  const std::string d = temp_dir(name);
  write_file_atomic(
      d + "/result.json",
      R"({"command":"train","name":"adult","validation":{"auc":0.9,"logloss":0.3,"accuracy":0.85},)"
      R"("test":{"count":40,"positives":10,"auc":0.8765,"logloss":0.31,"accuracy":0.84,"ece":0.03,)"
      R"("roc":[[0,0],[0,0.2],[0.1,0.5],[0.2,0.7],[0.4,0.9],[0.7,1],[1.5,1],"x",[1,1]],)"
      R"("calibration":[[0.05,0.04,20],[0.31,0.25,8],[0.62,0.7,7],[0.91,1.0,5],[0.5]]}})");
  return d;
}

TEST(Report, BehaviourRunShowsTheRocCurveAndTheReliabilityPlot) {
  const std::string html = render_report_html(behaviour_run("behaviour"));
  EXPECT_NE(html.find("aria-label=\"ROC curve (test), AUC 0.8765\""), std::string::npos);
  EXPECT_EQ(roc_points(html), 7u);
  EXPECT_EQ(count_of(html, "class=\"calibration-bin\""), 4u);
  EXPECT_NE(html.find("Calibration (test)"), std::string::npos);
  EXPECT_NE(html.find("false positive rate"), std::string::npos);  // axes labelled
  EXPECT_NE(html.find("observed positive rate"), std::string::npos);
  EXPECT_NE(html.find("stroke-dasharray"), std::string::npos);  // the diagonal
  EXPECT_NE(html.find("0.620"), std::string::npos);             // a bin's numbers, on hover
  EXPECT_EQ(html.find("Confusion matrix"), std::string::npos);
  // Runs without the plots' points (older runs, other tasks) get no such section.
  const std::string plain = render_report_html(fake_run("behaviour_old"));
  EXPECT_EQ(plain.find("ROC curve"), std::string::npos);
  EXPECT_EQ(plain.find("calibration-bin"), std::string::npos);
}

TEST(Report, ConfusionTableNamesTheClassesAndShowsRowShares) {
  const std::string d = temp_dir("textclass");
  // A text classifier's train result: "classes" beside "test", the matrix under "confusion".
  write_file_atomic(
      d + "/result.json",
      R"({"command":"train","name":"sms","classes":["ham","spam"],)"
      R"("test":{"rows":10,"loss":0.3,"accuracy":0.8,"macro_f1":0.7,"confusion":[[6,1],[1,2]]}})");
  std::string html = render_report_html(d);
  EXPECT_NE(html.find("Confusion matrix"), std::string::npos);
  EXPECT_NE(html.find("<th>true \\ predicted</th><th>ham</th><th>spam</th></tr><tr><th>ham</th>"),
            std::string::npos);
  EXPECT_NE(html.find(">6<br><small>85.7%</small>"), std::string::npos);  // 6 of 7 ham rows
  EXPECT_NE(html.find(">1<br><small>14.3%</small>"), std::string::npos);
  EXPECT_NE(html.find("<th>spam</th><td"), std::string::npos);
  EXPECT_NE(html.find(">2<br><small>66.7%</small>"), std::string::npos);  // 2 of 3 spam rows
  EXPECT_EQ(count_of(html, "<br><small>"), 4u);
  EXPECT_EQ(html.find("ROC curve"), std::string::npos);
  // An image pipeline run: names from the train stage's result, the matrix under
  // "confusion_matrix"; an empty true class gets no share.
  write_file_atomic(
      d + "/result.json",
      R"({"command":"run","pipeline":"img","stages":{"train":{"kind":"train","result":{)"
      R"("class_names":["cat","dog","<bird>"],"test":{"accuracy":0.75,)"
      R"("confusion_matrix":[[3,1,0],[0,0,0],[0,1,3]]}}}}})");
  html = render_report_html(d);
  EXPECT_NE(html.find("<th>cat</th><th>dog</th><th>&lt;bird&gt;</th>"), std::string::npos);
  EXPECT_EQ(count_of(html, "<br><small>"), 9u);
  EXPECT_EQ(count_of(html, ">3<br><small>75.0%</small>"), 2u);
  EXPECT_EQ(count_of(html, ">0<br><small>-</small>"), 3u);  // the dog row
  // Names that do not match the classes are not used: indices instead.
  write_file_atomic(
      d + "/result.json",
      R"({"command":"train","name":"x","class_names":["a","b"],"test":{"accuracy":0.5,)"
      R"("confusion_matrix":[[1,0,0],[0,1,0],[1,1,0]]}})");
  html = render_report_html(d);
  EXPECT_NE(html.find("<th>0</th><th>1</th><th>2</th>"), std::string::npos);
  EXPECT_EQ(html.find("<th>a</th>"), std::string::npos);
}

// A recommend train run (its metrics under "metrics"): HR and NDCG at K = 1..20 as two lines
// of one chart over K, beside the figures at the configured K.
TEST(Report, RecommendRunShowsHitRateAndNdcgAtEachK) {
  const std::string d = temp_dir("recommend");
  std::string hr = "[", ndcg = "[";
  for (int k = 1; k <= 20; ++k) {
    hr += (k > 1 ? "," : "") + std::to_string(0.03 * k);
    ndcg += (k > 1 ? "," : "") + std::to_string(0.02 * k);
  }
  hr += "]";
  ndcg += "]";
  write_file_atomic(d + "/result.json",
                    R"({"command":"train","name":"ml","metrics":{"hr_sampled":0.3012,)"
                    R"("ndcg_sampled":0.2,"hr_sampled_at_k":)" +
                        hr + R"(,"ndcg_sampled_at_k":)" + ndcg + R"(,"k":10}})");
  const std::string html = render_report_html(d);
  EXPECT_EQ(html.find("has not finished"), std::string::npos);
  EXPECT_NE(html.find("0.3012"), std::string::npos);
  const size_t chart = html.find("aria-label=\"HR and NDCG at K\"");
  ASSERT_NE(chart, std::string::npos);
  const std::string svg = html.substr(chart, html.find("</svg>", chart) - chart);
  EXPECT_EQ(count_of(svg, "<polyline"), 2u);
  EXPECT_EQ(count_of(svg, "<circle"), 40u);  // a point per K per metric
  EXPECT_NE(svg.find("hr_sampled@K"), std::string::npos);
  EXPECT_NE(svg.find("ndcg_sampled@K"), std::string::npos);
  EXPECT_NE(svg.find(">20<"), std::string::npos);  // the last K
  EXPECT_NE(svg.find("K (length of the top list)"), std::string::npos);
  EXPECT_EQ(render_report_html(fake_run("no_rank")).find("HR and NDCG"), std::string::npos);
}

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome", "headless_shell"})
    if (test::tool_on_path(name)) return name;
  return "";
}

TEST(Report, HeadlessChromiumScreenshotIsNotBlank) {
  const std::string chromium = find_chromium();
  if (chromium.empty())
    TESSERA_SKIP_OR_FAIL(
        "headless Chromium not found (chromium, chromium-browser, google-chrome, "
        "headless_shell): the rendered-report check needs it");
  const std::string d = fake_run("chromium");
  report_command(d);
  const std::string shot = d + "/screenshot.png";
  const test::ProgramResult r = test::run_program(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
       "--window-size=1000,1400", "--screenshot=" + shot, "file://" + d + "/report.html"});
  ASSERT_EQ(r.status, 0) << r.err;
  Image im = read_png(shot);
  const auto [inked, colours] = ink(im);
  EXPECT_GT(inked, static_cast<size_t>(im.w) * im.h / 100) << "less than 1% of the page is drawn";
  EXPECT_GE(colours, 4u) << "the curves' colours are missing";
}

// The test-set plots render: a behaviour run without epoch curves draws its ROC curve (blue) and
// reliability plot (red) and nothing else in those colours.
TEST(Report, HeadlessChromiumDrawsTheRocAndCalibrationPlots) {
  const std::string chromium = find_chromium();
  if (chromium.empty())
    TESSERA_SKIP_OR_FAIL("headless Chromium not found: the rendered-report check needs it");
  const std::string d = behaviour_run("chromium_plots");
  report_command(d);
  const std::string shot = d + "/screenshot.png";
  const test::ProgramResult r = test::run_program(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
       "--window-size=1000,1400", "--screenshot=" + shot, "file://" + d + "/report.html"});
  ASSERT_EQ(r.status, 0) << r.err;
  Image im = read_png(shot);
  size_t blue = 0, red = 0;
  auto near = [](const uint8_t* p, uint32_t c) {
    return std::abs(p[0] - static_cast<int>(c >> 16)) < 24 &&
           std::abs(p[1] - static_cast<int>(c >> 8 & 255)) < 24 &&
           std::abs(p[2] - static_cast<int>(c & 255)) < 24;
  };
  for (size_t i = 0; i + 2 < im.rgb.size(); i += 3) {
    blue += near(&im.rgb[i], 0x1f77b4);
    red += near(&im.rgb[i], 0xd62728);
  }
  EXPECT_GT(blue, 300u) << "the ROC curve is not drawn";
  EXPECT_GT(red, 100u) << "the reliability plot is not drawn";
}

}  // namespace
}  // namespace tessera::scheduler
