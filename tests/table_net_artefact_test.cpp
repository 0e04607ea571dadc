// DCN-V2 and Wide & Deep through the behaviour model artefact (pipelines/behaviour/
// model_artefact.h): a model built by make_table_net from a fitted preprocessor is saved, loaded
// (the loader checks every weight the header implies, which needs the model type), rebuilt and
// restored, and scores exactly as before; a weight of the wrong shape or a missing one is refused
// by name before anything is built.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "host/backend/backend.h"
#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/encoded_table.h"
#include "pipelines/behaviour/model_artefact.h"
#include "pipelines/behaviour/table_net.h"
#include "tests/data_test_util.h"

namespace tessera::behaviour {
namespace {

// A config of `model` (JSON) on a tiny csv with 2 numeric and 2 categorical columns, the
// preprocessor fitted on it, and a batch of its rows encoded.
struct Setup {
  BehaviourConfig config;
  Preprocessor pre;
  Tensor dense, cat;
};

Setup setup(testing::TempDir& dir, const std::string& model) {
  std::string csv;
  for (int i = 0; i < 40; ++i)
    csv += std::to_string(i % 7) + "," + std::to_string(i * 0.5) + "," +
           std::string(1, char('a' + i % 3)) + "," + std::string(1, char('p' + i % 5)) + "," +
           (i % 2 ? "yes" : "no") + "\n";
  write_file_atomic(dir.file("train.csv"), csv);
  Setup s;
  s.config = parse_behaviour_config(R"({"task": "behaviour", "data": {"train": ")" +
                                        dir.file("train.csv") + R"(", "columns": [
      {"name": "x", "type": "numeric"}, {"name": "z", "type": "numeric"},
      {"name": "c", "type": "categorical"}, {"name": "d", "type": "categorical"},
      {"name": "y", "type": "label", "positive": ["yes"], "negative": ["no"]}]},
    "model": )" + model + "}",
                                    "tiny.json");
  PreprocessOptions po;
  po.categorical = s.config.data.categorical;
  po.numeric = s.config.data.numeric;
  s.pre = fit_preprocessor({dir.file("train.csv"), 0}, s.config.data.schema, po);
  const EncodedTable t = load_table({dir.file("train.csv"), 0}, s.pre);
  const int64_t b = 12;
  s.dense = Tensor::host({b, s.pre.n_dense()});
  s.cat = Tensor::host({b, s.pre.n_cat()}, DType::I64);
  std::copy_n(t.dense.data(), s.dense.numel(), s.dense.data<float>());
  std::copy_n(t.cat.data(), s.cat.numel(), s.cat.data<int64_t>());
  return s;
}

MlpSpec spec_of(const Preprocessor& pre) {
  MlpSpec m;
  m.n_dense = pre.n_dense();
  m.n_cat = pre.n_cat();
  m.embedding_rows = pre.total_embedding_rows();
  m.embedding_dim = 3;
  return m;
}

std::string io_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io) << e.what();
    return e.what();
  }
  return "";
}

void round_trip(const std::string& model, const std::string& type_name) {
  SCOPED_TRACE(type_name);
  testing::TempDir dir;
  const Setup s = setup(dir, model);
  auto be = make_backend("cpu");
  ModelArtefact a;
  a.config = s.config;
  a.preprocessor = s.pre;
  a.spec = spec_of(s.pre);
  auto net = make_table_net(*be, a.config, a.preprocessor, a.spec, 5, 16);
  // Some training first, so the weights are not the initial ones.
  Tensor labels = Tensor::host({12});
  for (int64_t i = 0; i < 12; ++i) labels.data<float>()[i] = static_cast<float>(i % 2);
  for (int step = 0; step < 3; ++step) {
    Tensor logits = net->forward(s.dense, s.cat, Mode::Train, 1);
    Tensor l = be->empty({12}), dl = be->empty({12, 1});
    be->bce_with_logits(logits, labels, 1.f / 12.f, l, dl);
    net->backward(dl);
    net->sparse_group()->step();
    for (Parameter* p : net->parameters()) {
      Tensor v = be->empty(p->value.shape());
      be->sgd_update({0.5f, 0.f}, p->value, p->grad, v);
    }
  }
  const Tensor before = be->to_host(net->forward(s.dense, s.cat, Mode::Eval, 0));
  a.weights = net->snapshot();
  const std::string path = dir.file("model.tsm");
  save_model(path, a);

  const ModelArtefact back = load_model(path);
  EXPECT_EQ(back.config.model.type, s.config.model.type);
  EXPECT_EQ(back.weights.size(), a.weights.size());
  auto rebuilt = make_table_net(*be, back.config, back.preprocessor, back.spec, 99, 16);
  rebuilt->restore(back.weights);
  const Tensor after = be->to_host(rebuilt->forward(s.dense, s.cat, Mode::Eval, 0));
  for (int64_t i = 0; i < before.numel(); ++i)
    EXPECT_EQ(after.data<float>()[i], before.data<float>()[i]) << "sample " << i;

  // A stored weight of another shape, and a missing one, are refused by name.
  Archive ar = load_archive(path);
  const std::string victim = a.weights.begin()->first;  // any dense weight, or the tables
  std::map<std::string, Tensor> wrong = ar.tensors;
  wrong[victim] = Tensor::host({1, 1});
  save_archive(dir.file("wrong.tsm"), ar.meta_json, {wrong.begin(), wrong.end()});
  std::string msg = io_error_of([&] { load_model(dir.file("wrong.tsm")); });
  EXPECT_NE(msg.find("weight '" + victim + "' is"), std::string::npos) << msg;
  std::map<std::string, Tensor> missing = ar.tensors;
  missing.erase("embedding.tables");
  save_archive(dir.file("missing.tsm"), ar.meta_json, {missing.begin(), missing.end()});
  msg = io_error_of([&] { load_model(dir.file("missing.tsm")); });
  EXPECT_NE(msg.find("weight 'embedding.tables' is missing"), std::string::npos) << msg;
}

TEST(TableNetArtefact, DcnV2RoundTripsThroughTheModelFile) {
  round_trip(R"({"type": "dcn_v2", "embedding_dim": 3, "bottom": [4], "hidden": [5],
    "dropout": 0, "cross": {"layers": 2, "low_rank": 2, "structure": "parallel"}})",
             "dcn_v2");
}

TEST(TableNetArtefact, WideDeepRoundTripsThroughTheModelFile) {
  round_trip(R"({"type": "wide_deep", "embedding_dim": 3, "hidden": [5], "dropout": 0.1})",
             "wide_deep");
}

}  // namespace
}  // namespace tessera::behaviour
