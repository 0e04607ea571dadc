// Model.predict / evaluate on Arrow rows (arrow_score.h).
#include "python/src/arrow_score.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include "host/backend/backend.h"
#include "host/config/json_writer.h"
#include "host/core/error.h"
#include "host/core/math.h"
#include "host/data/row_parser.h"
#include "host/metrics/metrics.h"
#include "pipelines/behaviour/model_artefact.h"
#include "pipelines/behaviour/net.h"
#include "pipelines/json_nullable.h"

namespace tessera::python {

namespace {

using Clock = std::chrono::steady_clock;

BadRowPolicy policy_of(const std::string& on_error, BadRowPolicy fallback) {
  if (on_error.empty()) return fallback;
  if (on_error == "error") return BadRowPolicy::Error;
  if (on_error == "skip") return BadRowPolicy::Skip;
  TESSERA_THROW(Usage, "on_error '" << on_error << "' is not one of: error, skip");
}

// One batch of encoded rows being filled, then scored.
struct BatchRows {
  Tensor dense, cat;
  int64_t rows = 0;
};

void score_into(behaviour::BehaviourNet& net, BatchRows& b, int64_t n_dense, int64_t n_cat,
                ArrowScores& out) {
  Tensor dense = b.dense, cat = b.cat;
  if (b.rows < dense.shape()[0]) {  // the last, short batch: fresh tensors of its rows
    dense = Tensor::host({b.rows, n_dense}, DType::F32);
    cat = Tensor::host({b.rows, n_cat}, DType::I64);
    std::copy(b.dense.data<float>(), b.dense.data<float>() + b.rows * n_dense, dense.data<float>());
    std::copy(b.cat.data<int64_t>(), b.cat.data<int64_t>() + b.rows * n_cat, cat.data<int64_t>());
  }
  Tensor logits = net.forward(dense, cat, Mode::Eval, 0);
  Tensor h = net.backend().to_host(logits);
  const float* z = h.data<float>();
  for (int64_t i = 0; i < b.rows; ++i) {
    const float p = math::sigmoid(z[i]);
    out.probs.push_back(p);
  }
  b.rows = 0;
}

}  // namespace

ArrowScores score_arrow(const std::string& model_path, ArrowArrayStream* stream,
                        const std::string& name, const ArrowScoreOptions& o) {
  const auto t0 = Clock::now();
  behaviour::ModelArtefact art = behaviour::load_model(model_path);
  if (behaviour::is_libsvm(art.config))
    TESSERA_THROW(Usage, "a libSVM model scores libSVM files, not tabular (Arrow) data");
  if (o.batch_size < 1) TESSERA_THROW(Usage, "batch_size must be positive");
  art.preprocessor.set_bad_row_policy(policy_of(o.on_error, art.config.data.schema.on_error));
  const Preprocessor& pre = art.preprocessor;
  ArrowRecordReader reader(stream, pre.schema(),
                           o.labels ? LabelMode::Required : LabelMode::Optional, name);
  auto backend = make_backend(o.device.empty() ? "auto" : o.device);
  auto net = behaviour::make_net(*backend, art.config, pre, art.spec, 0, o.batch_size);
  net->restore(art.weights);
  ArrowScores out;
  out.device = backend->name();
  RowParser parser(pre.schema(), o.labels ? LabelMode::Required : LabelMode::Optional);
  const int64_t nd = pre.n_dense(), nc = pre.n_cat();
  BatchRows b;
  b.dense = Tensor::host({o.batch_size, nd}, DType::F32);
  b.cat = Tensor::host({o.batch_size, nc}, DType::I64);
  EncodeStats stats = pre.make_stats();
  BadRowReport bad;
  Record rec;
  ParsedRow row;
  while (reader.next(rec)) {
    if (!parser.parse(rec, row, &bad)) continue;
    const std::string why = pre.encode(row, b.dense.data<float>() + b.rows * nd,
                                       b.cat.data<int64_t>() + b.rows * nc, &stats);
    if (!why.empty()) {
      const std::string full = name + ":" + std::to_string(rec.line) + ":" + why;
      if (pre.schema().on_error == BadRowPolicy::Error)
        throw Error(ErrorKind::Data, full, ErrorLocation{name, rec.line, 0, ""});
      bad.add(full);
      continue;
    }
    if (reader.has_label()) out.labels.push_back(row.label);
    if (++b.rows == o.batch_size) score_into(*net, b, nd, nc, out);
  }
  if (b.rows > 0) score_into(*net, b, nd, nc, out);
  out.rows_read = reader.records_read();
  out.bad_rows = bad.skipped;
  out.bad_summary = bad.skipped ? bad.summary() : std::string();
  out.unseen = stats.total_oov();
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

CommandResult evaluate_result(const std::string& model_path, const std::string& name,
                              const ArrowScores& s) {
  const int64_t rows = static_cast<int64_t>(s.probs.size());
  if (rows == 0) TESSERA_THROW(Data, "'" << name << "' has no rows to evaluate");
  std::vector<float> probs(s.probs.begin(), s.probs.end());
  BinaryMetrics m;
  m.add(probs.data(), s.labels.data(), probs.size());
  const BinaryReport r = m.compute();
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "evaluate").field("model", model_path).field("data", name);
  w.field("device", s.device).field("rows", rows);
  w.field("bad_rows_skipped", s.bad_rows).field("unseen_categories", s.unseen);
  w.field("rows_per_sec", s.seconds > 0 ? rows / s.seconds : 0.0);
  w.key("metrics").begin_object();
  w.field("count", r.count).field("positives", r.positives);
  auto num = [&](const char* k, double v) { json::field_or_null(w, k, v, !std::isnan(v)); };
  num("auc", r.auc);
  num("logloss", r.logloss);
  num("accuracy", r.accuracy);
  num("ece", r.calibration.ece);
  w.end_object();
  w.end_object();
  std::ostringstream sum;
  char line[160];  // the CLI's line (behaviour.cpp evaluate)
  std::snprintf(line, sizeof(line), ": AUC %.4f  logloss %.4f  accuracy %.4f\n", r.auc, r.logloss,
                r.accuracy);
  sum << "evaluated " << rows << " rows of " << name << " on " << s.device << line;
  if (s.bad_rows) sum << "  " << s.bad_summary << "\n";
  return {sum.str(), w.compact()};
}

}  // namespace tessera::python
