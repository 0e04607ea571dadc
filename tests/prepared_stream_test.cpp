// Streaming over a prepared directory: PreparedSource (the reader on a prefetch thread) gives the
// reader's batches, resumes at any batch of any epoch with the uninterrupted tail, holds only the
// blocks its shuffle buffer spans and gives every block's pages back; behaviour training with
// data.read "memory" equals the text path, with "stream" it equals itself across a resume, and
// evaluate / predict read a prepared split.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/batch_source.h"
#include "host/data/prepared.h"
#include "host/data/prepared_writer.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/prep.h"
#include "pipelines/behaviour/synthetic.h"

namespace tessera {
namespace {

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/prepared_stream_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  make_directories(d);
  return d;
}

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_TRUE(!d.HasParseError() && d.IsObject()) << json;
  return d;
}

// A synthetic behaviour dataset (csv) and its prepared directory, shards of 700 rows.
struct Data {
  std::string dir, config, prepared;
  explicit Data(const std::string& name, int64_t train_rows = 4000) {
    dir = temp_dir(name);
    behaviour::SyntheticOptions so;
    so.train_rows = train_rows;
    so.test_rows = 1500;
    config = behaviour::write_synthetic_dataset(dir + "/data", so);
    prepared = dir + "/prepared";
    PrepareOptions po;
    po.shard_rows = 700;
    prepare_dataset(behaviour::prepare_inputs_of(config), prepared, po);
  }
  ~Data() { std::filesystem::remove_all(dir); }

  // The config with data.prepared and `read`, block_rows, shuffle_buffer set.
  std::string prepared_config(const std::string& read, int64_t block_rows = 256,
                              int64_t buffer = 1024) const {
    rapidjson::Document c = parse(read_file(config));
    auto& a = c.GetAllocator();
    rapidjson::Value& d = c["data"];
    d.AddMember("prepared", rapidjson::Value(prepared.c_str(), a), a);
    d.AddMember("read", rapidjson::Value(read.c_str(), a), a);
    d.AddMember("block_rows", block_rows, a);
    d.AddMember("shuffle_buffer", buffer, a);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    c.Accept(w);
    const std::string path = dir + "/config-" + read + "-" + std::to_string(block_rows) + "-" +
                             std::to_string(buffer) + ".json";
    write_file_atomic(path, buf.GetString());
    return path;
  }
};

std::vector<Batch> drain(BatchSource& s) {
  std::vector<Batch> out;
  Batch b;
  while (s.next(b)) out.push_back(std::move(b));
  return out;
}

void expect_same(const Batch& a, const Batch& b) {
  ASSERT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.last_in_epoch, b.last_in_epoch);
  EXPECT_EQ(a.lines, b.lines);
  EXPECT_EQ(0, std::memcmp(a.dense.data<float>(), b.dense.data<float>(),
                           sizeof(float) * static_cast<size_t>(a.dense.numel())));
  EXPECT_EQ(0, std::memcmp(a.cat.data<int64_t>(), b.cat.data<int64_t>(),
                           sizeof(int64_t) * static_cast<size_t>(a.cat.numel())));
  EXPECT_EQ(0, std::memcmp(a.labels.data<float>(), b.labels.data<float>(),
                           sizeof(float) * static_cast<size_t>(a.rows)));
}

PreparedReadOptions shuffled(int64_t epochs) {
  PreparedReadOptions o;
  o.batch_size = 96;
  o.shuffle = true;
  o.seed = 5;
  o.block_rows = 100;
  o.shuffle_buffer = 300;
  o.epochs = epochs;
  return o;
}

// The prefetching source gives exactly the reader's batches, and its batch count per epoch.
TEST(PreparedStream, TheSourceGivesTheReadersBatches) {
  const Data d("source", 2500);
  const PreparedDataset ds = PreparedDataset::open(d.prepared);
  PreparedBatchReader reader(ds, shuffled(2));
  std::vector<Batch> want;
  Batch b;
  while (reader.next(b)) want.push_back(std::move(b));
  PreparedSource source(ds, shuffled(2), 2);
  const std::vector<Batch> got = drain(source);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < got.size(); ++k) expect_same(got[k], want[k]);
  const int64_t rows = ds.rows("train");
  EXPECT_EQ(source.batches_per_epoch(), (rows + 95) / 96);
  EXPECT_EQ(static_cast<int64_t>(got.size()), 2 * source.batches_per_epoch());
}

// start_epoch_at's contract on the stream (behaviour training calls seek(epoch - 1, batch)): from
// any batch of any epoch, the uninterrupted source's tail, from a fresh source or a running one.
TEST(PreparedStream, ResumingAtAnyBatchGivesTheUninterruptedTail) {
  const Data d("resume", 2500);
  const PreparedDataset ds = PreparedDataset::open(d.prepared);
  PreparedSource whole(ds, shuffled(3));
  const std::vector<Batch> all = drain(whole);
  const int64_t per_epoch = whole.batches_per_epoch();
  ASSERT_EQ(static_cast<int64_t>(all.size()), 3 * per_epoch);
  for (const auto& [epoch, batch] : std::vector<std::pair<int64_t, int64_t>>{
           {0, 1}, {0, per_epoch - 1}, {1, 0}, {1, 7}, {1, per_epoch}, {2, 3}}) {
    SCOPED_TRACE(std::to_string(epoch) + "/" + std::to_string(batch));
    PreparedSource s(ds, shuffled(3));
    Batch first;
    ASSERT_TRUE(s.next(first));
    s.seek(epoch, batch);
    const std::vector<Batch> tail = drain(s);
    const size_t from = static_cast<size_t>(epoch * per_epoch + batch);
    ASSERT_EQ(tail.size(), all.size() - from);
    for (size_t k = 0; k < tail.size(); ++k) expect_same(tail[k], all[from + k]);
  }
  PreparedSource s(ds, shuffled(3));
  EXPECT_THROW(s.seek(0, per_epoch + 1), Error);
}

// Lockstep parts (the streamed train split under mpirun), every rank's reader made here in one
// process: at one rank they are the plain reader, bit for bit (one process's stream is
// unchanged); at 3 ranks (global batch 100: shares 34, 33, 33) the parts hold every row once per
// epoch, take as many batches each, and a rank out of rows yields empty batches. Bad options are
// refused. (tests/mpi/mpi_streamed_train_test.cpp runs the parts on real ranks.)
TEST(PreparedStream, LockstepPartsDealEveryRowOnceInEqualBatchCounts) {
  const Data d("lockstep", 2500);
  const PreparedDataset ds = PreparedDataset::open(d.prepared);
  PreparedReadOptions one = shuffled(2);
  one.lockstep = true;
  PreparedSource plain(ds, shuffled(2)), lock(ds, one);
  const std::vector<Batch> a = drain(plain), b = drain(lock);
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) expect_same(a[k], b[k]);

  std::vector<int64_t> expected = read_prepared_table(ds, "train").lines;
  std::sort(expected.begin(), expected.end());
  std::vector<std::vector<int64_t>> lines(2);  // [epoch] every rank's lines
  int64_t steps = -1;
  for (int r = 0; r < 3; ++r) {
    PreparedReadOptions o = shuffled(2);
    o.batch_size = 100;
    o.lockstep = true;
    o.rank = r;
    o.world = 3;
    PreparedSource part(ds, o);
    if (steps < 0) steps = part.batches_per_epoch();
    EXPECT_EQ(part.batches_per_epoch(), steps) << "rank " << r;
    const std::vector<Batch> got = drain(part);
    ASSERT_EQ(static_cast<int64_t>(got.size()), 2 * steps) << "rank " << r;
    for (const Batch& x : got) {
      EXPECT_LE(x.rows, r == 0 ? 34 : 33);
      lines[static_cast<size_t>(x.epoch)].insert(lines[static_cast<size_t>(x.epoch)].end(),
                                                 x.lines.begin(), x.lines.end());
    }
  }
  for (auto& e : lines) {
    std::sort(e.begin(), e.end());
    EXPECT_EQ(e, expected);
  }
  PreparedReadOptions bad = one;
  bad.world = 200;
  bad.batch_size = 100;
  EXPECT_THROW(PreparedSource(ds, bad), Error);  // a rank would get no row of a batch
  bad = one;
  bad.last_batch = LastBatch::Drop;
  EXPECT_THROW(PreparedSource(ds, bad), Error);
}

// Bounded memory, through the reader's block counters (not RSS): without a shuffle buffer at most
// the two blocks a batch spans are open; with one, every open block but the one being read has a
// row in the buffer, so open blocks stay within buffer rows + 2 and far below the split; and
// every block's pages are given back once per epoch.
TEST(PreparedStream, TheReaderHoldsOnlyWhatItsBufferSpans) {
  const Data d("memory", 6000);
  const PreparedDataset ds = PreparedDataset::open(d.prepared);
  int64_t blocks = 0;
  for (const SourceInfo& src : ds.manifest().splits.at("train"))
    for (const ShardInfo& sh : src.shards) blocks += (sh.rows + 49) / 50;
  ASSERT_GT(blocks, 80);
  for (const int64_t buffer : {int64_t{0}, int64_t{20}, int64_t{200}}) {
    SCOPED_TRACE(buffer);
    PreparedReadOptions o = shuffled(2);
    o.block_rows = 50;
    o.batch_size = 40;
    o.shuffle_buffer = buffer;
    PreparedBatchReader r(ds, o);
    Batch b;
    int64_t peak_now = 0;
    while (r.next(b)) peak_now = std::max(peak_now, r.open_blocks());
    EXPECT_EQ(r.open_blocks(), 0);
    EXPECT_EQ(r.blocks_released(), 2 * blocks);
    EXPECT_GE(r.peak_open_blocks(), std::max<int64_t>(peak_now, 1));
    EXPECT_LE(r.peak_open_blocks(), buffer <= 1 ? 2 : buffer + 2);
    EXPECT_LT(r.peak_open_blocks(), blocks / 2);
    PreparedSource s(ds, o);
    drain(s);
    EXPECT_EQ(s.blocks_released(), 2 * blocks);
    EXPECT_EQ(s.peak_open_blocks(), r.peak_open_blocks());
  }
}

behaviour::Result train(const std::string& config, const std::string& run_dir, int64_t epochs,
                        int64_t stop = -1, bool resumable = false) {
  behaviour::TrainOptions o;
  o.quiet = true;
  o.device = "cpu";
  o.epochs = epochs;
  if (resumable) {
    o.resume = run_dir;
    o.stop_after_epochs = stop;
  } else {
    o.run_dir = run_dir;
  }
  return behaviour::train(config, o);
}

void expect_same_metrics(const rapidjson::Document& a, const rapidjson::Document& b) {
  for (const char* split : {"validation", "test"}) {
    ASSERT_TRUE(a.HasMember(split) && b.HasMember(split)) << split;
    for (const char* m : {"auc", "logloss", "accuracy"})
      EXPECT_EQ(a[split][m].GetDouble(), b[split][m].GetDouble()) << split << " " << m;
  }
}

// read "memory" is the text path exactly (same rows, preprocessor, permutation); "stream" trains
// on the same rows in its block order, and a run stopped after an epoch and resumed ends as the
// uninterrupted one.
TEST(PreparedStream, MemoryEqualsTextAndStreamEqualsItselfAcrossAResume) {
  const Data d("train", 3000);
  const rapidjson::Document text = parse(train(d.config, d.dir + "/text", 2).json);
  const rapidjson::Document memory =
      parse(train(d.prepared_config("memory"), d.dir + "/memory", 2).json);
  expect_same_metrics(text, memory);
  EXPECT_STREQ(memory["data_read"].GetString(), "memory");
  EXPECT_EQ(memory["train_rows"].GetInt64(), text["train_rows"].GetInt64());

  const std::string stream_config = d.prepared_config("stream");
  const rapidjson::Document whole = parse(train(stream_config, d.dir + "/whole", 3, -1, true).json);
  EXPECT_STREQ(whole["data_read"].GetString(), "stream");
  EXPECT_EQ(whole["train_rows"].GetInt64(), text["train_rows"].GetInt64());
  EXPECT_EQ(whole["test_rows"].GetInt64(), 1500);
  EXPECT_GT(whole["test"]["auc"].GetDouble(), 0.6);
  const rapidjson::Document stopped =
      parse(train(stream_config, d.dir + "/resumed", 3, 1, true).json);
  EXPECT_EQ(stopped["stopped_after_epoch"].GetInt64(), 1);
  const rapidjson::Document resumed =
      parse(train(stream_config, d.dir + "/resumed", 3, -1, true).json);
  expect_same_metrics(whole, resumed);
  // The streamed scores are the in-memory scores of the same model: evaluate reads the prepared
  // test split streaming and the text test file into memory.
  behaviour::CommonOptions e;
  e.quiet = true;
  e.device = "cpu";
  const std::string model = d.dir + "/whole/model.tsm";
  const rapidjson::Document from_shards = parse(behaviour::evaluate(model, d.prepared, e).json);
  const rapidjson::Document from_text =
      parse(behaviour::evaluate(model, d.dir + "/data/test.csv", e).json);
  EXPECT_EQ(from_shards["rows"].GetInt64(), 1500);
  EXPECT_EQ(from_shards["metrics"]["auc"].GetDouble(), from_text["metrics"]["auc"].GetDouble());
  EXPECT_EQ(from_shards["metrics"]["auc"].GetDouble(), whole["test"]["auc"].GetDouble());
  const rapidjson::Document val =
      parse(behaviour::evaluate(model, d.prepared + ":validation", e).json);
  EXPECT_EQ(val["metrics"]["auc"].GetDouble(), whole["validation"]["auc"].GetDouble());
  EXPECT_THROW(behaviour::evaluate(model, d.prepared + ":nosuch", e), Error);
}

// predict over a prepared split writes the text path's lines and scores.
TEST(PreparedStream, PredictReadsAPreparedSplit) {
  const Data d("predict", 2000);
  train(d.config, d.dir + "/run", 1);
  behaviour::PredictOptions o;
  o.quiet = true;
  o.device = "cpu";
  o.batch_size = 333;
  const std::string model = d.dir + "/run/model.tsm";
  behaviour::predict(model, d.prepared, d.dir + "/shards.csv", o);
  behaviour::predict(model, d.dir + "/data/test.csv", d.dir + "/text.csv", o);
  const std::string shards = read_file(d.dir + "/shards.csv"),
                    text = read_file(d.dir + "/text.csv");
  EXPECT_EQ(std::count(shards.begin(), shards.end(), '\n'), 1501);
  EXPECT_EQ(shards, text);
  // A directory prepared from other data (another fitted preprocessor) is refused.
  const Data other("predict_other", 2500);
  try {
    behaviour::predict(model, other.prepared, d.dir + "/other.csv", o);
    ADD_FAILURE() << "another preprocessor's shards were scored";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another preprocessor"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tessera
