// libSVM / libFM rows kept sparse (host/data/libsvm.h's block reader with fields,
// pipelines/behaviour/sparse_input.h's slots and bags) and the models on them: the MLP equals the
// densified MLP, and DLRM, DCN-V2 and Wide & Deep on libFM fields (no numeric features, values as
// per-sample weights) match finite differences of their loss.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "host/backend/backend.h"
#include "host/core/error.h"
#include "host/core/math.h"
#include "host/data/batcher.h"
#include "host/data/encoded_table.h"
#include "host/data/libsvm.h"
#include "host/metrics/metrics.h"
#include "host/model/mlp.h"
#include "host/model/optimizer.h"
#include "pipelines/behaviour/model_artefact.h"
#include "pipelines/behaviour/net.h"
#include "pipelines/behaviour/sparse_input.h"
#include "pipelines/task_run.h"
#include "tests/data_test_util.h"

namespace tessera::behaviour {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(LibFm, ReadsFieldsAsCsrInBlocks) {
  TempDir dir;
  const std::string p = write_file(dir.file("a.ffm"),
                                   "1 0:3:1 2:0:0.5\n"
                                   "# a comment\n"
                                   "0 1:7:2\t0:1:1\n"
                                   "-1\n");
  const SparseTable t = read_libsvm(FileSpec{p, 0});
  ASSERT_EQ(t.rows(), 3);
  EXPECT_TRUE(t.has_fields);
  EXPECT_EQ(t.fields, (std::vector<int32_t>{0, 2, 1, 0}));
  EXPECT_EQ(t.indices, (std::vector<int64_t>{3, 0, 7, 1}));
  EXPECT_EQ(t.values, (std::vector<float>{1.f, 0.5f, 2.f, 1.f}));
  EXPECT_EQ(t.offsets, (std::vector<int64_t>{0, 2, 4, 4}));
  EXPECT_EQ(t.lines, (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(t.max_field, 2);
  EXPECT_EQ(t.max_index, 7);
  // Block by block: the same rows, a block's offsets from 0.
  LibSvmReader r(FileSpec{p, 0});
  SparseTable b;
  ASSERT_TRUE(r.next_block(b, 2));
  EXPECT_EQ(b.rows(), 2);
  EXPECT_EQ(b.fields, (std::vector<int32_t>{0, 2, 1, 0}));
  ASSERT_TRUE(r.next_block(b, 2));
  EXPECT_EQ(b.rows(), 1);
  EXPECT_EQ(b.offsets, (std::vector<int64_t>{0, 0}));
  EXPECT_TRUE(b.has_fields);
  EXPECT_FALSE(r.next_block(b, 2));
}

TEST(LibFm, RowsWrittenTheOtherWayAreBadRows) {
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"1 0:1:1\n0 4:1\n",
       ":2:token 2 '4:1': expected field:index:value, as the file's first "
       "entries"},
      {"1 4:1\n0 0:1:1\n",
       ":2:token 2 '0:1:1': expected index:value, as the file's first "
       "entries"},
      {"1 0:1:1:1\n", ":1:token 2 '0:1:1:1': expected index:value"},
      {"1 4096:1:1\n", ":1:token 2 '4096:1:1': field index above the limit 4095"},
      {"1 0:x:1\n", ":1:token 2 '0:x:1': expected an integer feature index"},
  };
  for (const auto& [text, suffix] : cases) {
    const std::string p = write_file(dir.file("bad.ffm"), text);
    try {
      read_libsvm(FileSpec{p, 0});
      ADD_FAILURE() << text;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), p + suffix);
    }
  }
  // Skipped under on_error skip; nothing of the bad row leaks into the good ones.
  const std::string p = write_file(dir.file("mixed.ffm"), "1 0:1:1\n0 4:1\n1 1:2:3\n");
  BadRowReport bad;
  const SparseTable t = read_libsvm(FileSpec{p, 0}, BadRowPolicy::Skip, &bad);
  EXPECT_EQ(bad.skipped, 1);
  EXPECT_EQ(t.fields, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(t.indices, (std::vector<int64_t>{1, 2}));
}

BehaviourConfig libsvm_config(const std::string& path, const std::string& model) {
  return parse_behaviour_config(R"({"task": "behaviour", "seed": 5, "data": {"train": ")" + path +
                                    R"(", "format": "libsvm", "validation_fraction": 0.25},
    "model": )" + model + "}",
                                "cfg.json");
}

// Fitted sizes per field, the widest row as the slot count, a repeated feature keeping its last
// value, and exactly split_table()'s validation rows.
TEST(SparseInput, PrepareFitsTheLayoutAndSplitsAsSplitTable) {
  TempDir dir;
  std::string text;
  for (int r = 0; r < 40; ++r)
    text += std::to_string(r % 2) + " 0:" + std::to_string(r % 5) +
            ":1 2:" + std::to_string(r % 3) + ":" + std::to_string(0.5 * r) +
            (r == 7 ? " 0:1:9 0:1:4" : "") + "\n";
  const std::string p = write_file(dir.file("t.ffm"), text);
  const BehaviourConfig c = libsvm_config(p, R"({"type": "dlrm"})");
  const SparseRows rows = prepare_sparse(c.data, FileSpec{p, 0}, nullptr, nullptr, 5);
  EXPECT_TRUE(rows.layout.fields);
  EXPECT_EQ(rows.layout.table_rows, (std::vector<int64_t>{5, 1, 3}));  // field 1 named by none
  EXPECT_EQ(rows.layout.offsets(), (std::vector<int64_t>{0, 5, 6}));
  EXPECT_EQ(rows.train.n_cat, 3);  // row 7: 0:2, 0:1 (twice, kept once), 2:1
  EXPECT_EQ(rows.train.rows + rows.validation.rows, 40);
  // Row 7 (line 8): field 0's features 1 (last value 4) and 2, then field 2's feature 1.
  const bool in_train =
      std::find(rows.train.lines.begin(), rows.train.lines.end(), 8) != rows.train.lines.end();
  const EncodedTable& part = in_train ? rows.train : rows.validation;
  const auto at = std::find(part.lines.begin(), part.lines.end(), 8) - part.lines.begin();
  EXPECT_EQ(std::vector<int64_t>(part.cat.begin() + at * 3, part.cat.begin() + at * 3 + 3),
            (std::vector<int64_t>{1, 2, 7}));
  EXPECT_EQ(std::vector<float>(part.dense.begin() + at * 3, part.dense.begin() + at * 3 + 3),
            (std::vector<float>{4.f, 1.f, 3.5f}));
  const TableSplit split = split_table(table_from_sparse(read_libsvm(FileSpec{p, 0}), 0), 0.25, 5);
  EXPECT_EQ(rows.validation.lines, split.validation.lines);
  EXPECT_EQ(rows.train.lines, split.train.lines);
  // Sizes for the other kind of rows are refused by name.
  BehaviourConfig flat = c;
  flat.data.schema.libsvm_features = 9;
  EXPECT_THROW(prepare_sparse(flat.data, FileSpec{p, 0}, nullptr, nullptr, 5), Error);
  // A configured size the train rows exceed is an error naming file and line.
  BehaviourConfig narrow = c;
  narrow.data.libsvm_field_features = {5, 1, 2};
  try {
    prepare_sparse(narrow.data, FileSpec{p, 0}, nullptr, nullptr, 5);
    ADD_FAILURE() << "a feature outside the configured sizes";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p + ":3: field 2 feature 2 is outside the 2 features"),
              std::string::npos)
        << e.what();
  }
}

// A test file wider than train: its extra features dropped and counted, in load_sparse and in
// the stream, which gives the same slots batch by batch.
TEST(SparseInput, WiderFilesDropWhatTheModelHasNoRowFor) {
  TempDir dir;
  const std::string p =
      write_file(dir.file("t.svm"), "1 1:0.5 9:2 3:1\n0 2:1\n1 12:1\n0 3:2 1:1 4:5\n");
  SparseLayout l;
  l.table_rows = {5};
  int64_t dropped = 0;
  BadRowReport bad;
  const EncodedTable t = load_sparse(FileSpec{p, 0}, l, BadRowPolicy::Error, &bad, &dropped);
  EXPECT_EQ(dropped, 2);
  ASSERT_EQ(t.rows, 4);
  EXPECT_EQ(t.n_cat, 3);
  EXPECT_EQ(t.cat, (std::vector<int64_t>{1, 3, -1, 2, -1, -1, -1, -1, -1, 1, 3, 4}));
  EXPECT_EQ(t.dense, (std::vector<float>{0.5f, 1, 0, 1, 0, 0, 0, 0, 0, 1, 2, 5}));
  SparseBatchStream s(FileSpec{p, 0}, l, BadRowPolicy::Error, 3);
  Batch b;
  ASSERT_TRUE(s.next(b));
  EXPECT_EQ(b.rows, 3);
  EXPECT_EQ(b.cat.dim(1), 2);  // this batch's widest row
  EXPECT_EQ(std::vector<int64_t>(b.cat.data<int64_t>(), b.cat.data<int64_t>() + 6),
            (std::vector<int64_t>{1, 3, 2, -1, -1, -1}));
  ASSERT_TRUE(s.next(b));
  EXPECT_EQ(b.lines, (std::vector<int64_t>{4}));
  EXPECT_EQ(std::vector<float>(b.dense.data<float>(), b.dense.data<float>() + 3),
            (std::vector<float>{1, 2, 5}));
  EXPECT_FALSE(s.next(b));
  EXPECT_EQ(s.dropped(), 2);
  EXPECT_THROW(s.seek(0, 0), Error);
  // One-hot rows (every value 1) keep ids only: no values, 8 bytes a slot.
  const std::string ones = write_file(dir.file("ones.svm"), "1 1:1 3:1\n0 2:1\n");
  const EncodedTable u = load_sparse(FileSpec{ones, 0}, l, BadRowPolicy::Error, &bad);
  EXPECT_EQ(u.n_dense, 0);
  EXPECT_TRUE(u.dense.empty());
  EXPECT_EQ(u.cat, (std::vector<int64_t>{1, 3, 2, -1}));
}

// A batch's slots as table-major weighted bags, ids local to their table, padding left out.
TEST(SparseInput, SlotsBecomeWeightedBags) {
  auto be = make_host_backend();
  const SparseLayout l = [] {
    SparseLayout f;
    f.fields = true;
    f.table_rows = {4, 3, 5};
    return f;
  }();
  Tensor values = Tensor::host({2, 3}), ids = Tensor::host({2, 3}, DType::I64);
  const std::vector<float> v = {0.5f, 2.f, 0.f, -1.f, 3.f, 4.f};
  const std::vector<int64_t> g = {1, 8, 0, 5, 6, 2};  // tables 0, 2, pad / 1, 1, 0
  std::copy(v.begin(), v.end(), values.data<float>());
  std::copy(g.begin(), g.end(), ids.data<int64_t>());
  const emb::Bags b = slot_bags(*be, values, ids, l, false);
  EXPECT_EQ(b.batch, 2);
  // Bags (t, s) (offsets 0, 4, 7): (0,0) {1}, (0,1) {2}, (1,0) {}, (1,1) {1, 2}, (2,0) {1},
  // (2,1) {}.
  EXPECT_EQ(std::vector<int64_t>(b.offsets.data<int64_t>(), b.offsets.data<int64_t>() + 7),
            (std::vector<int64_t>{0, 1, 2, 2, 4, 5, 5}));
  EXPECT_EQ(std::vector<int64_t>(b.indices.data<int64_t>(), b.indices.data<int64_t>() + 5),
            (std::vector<int64_t>{1, 2, 1, 2, 1}));
  EXPECT_EQ(std::vector<float>(b.weights.data<float>(), b.weights.data<float>() + 5),
            (std::vector<float>{0.5f, 4.f, -1.f, 3.f, 2.f}));
  const emb::Bags one = slot_bags(*be, values, ids, l, true);  // the MLP's: global rows
  EXPECT_EQ(std::vector<int64_t>(one.offsets.data<int64_t>(), one.offsets.data<int64_t>() + 3),
            (std::vector<int64_t>{0, 2, 5}));
  EXPECT_EQ(std::vector<int64_t>(one.indices.data<int64_t>(), one.indices.data<int64_t>() + 5),
            (std::vector<int64_t>{1, 8, 5, 6, 2}));
  // Ids only (values [B, 0]): every weight 1, padding left out.
  ids.data<int64_t>()[2] = kSparsePaddingId;
  const emb::Bags unit = slot_bags(*be, Tensor::host({2, 0}), ids, l, false);
  EXPECT_FALSE(unit.weights.defined());
  EXPECT_EQ(std::vector<int64_t>(unit.offsets.data<int64_t>(), unit.offsets.data<int64_t>() + 7),
            (std::vector<int64_t>{0, 1, 2, 2, 4, 5, 5}));
  ids.data<int64_t>()[0] = 12;  // past the layout's 12 rows
  EXPECT_THROW(slot_bags(*be, values, ids, l, false), Error);
}

// Slots (values, ids) of a batch with `width` slots a row, random values in [-1, 1] (some 0, the
// padding), ids in the layout.
void random_slots(const SparseLayout& l, int64_t b, int64_t width, std::mt19937& rng,
                  Tensor& values, Tensor& ids) {
  values = Tensor::host({b, width});
  ids = Tensor::host({b, width}, DType::I64);
  const std::vector<int64_t> off = l.offsets();
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < b * width; ++i) {
    const int64_t t = static_cast<int64_t>(rng() % static_cast<uint32_t>(l.tables()));
    ids.data<int64_t>()[i] = off[t] + static_cast<int64_t>(rng() % l.table_rows[t]);
    values.data<float>()[i] = i % 5 == 4 ? 0.f : u(rng);
  }
}

double bce(Backend& be, BehaviourNet& net, const Tensor& values, const Tensor& ids,
           const Tensor& labels, bool backward) {
  const int64_t b = values.dim(0);
  Tensor logits = net.forward(values, ids, backward ? Mode::Train : Mode::Eval, 0);
  Tensor l = be.empty({b}), dl = be.empty({b, 1});
  be.bce_with_logits(logits, labels, 1.f / static_cast<float>(b), l, dl);
  if (backward) net.backward(dl);
  double s = 0;
  for (int64_t i = 0; i < b; ++i) s += l.data<float>()[i];
  return s / static_cast<double>(b);
}

// The sparse MLP is the densified MLP: same weights from the seed, same logits, same gradients
// (W0's zero but for the rows the batch touched), with repeated ids in a row summing as x W does.
TEST(SparseInput, MlpEqualsTheDensifiedMlp) {
  auto be = make_host_backend();
  BehaviourConfig c = libsvm_config("t.svm", R"({"type": "mlp", "hidden": [6, 4], "dropout": 0,
    "activation": "tanh"})");
  SparseLayout l;
  l.table_rows = {11};
  record_layout(c, l);
  MlpSpec spec;
  spec.n_dense = 11;
  spec.hidden = {6, 4};
  spec.dropout = 0.f;
  spec.activation = Activation::Tanh;
  std::unique_ptr<BehaviourNet> sparse = make_net(*be, c, Preprocessor(), spec, 9, 8);
  MlpModel dense(*be, spec, 9, 8);
  std::mt19937 rng(4);
  Tensor values, ids;
  random_slots(l, 7, 4, rng, values, ids);
  Tensor x = Tensor::host({7, 11});
  std::fill_n(x.data<float>(), x.numel(), 0.f);
  for (int64_t i = 0; i < values.numel(); ++i)
    x.data<float>()[(i / 4) * 11 + ids.data<int64_t>()[i]] += values.data<float>()[i];
  Tensor labels = Tensor::host({7});
  for (int64_t i = 0; i < 7; ++i) labels.data<float>()[i] = static_cast<float>(i % 2);
  const double ls = bce(*be, *sparse, values, ids, labels, true);
  Tensor logits = dense.forward(x, Tensor(), Mode::Train, 0);
  Tensor lo = be->empty({7}), dl = be->empty({7, 1});
  be->bce_with_logits(logits, labels, 1.f / 7.f, lo, dl);
  dense.backward(dl);
  double ld = 0;
  for (int64_t i = 0; i < 7; ++i) ld += lo.data<float>()[i] / 7.0;
  EXPECT_NEAR(ls, ld, 1e-6);
  const std::vector<Parameter*> ps = sparse->parameters(), pd = dense.parameters();
  ASSERT_EQ(ps.size(), pd.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    ASSERT_EQ(ps[i]->name, pd[i]->name);
    ASSERT_EQ(ps[i]->value.shape(), pd[i]->value.shape());
    for (int64_t k = 0; k < ps[i]->value.numel(); ++k) {
      ASSERT_EQ(ps[i]->value.data<float>()[k], pd[i]->value.data<float>()[k]) << ps[i]->name;
      ASSERT_NEAR(ps[i]->grad.data<float>()[k], pd[i]->grad.data<float>()[k], 1e-6)
          << ps[i]->name << "[" << k << "]";
    }
  }
}

// Central differences of the mean BCE against the analytic gradients: every dense weight, and
// every table element (the tables' gradient read off one sparse SGD step of lr 1).
void check_finite_differences(const std::string& model, const SparseLayout& l) {
  auto be = make_host_backend();
  BehaviourConfig c = libsvm_config("t.ffm", model);
  record_layout(c, l);
  MlpSpec spec;
  spec.n_dense = l.total_rows();
  std::unique_ptr<BehaviourNet> net = make_net(*be, c, Preprocessor(), spec, 3, 8);
  std::mt19937 rng(8);
  Tensor values, ids;
  random_slots(l, 6, 5, rng, values, ids);
  Tensor labels = Tensor::host({6});
  for (int64_t i = 0; i < 6; ++i) labels.data<float>()[i] = static_cast<float>(i % 2);
  const auto before = net->snapshot();
  bce(*be, *net, values, ids, labels, true);
  ASSERT_NE(net->sparse_group(), nullptr);
  net->sparse_group()->step();
  const auto after = net->snapshot();
  net->restore(before);
  const float eps = 1e-2f;
  int64_t bad = 0, touched = 0;
  auto check = [&](const std::string& what, int64_t i, double num, double ana) {
    if (!(std::fabs(num - ana) <= 1e-3 + 1e-2 * std::max(std::fabs(num), std::fabs(ana))))
      if (bad++ < 5)
        ADD_FAILURE() << what << "[" << i << "]: analytic " << ana << ", numeric " << num;
  };
  std::map<std::string, Tensor> grads;
  for (Parameter* p : net->parameters()) grads[p->name] = be->to_host(p->grad);
  auto w = net->snapshot();
  for (auto& [name, tensor] : w) {
    for (int64_t i = 0; i < tensor.numel(); ++i) {
      float& x = tensor.data<float>()[i];
      const float orig = x;
      x = orig + eps;
      net->restore(w);
      const double hi = bce(*be, *net, values, ids, labels, false);
      x = orig - eps;
      net->restore(w);
      const double lo = bce(*be, *net, values, ids, labels, false);
      x = orig;
      const double num = (hi - lo) / (2.0 * eps);
      double ana = 0;
      if (name == "embedding.tables") {
        ana =
            static_cast<double>(before.at(name).data<float>()[i]) - after.at(name).data<float>()[i];
        touched += ana != 0.0;
      } else {
        ana = grads.at(name).data<float>()[i];
      }
      check(name, i, num, ana);
    }
  }
  net->restore(w);
  EXPECT_EQ(bad, 0) << model;
  EXPECT_GT(touched, 0) << model;
}

const char* kSgdOne = R"("sparse_optimizer": {"type": "sgd", "lr": 1}, "activation": "tanh",
    "dropout": 0, "embedding_dim": 3)";

SparseLayout fields_layout() {
  SparseLayout l;
  l.fields = true;
  l.table_rows = {4, 3, 5};
  return l;
}

TEST(SparseInput, DlrmOnFieldsMatchesFiniteDifferences) {
  check_finite_differences(std::string(R"({"type": "dlrm", "hidden": [5], )") + kSgdOne + "}",
                           fields_layout());
}

// libSVM without fields: one table, so the interaction is that table's pooled vector alone.
TEST(SparseInput, DlrmOnOneTableMatchesFiniteDifferences) {
  SparseLayout l;
  l.table_rows = {9};
  check_finite_differences(std::string(R"({"type": "dlrm", "hidden": [5], )") + kSgdOne + "}", l);
}

TEST(SparseInput, DcnV2OnFieldsMatchesFiniteDifferences) {
  check_finite_differences(
      std::string(R"({"type": "dcn_v2", "hidden": [4], "cross": {"layers": 2}, )") + kSgdOne + "}",
      fields_layout());
}

TEST(SparseInput, WideDeepOnFieldsMatchesFiniteDifferences) {
  check_finite_differences(std::string(R"({"type": "wide_deep", "hidden": [4], )") + kSgdOne + "}",
                           fields_layout());
}

// A DLRM trains on libFM rows directly, as the behaviour task steps it (the dense optimizer and the
// tables' sparse group): field 0's feature parity decides the label (10% flipped), field 1 is
// noise and field 2 a weighted noise feature. The best validation AUC is about 0.90.
TEST(SparseInput, DlrmLearnsFromLibFmRows) {
  TempDir dir;
  std::mt19937 rng(1);
  std::string text;
  for (int r = 0; r < 4000; ++r) {
    const unsigned a = rng() % 20, b = rng() % 30;
    const bool pos = (a % 2 == 0) != (rng() % 10 == 0);
    text += std::string(pos ? "1" : "0") + " 0:" + std::to_string(a) + ":1 1:" + std::to_string(b) +
            ":1 2:" + std::to_string(rng() % 3) + ":" +
            std::to_string(0.5 + (rng() % 100) / 100.0) + "\n";
  }
  const std::string p = write_file(dir.file("clicks.ffm"), text);
  BehaviourConfig c = libsvm_config(p, R"({"type": "dlrm", "embedding_dim": 4, "hidden": [8],
    "dropout": 0, "sparse_optimizer": {"type": "adagrad", "lr": 0.1}})");
  c.train.epochs = 4;
  const SparseRows rows = prepare_sparse(c.data, FileSpec{p, 0}, nullptr, nullptr, 5);
  EXPECT_EQ(rows.layout.table_rows, (std::vector<int64_t>{20, 30, 3}));
  record_layout(c, rows.layout);
  MlpSpec spec;
  spec.n_dense = rows.layout.total_rows();
  auto be = make_host_backend();
  std::unique_ptr<BehaviourNet> net = make_net(*be, c, Preprocessor(), spec, 5, 1000);
  BatcherOptions bo;
  bo.batch_size = 64;
  bo.epochs = c.train.epochs;
  bo.seed = 5;
  Batcher batcher(rows.train, bo);
  Optimizer opt =
      train::epoch_optimizer(*be, c.train, batcher.batches_per_epoch(), net->parameters());
  opt.add_sparse_group("tables", *net->sparse_group());
  Tensor loss = be->empty({64}), dl = be->empty({64, 1});
  Batch b;
  while (batcher.next(b)) {
    Tensor l = loss.rows(0, b.rows), g = dl.rows(0, b.rows);
    be->bce_with_logits(net->forward(b.dense, b.cat, Mode::Train, 0), b.labels,
                        1.f / static_cast<float>(b.rows), l, g);
    net->backward(g);
    opt.step();
  }
  const EncodedTable& v = rows.validation;
  Tensor vd = Tensor::host({v.rows, v.n_dense}), vc = Tensor::host({v.rows, v.n_cat}, DType::I64);
  std::copy(v.dense.begin(), v.dense.end(), vd.data<float>());
  std::copy(v.cat.begin(), v.cat.end(), vc.data<int64_t>());
  Tensor z = be->to_host(net->forward(vd, vc, Mode::Eval, 0));
  for (int64_t i = 0; i < v.rows; ++i) z.data<float>()[i] = math::sigmoid(z.data<float>()[i]);
  BinaryMetrics m;
  m.add(z.data<float>(), v.labels.data(), static_cast<size_t>(v.rows));
  EXPECT_GT(m.compute().auc, 0.85);
}

// The model file records the layout training read, and a DLRM on libFM fields reads back.
TEST(SparseInput, ModelFileRecordsTheLayout) {
  TempDir dir;
  auto be = make_host_backend();
  ModelArtefact a;
  a.config = libsvm_config("t.ffm", R"({"type": "dlrm", "embedding_dim": 4})");
  record_layout(a.config, fields_layout());
  a.spec.n_dense = fields_layout().total_rows();
  std::unique_ptr<BehaviourNet> net = make_net(*be, a.config, Preprocessor(), a.spec, 1, 4);
  a.weights = net->snapshot();
  save_model(dir.file("m.tsr"), a);
  const ModelArtefact back = load_model(dir.file("m.tsr"));
  EXPECT_EQ(sparse_layout(back.config).table_rows, fields_layout().table_rows);
  EXPECT_TRUE(sparse_layout(back.config).fields);
  EXPECT_EQ(back.weights.size(), a.weights.size());
  // Without a recorded layout the model cannot be built.
  BehaviourConfig unfitted = libsvm_config("t.svm", R"({"type": "dlrm"})");
  EXPECT_THROW(sparse_layout(unfitted), Error);
}

}  // namespace
}  // namespace tessera::behaviour
