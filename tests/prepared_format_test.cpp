// The prepared data format: `tessera prep`'s shards read back as the text path's rows, shuffled,
// resumed, in parts; reruns, interruption, appending; corrupt shards and manifests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <tuple>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/data/batcher.h"
#include "host/data/encoded_table.h"
#include "host/data/prepared.h"
#include "host/data/prepared_writer.h"
#include "tests/data_test_util.h"

namespace tessera {
namespace {

using testing::TempDir;
using testing::write_file;

// A CSV with a header, missing values, a small and a larger vocabulary, rare tokens.
std::string make_csv(int rows, uint64_t seed) {
  std::ostringstream s;
  s << "age,income,city,item,label\n";
  uint64_t x = seed;
  auto next = [&] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x >> 33;
  };
  for (int i = 0; i < rows; ++i) {
    const int age = 18 + static_cast<int>(next() % 60);
    const bool missing = next() % 11 == 0;
    const int city = static_cast<int>(next() % 25);
    const int item = static_cast<int>(next() % 700);
    const int label = (age + city + (next() % 7)) % 2;
    s << age << ",";
    if (missing)
      s << "?";
    else
      s << (next() % 100000);
    s << ",c" << city << ",i" << item << "," << label << "\n";
  }
  return s.str();
}

TableSchema csv_schema() {
  TableSchema s;
  s.header = true;
  auto col = [](const char* name, ColumnType t) {
    ColumnSpec c;
    c.name = name;
    c.type = t;
    return c;
  };
  s.columns = {col("age", ColumnType::Numeric), col("income", ColumnType::Numeric),
               col("city", ColumnType::Categorical), col("item", ColumnType::Categorical),
               col("label", ColumnType::Label)};
  s.columns[1].transform = NumericTransform::Log1p;
  return s;
}

struct Fixture {
  TempDir tmp;
  PrepareInputs in;
  std::string dir;
  Fixture() {
    in.schema = csv_schema();
    in.options.categorical.min_count = 2;  // rare items share the OOV row
    in.train.path = write_file(tmp.file("train.csv"), make_csv(3000, 1));
    in.test = FileSpec{write_file(tmp.file("test.csv"), make_csv(700, 2)), 0};
    in.validation_fraction = 0.2;
    in.seed = 7;
    dir = tmp.file("prepared");
  }
  PrepareOptions small_shards() const {
    PrepareOptions o;
    o.shard_rows = 450;
    return o;
  }
};

std::vector<Batch> drain_reader(PreparedBatchReader& r) {
  std::vector<Batch> out;
  Batch b;
  while (r.next(b)) out.push_back(std::move(b));
  return out;
}

std::vector<Batch> drain_batcher(const EncodedTable& t, int64_t batch_size) {
  BatcherOptions o;
  o.batch_size = batch_size;
  o.shuffle = ShuffleMode::None;
  Batcher batcher(t, o);
  std::vector<Batch> out;
  Batch b;
  while (batcher.next(b)) out.push_back(std::move(b));
  return out;
}

void expect_same_batch(const Batch& a, const Batch& b) {
  ASSERT_EQ(a.rows, b.rows);
  ASSERT_EQ(a.dense.numel(), b.dense.numel());
  EXPECT_EQ(0, std::memcmp(a.dense.data<float>(), b.dense.data<float>(),
                           sizeof(float) * static_cast<size_t>(a.dense.numel())));
  ASSERT_EQ(a.cat.numel(), b.cat.numel());
  EXPECT_TRUE(std::equal(a.cat.data<int64_t>(), a.cat.data<int64_t>() + a.cat.numel(),
                         b.cat.data<int64_t>()));
  EXPECT_TRUE(
      std::equal(a.labels.data<float>(), a.labels.data<float>() + a.rows, b.labels.data<float>()));
  EXPECT_EQ(a.lines, b.lines);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.last_in_epoch, b.last_in_epoch);
}

// One row's values, to compare row multisets.
using RowKey = std::tuple<int64_t, float, std::vector<float>, std::vector<int64_t>>;
std::vector<RowKey> row_keys(const std::vector<Batch>& batches) {
  std::vector<RowKey> keys;
  for (const Batch& b : batches) {
    const int64_t nd = b.dense.numel() / std::max<int64_t>(b.rows, 1);
    const int64_t nc = b.cat.numel() / std::max<int64_t>(b.rows, 1);
    for (int64_t i = 0; i < b.rows; ++i) {
      const float* d = b.dense.data<float>() + i * nd;
      const int64_t* c = b.cat.data<int64_t>() + i * nc;
      keys.emplace_back(b.lines[i], b.labels.data<float>()[i], std::vector<float>(d, d + nd),
                        std::vector<int64_t>(c, c + nc));
    }
  }
  return keys;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::vector<uint32_t> shard_crcs(const std::string& dir) {
  const PreparedDataset d = PreparedDataset::open(dir);
  std::vector<uint32_t> out;
  for (const auto& [split, sources] : d.manifest().splits)
    for (const SourceInfo& s : sources)
      for (const ShardInfo& sh : s.shards) out.push_back(sh.crc32);
  return out;
}

TEST(PreparedFormat, BatchesEqualTheTextPathWithoutShuffle) {
  Fixture f;
  const PrepareResult r = prepare_dataset(f.in, f.dir, f.small_shards());
  EXPECT_EQ(r.status, PrepareStatus::Prepared);
  const TrainValidation tv = load_train_validation(f.in.train, f.in.schema, f.in.options,
                                                   f.in.validation_fraction, f.in.seed);
  const EncodedTable test = load_table(*f.in.test, tv.preprocessor);
  const PreparedDataset data = PreparedDataset::open(f.dir);
  EXPECT_EQ(data.preprocessor().to_json_string(), tv.preprocessor.to_json_string());
  EXPECT_GT(r.shards_written, 6);  // several shards per split
  const std::pair<std::string, const EncodedTable*> splits[] = {
      {"train", &tv.train}, {"validation", &tv.validation}, {"test", &test}};
  for (const auto& [split, table] : splits) {
    SCOPED_TRACE(split);
    EXPECT_EQ(data.rows(split), table->rows);
    PreparedReadOptions o;
    o.split = split;
    o.batch_size = 64;
    PreparedBatchReader reader(data, o);
    const std::vector<Batch> got = drain_reader(reader);
    const std::vector<Batch> want = drain_batcher(*table, 64);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) expect_same_batch(got[i], want[i]);
  }
  // Ids in the narrowest type: 25 cities fit a byte, the items need 16 bits.
  const auto& cols = data.manifest().columns;
  EXPECT_EQ(cols[2].name, "cat:city");
  EXPECT_EQ(cols[2].type, PreparedType::U8);
  EXPECT_EQ(cols[3].type, PreparedType::I16);
}

// Rows 3, 500 and 2001 (lines 4, 501, 2002) are bad: a word for a number, a missing field.
std::string with_bad_rows(std::string csv) {
  for (const int line : {4, 501, 2002}) {
    size_t at = 0;
    for (int l = 1; l < line; ++l) at = csv.find('\n', at) + 1;
    if (line == 501) {  // the label field dropped
      const size_t end = csv.find('\n', at);
      const size_t last = csv.rfind(',', end);
      csv.erase(last, end - last);
    } else {  // the age a word
      csv.replace(at, csv.find(',', at) - at, "many");
    }
  }
  return csv;
}

TEST(PreparedFormat, BadRowsAreSkippedOrRaisedAsTheTextPathDoes) {
  Fixture f;
  f.in.schema.on_error = BadRowPolicy::Skip;
  write_file(f.in.train.path, with_bad_rows(make_csv(3000, 1)));
  PrepareOptions one = f.small_shards(), many = f.small_shards();
  one.threads = 1;
  many.threads = 3;
  TempDir other;
  const PrepareResult r = prepare_dataset(f.in, f.dir, many);
  prepare_dataset(f.in, other.file("p"), one);
  EXPECT_EQ(shard_crcs(f.dir), shard_crcs(other.file("p")));  // threads change nothing
  const TrainValidation tv = load_train_validation(f.in.train, f.in.schema, f.in.options,
                                                   f.in.validation_fraction, f.in.seed);
  EXPECT_EQ(r.bad_rows, tv.train_report.bad_rows.skipped + tv.validation_report.bad_rows.skipped);
  EXPECT_EQ(r.bad_rows, 3);
  const PreparedDataset data = PreparedDataset::open(f.dir);
  PreparedReadOptions o;
  o.batch_size = 64;
  PreparedBatchReader reader(data, o);
  const std::vector<Batch> got = drain_reader(reader), want = drain_batcher(tv.train, 64);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) expect_same_batch(got[i], want[i]);
  // Under on_error "error" the first bad row in file order stops prep with the text path's error.
  f.in.schema.on_error = BadRowPolicy::Error;
  const std::string text = error_of([&] {
    load_train_validation(f.in.train, f.in.schema, f.in.options, f.in.validation_fraction,
                          f.in.seed);
  });
  const std::string prep = error_of([&] { prepare_dataset(f.in, other.file("q"), many); });
  EXPECT_NE(prep.find("column 1 (age): expected a number, got 'many'"), std::string::npos) << prep;
  EXPECT_EQ(prep, text);
}

// The preprocessor prep stores is fit_preprocessor's (what training fits), byte for byte,
// whatever the thread count, over several blocks of records with bad rows skipped.
TEST(PreparedFormat, ThePreparedPreprocessorIsTheSerialFitByteForByte) {
  Fixture f;
  f.in.schema.on_error = BadRowPolicy::Skip;
  std::string csv = with_bad_rows(make_csv(40000, 5));  // three blocks of records
  for (int l = 0, at = 0; l < 36000; ++l) {             // bad rows in the later blocks too
    at = static_cast<int>(csv.find('\n', at)) + 1;
    if (l % 9000 == 8999) csv.replace(at, csv.find(',', at) - at, "many");
  }
  write_file(f.in.train.path, csv);
  BadRowReport serial_bad;
  const RowSelection train_rows{SplitPart::Train, f.in.validation_fraction, f.in.seed};
  const std::string want =
      fit_preprocessor(f.in.train, f.in.schema, f.in.options, train_rows, &serial_bad)
          .to_json_string();
  EXPECT_GE(serial_bad.skipped, 4);  // of the 7 bad records, those drawn for training
  for (int threads : {1, 2, 5}) {
    TempDir out;
    PrepareOptions o;
    o.threads = threads;
    prepare_dataset(f.in, out.file("p"), o);
    EXPECT_EQ(read_file(out.file("p") + "/preprocessor.json"), want) << threads << " threads";
  }
}

TEST(PreparedFormat, AWholeSplitReadsAsTheTextPathsTable) {
  Fixture f;
  prepare_dataset(f.in, f.dir, f.small_shards());
  const TrainValidation tv = load_train_validation(f.in.train, f.in.schema, f.in.options,
                                                   f.in.validation_fraction, f.in.seed);
  const PreparedDataset data = PreparedDataset::open(f.dir);
  const EncodedTable t = read_prepared_table(data, "validation");
  EXPECT_EQ(t.rows, tv.validation.rows);
  EXPECT_EQ(t.n_dense, tv.validation.n_dense);
  EXPECT_EQ(t.n_cat, tv.validation.n_cat);
  EXPECT_EQ(t.cat, tv.validation.cat);
  EXPECT_EQ(t.labels, tv.validation.labels);
  EXPECT_EQ(t.lines, tv.validation.lines);
  ASSERT_EQ(t.dense.size(), tv.validation.dense.size());
  EXPECT_EQ(0, std::memcmp(t.dense.data(), tv.validation.dense.data(), 4 * t.dense.size()));
}

TEST(PreparedFormat, ShuffledBatchesArePermutationsSeededByTheSeed) {
  Fixture f;
  prepare_dataset(f.in, f.dir, f.small_shards());
  const PreparedDataset data = PreparedDataset::open(f.dir);
  PreparedReadOptions o;
  o.batch_size = 50;
  o.block_rows = 64;
  o.shuffle_buffer = 200;
  PreparedBatchReader plain(data, o);
  const std::vector<RowKey> in_order = row_keys(drain_reader(plain));
  o.shuffle = true;
  o.seed = 3;
  PreparedBatchReader a(data, o), b(data, o);
  o.seed = 4;
  PreparedBatchReader c(data, o);
  const std::vector<RowKey> ka = row_keys(drain_reader(a)), kb = row_keys(drain_reader(b)),
                            kc = row_keys(drain_reader(c));
  EXPECT_EQ(ka, kb);  // same seed, same order
  EXPECT_NE(ka, kc);
  EXPECT_NE(ka, in_order);
  std::vector<RowKey> sorted_a = ka, sorted_plain = in_order;
  std::sort(sorted_a.begin(), sorted_a.end());
  std::sort(sorted_plain.begin(), sorted_plain.end());
  EXPECT_EQ(sorted_a, sorted_plain);
}

TEST(PreparedFormat, ResumingAtAPositionGivesTheSameTail) {
  Fixture f;
  prepare_dataset(f.in, f.dir, f.small_shards());
  const PreparedDataset data = PreparedDataset::open(f.dir);
  PreparedReadOptions o;
  o.batch_size = 64;
  o.shuffle = true;
  o.seed = 11;
  o.block_rows = 100;
  o.shuffle_buffer = 300;
  o.epochs = 2;
  std::vector<Batch> all;
  std::vector<PreparedPosition> positions;
  PreparedBatchReader full(data, o);
  Batch b;
  while (full.next(b)) {
    all.push_back(std::move(b));
    positions.push_back(full.position());
  }
  const size_t per_epoch = static_cast<size_t>((data.rows("train") + 63) / 64);
  ASSERT_EQ(all.size(), 2 * per_epoch);
  int64_t blocks = 0;  // every block's pages are given back once per epoch
  for (const SourceInfo& src : data.manifest().splits.at("train"))
    for (const ShardInfo& sh : src.shards) blocks += (sh.rows + 99) / 100;
  EXPECT_EQ(full.blocks_released(), 2 * blocks);
  for (const size_t k : {size_t{0}, size_t{5}, per_epoch - 1, per_epoch + 3}) {
    SCOPED_TRACE(k);
    PreparedReadOptions resumed = o;
    resumed.start = positions[k];
    PreparedBatchReader r(data, resumed);
    const std::vector<Batch> tail = drain_reader(r);
    ASSERT_EQ(tail.size(), all.size() - k - 1);
    for (size_t i = 0; i < tail.size(); ++i) expect_same_batch(tail[i], all[k + 1 + i]);
  }
}

TEST(PreparedFormat, PartsAreDisjointAndCoverTheSplit) {
  Fixture f;
  prepare_dataset(f.in, f.dir, f.small_shards());
  const PreparedDataset data = PreparedDataset::open(f.dir);
  std::vector<RowKey> parts;
  for (int rank = 0; rank < 3; ++rank) {
    PreparedReadOptions o;
    o.shuffle = true;
    o.seed = 5;
    o.block_rows = 128;
    o.rank = rank;
    o.world = 3;
    PreparedBatchReader r(data, o);
    const std::vector<RowKey> k = row_keys(drain_reader(r));
    EXPECT_EQ(static_cast<int64_t>(k.size()), r.rows_in_epoch(0));
    EXPECT_GT(k.size(), 0u);
    parts.insert(parts.end(), k.begin(), k.end());
  }
  PreparedReadOptions o;
  PreparedBatchReader whole(data, o);
  std::vector<RowKey> all = row_keys(drain_reader(whole));
  std::sort(parts.begin(), parts.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(parts, all);
}

TEST(PreparedFormat, RerunIsUpToDateUntilASourceChanges) {
  Fixture f;
  prepare_dataset(f.in, f.dir, f.small_shards());
  const auto mtime = std::filesystem::last_write_time(f.dir + "/manifest.json");
  const PrepareResult again = prepare_dataset(f.in, f.dir, f.small_shards());
  EXPECT_EQ(again.status, PrepareStatus::UpToDate);
  EXPECT_EQ(again.shards_written, 0);
  EXPECT_EQ(std::filesystem::last_write_time(f.dir + "/manifest.json"), mtime);
  write_file(f.in.test->path, make_csv(500, 9));  // the test file changes
  const PrepareResult changed = prepare_dataset(f.in, f.dir, f.small_shards());
  EXPECT_EQ(changed.status, PrepareStatus::Prepared);
  EXPECT_EQ(changed.rows.at("test"), 500);
  EXPECT_EQ(PreparedDataset::open(f.dir).rows("test"), 500);
  // A different shard size is a different dataset too.
  PrepareOptions bigger;
  bigger.shard_rows = 4000;
  EXPECT_EQ(prepare_dataset(f.in, f.dir, bigger).status, PrepareStatus::Prepared);
  EXPECT_EQ(shard_crcs(f.dir).size(), 3u);  // one shard per split; the old ones are removed
  const auto entries = std::filesystem::directory_iterator(f.dir);
  // manifest.json, preprocessor.json and 3 shards
  EXPECT_EQ(std::distance(begin(entries), end(entries)), 5);
}

// The fitted preprocessor is written once, to its own checksummed file; the manifest rewritten
// after every shard only names it.
TEST(PreparedFormat, ThePreprocessorIsWrittenOnceBesideTheManifest) {
  Fixture f;
  PrepareOptions stop = f.small_shards();
  stop.stop_after_shards = 3;
  EXPECT_THROW(prepare_dataset(f.in, f.dir, stop), Error);
  const std::string pre_path = f.dir + "/preprocessor.json";
  const auto written = std::filesystem::last_write_time(pre_path);
  EXPECT_EQ(prepare_dataset(f.in, f.dir, f.small_shards()).status, PrepareStatus::Resumed);
  EXPECT_EQ(std::filesystem::last_write_time(pre_path), written);  // kept, not rewritten
  const std::string text = read_file(f.dir + "/manifest.json");
  EXPECT_EQ(text.find("\"preprocessor\""), std::string::npos);
  EXPECT_NE(text.find("\"preprocessor_file\""), std::string::npos);
  const std::string pre_text = read_file(pre_path);
  EXPECT_LT(text.size(), pre_text.size());
  const PreparedManifest m = PreparedManifest::parse(text, f.dir + "/manifest.json");
  EXPECT_EQ(m.preprocessor_file, "preprocessor.json");
  EXPECT_EQ(m.preprocessor_json, pre_text);
  const PreparedManifest bare = PreparedManifest::parse_text(text, "manifest.json");
  EXPECT_TRUE(bare.preprocessor_json.empty());  // no file read
  EXPECT_EQ(bare.to_json(), text);
  const PreparedDataset data = PreparedDataset::open(f.dir);
  EXPECT_EQ(data.preprocessor().to_json_string(), pre_text);
}

// A directory written before the preprocessor had its own file (held inline in the manifest)
// still opens, reads the same rows and is up to date for a rerun.
TEST(PreparedFormat, AnInlinePreprocessorManifestStillOpens) {
  Fixture f;
  prepare_dataset(f.in, f.dir, f.small_shards());
  const std::string path = f.dir + "/manifest.json";
  PreparedReadOptions o;
  o.batch_size = 128;
  std::vector<RowKey> want;
  {
    const PreparedDataset data = PreparedDataset::open(f.dir);
    PreparedBatchReader reader(data, o);
    want = row_keys(drain_reader(reader));
  }
  PreparedManifest m = PreparedManifest::parse(read_file(path), path);
  m.preprocessor_file.clear();
  m.version = 1;
  const std::string old_layout = m.to_json();
  EXPECT_NE(old_layout.find("\"preprocessor\""), std::string::npos);
  EXPECT_EQ(old_layout.find("\"preprocessor_file\""), std::string::npos);
  write_file(path, old_layout);
  std::filesystem::remove(f.dir + "/preprocessor.json");
  const PreparedDataset data = PreparedDataset::open(f.dir);
  PreparedBatchReader reader(data, o);
  EXPECT_EQ(row_keys(drain_reader(reader)), want);
  EXPECT_EQ(prepare_dataset(f.in, f.dir, f.small_shards()).status, PrepareStatus::UpToDate);
  // Both layouts at once is not a manifest.
  std::string both = old_layout;
  both.insert(both.find("\"preprocessor\""),
              "\"preprocessor_file\": {\"file\": \"p.json\", \"bytes\": 2, \"crc32\": 0}, ");
  write_file(path, both);
  std::string e = error_of([&] { PreparedDataset::open(f.dir); });
  EXPECT_NE(e.find("preprocessor_file needs manifest version 2"), std::string::npos) << e;
  both.replace(both.find("\"version\": 1"), 12, "\"version\": 2");
  write_file(path, both);
  e = error_of([&] { PreparedDataset::open(f.dir); });
  EXPECT_NE(e.find("both present"), std::string::npos) << e;
}

TEST(PreparedFormat, ACorruptPreprocessorFileIsAnErrorNamingIt) {
  Fixture f;
  prepare_dataset(f.in, f.dir, f.small_shards());
  const std::string pre_path = f.dir + "/preprocessor.json";
  const std::string good = read_file(pre_path);
  std::string bad = good;
  bad[bad.size() / 2] ^= 0x01;
  write_file(pre_path, bad);
  std::string e = error_of([&] { PreparedDataset::open(f.dir); });
  EXPECT_NE(e.find("preprocessor.json: preprocessor file checksum"), std::string::npos) << e;
  write_file(pre_path, good.substr(0, good.size() - 1));
  e = error_of([&] { PreparedDataset::open(f.dir); });
  EXPECT_NE(e.find("preprocessor.json: preprocessor file is"), std::string::npos) << e;
  std::filesystem::remove(pre_path);
  e = error_of([&] { PreparedDataset::open(f.dir); });
  EXPECT_NE(e.find("preprocessor.json: the preprocessor file"), std::string::npos) << e;
  // A rerun cannot trust the directory: it prepares it again, and it opens.
  EXPECT_EQ(prepare_dataset(f.in, f.dir, f.small_shards()).status, PrepareStatus::Prepared);
  EXPECT_EQ(read_file(pre_path), good);
  EXPECT_EQ(PreparedDataset::open(f.dir).preprocessor().to_json_string(), good);
}

TEST(PreparedFormat, AnInterruptedPrepResumesWithCompleteShards) {
  Fixture f;
  TempDir fresh;
  prepare_dataset(f.in, fresh.file("p"), f.small_shards());
  PrepareOptions stop = f.small_shards();
  stop.stop_after_shards = 4;
  EXPECT_THROW(prepare_dataset(f.in, f.dir, stop), Error);
  try {
    PreparedDataset::open(f.dir);
    ADD_FAILURE() << "an unfinished dataset opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("complete is false"), std::string::npos) << e.what();
  }
  const PrepareResult resumed = prepare_dataset(f.in, f.dir, f.small_shards());
  EXPECT_EQ(resumed.status, PrepareStatus::Resumed);
  const std::vector<uint32_t> want = shard_crcs(fresh.file("p"));
  EXPECT_EQ(resumed.shards_written + 4, static_cast<int64_t>(want.size()));
  EXPECT_EQ(shard_crcs(f.dir), want);  // the same bytes as a prep that was never stopped
}

TEST(PreparedFormat, AppendingADayPreparesOnlyThatFile) {
  Fixture f;
  prepare_dataset(f.in, f.dir, f.small_shards());
  const int64_t before = PreparedDataset::open(f.dir).rows("train");
  const std::string day2 = write_file(f.tmp.file("day2.csv"), make_csv(800, 3));
  const PrepareResult r = append_source(f.dir, FileSpec{day2, 0}, f.small_shards());
  EXPECT_EQ(r.status, PrepareStatus::Appended);
  EXPECT_EQ(r.records_read, 800);
  EXPECT_EQ(r.shards_written, 2);
  EXPECT_EQ(append_source(f.dir, FileSpec{day2, 0}).status, PrepareStatus::UpToDate);
  // The config's own sources are unchanged: a rerun keeps the appended day.
  EXPECT_EQ(prepare_dataset(f.in, f.dir, f.small_shards()).status, PrepareStatus::UpToDate);
  const PreparedDataset data = PreparedDataset::open(f.dir);
  EXPECT_EQ(data.rows("train"), before + 800);
  const EncodedTable want = load_table(FileSpec{day2, 0}, data.preprocessor());
  PreparedReadOptions o;
  o.batch_size = 100;
  o.start = PreparedPosition{0, before};
  PreparedBatchReader reader(data, o);
  const std::vector<RowKey> got = row_keys(drain_reader(reader));
  const std::vector<RowKey> expected = row_keys(drain_batcher(want, 100));
  EXPECT_EQ(got, expected);
}

TEST(PreparedFormat, ACorruptShardIsAChecksumErrorNamingIt) {
  Fixture f;
  prepare_dataset(f.in, f.dir, f.small_shards());
  const std::string shard = f.dir + "/train-00001.tshard";
  std::string bytes = read_file(shard);
  bytes[bytes.size() - 10] ^= 0x40;  // a bit of the line column
  write_file(shard, bytes);
  const PreparedDataset data = PreparedDataset::open(f.dir);  // headers are intact
  PreparedReadOptions o;
  PreparedBatchReader reader(data, o);
  const std::string e = error_of([&] { drain_reader(reader); });
  EXPECT_NE(e.find("train-00001.tshard: checksum mismatch"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { data.verify("train"); }).find("checksum mismatch"), std::string::npos);
  std::filesystem::resize_file(shard, bytes.size() - 100);
  const std::string t = error_of([&] { PreparedDataset::open(f.dir); });
  EXPECT_NE(t.find("train-00001.tshard: shard is"), std::string::npos) << t;
  std::filesystem::remove(shard);
  EXPECT_NE(
      error_of([&] { PreparedDataset::open(f.dir); }).find("train-00001.tshard: shard is missing"),
      std::string::npos);
}

TEST(PreparedFormat, ABrokenManifestIsAnErrorNamingTheField) {
  Fixture f;
  prepare_dataset(f.in, f.dir, f.small_shards());
  const std::string path = f.dir + "/manifest.json";
  const std::string good = read_file(path);
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    write_file(path, s);
    return error_of([&] { PreparedDataset::open(f.dir); });
  };
  std::string e = with("\"shard_rows\": 450", "\"shard_rows\": \"x\"");
  EXPECT_NE(e.find("manifest.json: shard_rows"), std::string::npos) << e;
  e = with("\"file\": \"test-00000.tshard\"", "\"file\": \"../x.tshard\"");
  EXPECT_NE(e.find("splits.test[0].shards[0].file"), std::string::npos) << e;
  e = with("\"type\": \"u8\"", "\"type\": \"f32\"");
  EXPECT_NE(e.find("columns: table column 0"), std::string::npos) << e;
  e = with("\"version\": 2", "\"version\": 3");
  EXPECT_NE(e.find("version is 3; this build reads 1 to 2"), std::string::npos) << e;
  write_file(path, good.substr(0, good.size() / 2));
  EXPECT_NE(error_of([&] { PreparedDataset::open(f.dir); }).find("manifest.json"),
            std::string::npos);
  std::filesystem::remove(path);
  EXPECT_NE(error_of([&] { PreparedDataset::open(f.dir); }).find("not a prepared dataset"),
            std::string::npos);
}

TEST(PreparedFormat, CorruptShardHeadersAreErrorsNotCrashes) {
  ShardHeader h;
  h.rows = 10;
  h.columns = {{PreparedType::F32, 1, 0, 0}, {PreparedType::U8, 3, 0, 0}};
  std::string good = shard_header_bytes(h);
  good.resize(h.columns.back().offset + h.columns.back().bytes, '\0');
  const auto* p = reinterpret_cast<const uint8_t*>(good.data());
  EXPECT_EQ(parse_shard_header(p, good.size(), "s").columns.size(), 2u);
  EXPECT_NE(error_of([&] { parse_shard_header(p, good.size() - 1, "s"); }).find("truncated"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_shard_header(p, 10, "s"); }).find("too short"), std::string::npos);
  // Any single flipped byte of the header is caught (magic, version, counts or the header CRC).
  const size_t header_bytes = 24 + 24 * 2 + 4;
  for (size_t i = 0; i < header_bytes; ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x5a);
    const std::string e = error_of(
        [&] { parse_shard_header(reinterpret_cast<const uint8_t*>(bad.data()), bad.size(), "s"); });
    EXPECT_EQ(e.rfind("s: shard header: ", 0), 0u) << "byte " << i << ": " << e;
  }
}

}  // namespace
}  // namespace tessera
