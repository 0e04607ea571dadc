// The same click rows as Criteo-layout text and as libFM rows with fields (criteo_libfm.h), read
// and trained as the behaviour task does, for peak RSS (run under /usr/bin/time -v) and test AUC:
//
//   sparse_input_bench make DIR [ROWS]   synthetic Criteo data (ROWS train rows, a quarter as
//                                        many test rows) and its libFM copy: DIR/train.txt,
//                                        test.txt, config.json, train.ffm, test.ffm
//   sparse_input_bench load csv|libfm DIR      read train / validation / test only
//   sparse_input_bench train csv|libfm DIR [EPOCHS]
//                                        read, train DIR/config.json's model (a DLRM) with its
//                                        optimizers, then the test AUC
//
// csv reads the text as the behaviour task reads CSV / Criteo (fit the preprocessor on train,
// encode train, validation and test); libfm as it reads libSVM rows (sparse_input.h: slots, no
// densified table). Prints one JSON line.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "host/backend/backend.h"
#include "host/core/math.h"
#include "host/data/batcher.h"
#include "host/data/criteo.h"
#include "host/data/encoded_table.h"
#include "host/metrics/metrics.h"
#include "host/model/optimizer.h"
#include "pipelines/behaviour/behaviour_config.h"
#include "pipelines/behaviour/criteo_libfm.h"
#include "pipelines/behaviour/net.h"
#include "pipelines/behaviour/sparse_input.h"
#include "pipelines/behaviour/synthetic_criteo.h"
#include "pipelines/task_run.h"

using namespace tessera;
using namespace tessera::behaviour;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Data {
  Preprocessor pre;
  EncodedTable train, validation, test;
  SparseLayout layout;
};

// DIR/config.json as the text route reads it (not the prepared directory), or switched to the
// libFM files.
BehaviourConfig config_for(const std::string& dir, bool libfm) {
  BehaviourConfig c = load_behaviour_config(dir + "/config.json");
  c.data.prepared.clear();
  c.data.train.path = dir + (libfm ? "/train.ffm" : "/train.txt");
  c.data.test = FileSpec{dir + (libfm ? "/test.ffm" : "/test.txt"), 0};
  if (libfm) {
    c.data.schema = TableSchema();
    c.data.schema.format = TableFormat::LibSvm;
  }
  return c;
}

Data load(BehaviourConfig& c, bool libfm) {
  Data d;
  const uint64_t seed = static_cast<uint64_t>(c.seed);
  if (libfm) {
    SparseRows r = prepare_sparse(c.data, c.data.train, nullptr, &*c.data.test, seed);
    d.train = std::move(r.train);
    d.validation = std::move(r.validation);
    d.test = std::move(r.test);
    d.layout = r.layout;
    record_layout(c, r.layout);
    return d;
  }
  PreprocessOptions o;
  o.categorical = c.data.categorical;
  o.numeric = c.data.numeric;
  TrainValidation tv =
      load_train_validation(c.data.train, c.data.schema, o, c.data.validation_fraction, seed);
  d.pre = std::move(tv.preprocessor);
  d.train = std::move(tv.train);
  d.validation = std::move(tv.validation);
  d.test = load_table(*c.data.test, d.pre);
  return d;
}

double test_auc(BehaviourNet& net, const EncodedTable& t, int64_t batch) {
  BatcherOptions bo;
  bo.batch_size = batch;
  bo.shuffle = ShuffleMode::None;
  bo.epochs = 1;
  Batcher batcher(t, bo);
  Batch b;
  BinaryMetrics m;
  while (batcher.next(b)) {
    Tensor z = net.backend().to_host(net.forward(b.dense, b.cat, Mode::Eval, 0));
    for (int64_t i = 0; i < b.rows; ++i) z.data<float>()[i] = math::sigmoid(z.data<float>()[i]);
    m.add(z.data<float>(), b.labels.data<float>(), static_cast<size_t>(b.rows));
  }
  return m.compute().auc;
}

// Trains `epochs` epochs as the behaviour task's step does (mean BCE, the dense optimizer and the
// tables' sparse group stepped together); returns the test AUC.
double train_and_test(BehaviourConfig& c, const Data& d, bool libfm, int epochs) {
  auto be = make_backend("cpu");
  MlpSpec spec;
  spec.n_dense = libfm ? d.layout.total_rows() : d.pre.n_dense();
  spec.n_cat = d.pre.n_cat();
  spec.embedding_rows = d.pre.total_embedding_rows();
  spec.embedding_dim = c.model.embedding_dim;
  spec.hidden.assign(c.model.hidden.begin(), c.model.hidden.end());
  const int64_t batch = c.train.batch_size;
  std::unique_ptr<BehaviourNet> net = make_net(*be, c, d.pre, spec, static_cast<uint64_t>(c.seed),
                                               std::max<int64_t>(batch, c.train.eval_batch_size));
  c.train.epochs = epochs;
  BatcherOptions bo;
  bo.batch_size = batch;
  bo.seed = static_cast<uint64_t>(c.seed);
  bo.epochs = epochs;
  Batcher batcher(d.train, bo);
  Optimizer opt =
      train::epoch_optimizer(*be, c.train, batcher.batches_per_epoch(), net->parameters());
  if (SparseGroup* g = net->sparse_group()) opt.add_sparse_group("tables", *g);
  Tensor loss = be->empty({batch}), dl = be->empty({batch, 1});
  Batch b;
  int64_t step = 0;
  while (batcher.next(b)) {
    Tensor logits = net->forward(b.dense, b.cat, Mode::Train, static_cast<uint64_t>(++step));
    Tensor l = loss.rows(0, b.rows), g = dl.rows(0, b.rows);
    be->bce_with_logits(logits, b.labels, 1.f / static_cast<float>(b.rows), l, g);
    net->backward(g);
    opt.step();
  }
  return test_auc(*net, d.test, c.train.eval_batch_size);
}

int usage() {
  std::fprintf(stderr,
               "usage: sparse_input_bench make DIR [ROWS] | load csv|libfm DIR | "
               "train csv|libfm DIR [EPOCHS]\n");
  return 2;
}

int make(const std::string& dir, int64_t rows) {
  CriteoSyntheticOptions o;
  o.train_rows = rows;
  o.test_rows = rows / 4;
  const double t0 = now_s();
  const CriteoSyntheticResult r = write_synthetic_criteo(dir, o);
  const LibFmConversion f = criteo_to_libfm(dir + "/train.txt", dir + "/test.txt",
                                            dir + "/train.ffm", dir + "/test.ffm", o.min_count);
  std::printf("{\"command\":\"make\",\"train_rows\":%lld,\"test_rows\":%lld,\"seconds\":%.2f}\n",
              (long long)f.train_rows, (long long)f.test_rows, now_s() - t0);
  (void)r;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 3) return usage();
    const std::string cmd = argv[1];
    if (cmd == "make") return make(argv[2], argc > 3 ? std::stoll(argv[3]) : 200000);
    if (argc < 4 || (cmd != "load" && cmd != "train")) return usage();
    const bool libfm = std::string(argv[2]) == "libfm";
    const std::string dir = argv[3];
    BehaviourConfig c = config_for(dir, libfm);
    const double t0 = now_s();
    const Data d = load(c, libfm);
    const double t_load = now_s() - t0;
    double auc = std::nan("");
    if (cmd == "train") auc = train_and_test(c, d, libfm, argc > 4 ? std::stoi(argv[4]) : 1);
    std::printf(
        "{\"command\":\"%s\",\"input\":\"%s\",\"train_rows\":%lld,\"validation_rows\":%lld,"
        "\"test_rows\":%lld,\"slots\":%lld,\"load_seconds\":%.2f,\"seconds\":%.2f,"
        "\"test_auc\":%.4f}\n",
        cmd.c_str(), libfm ? "libfm" : "csv", (long long)d.train.rows, (long long)d.validation.rows,
        (long long)d.test.rows, (long long)d.train.n_cat, t_load, now_s() - t0, auc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sparse_input_bench: %s\n", e.what());
    return 1;
  }
}
