// Streamed training data under mpirun (docs/prepared-format.md, "Several ranks"): every rank reads
// the prepared train split through a PreparedSource with lockstep parts, as `tessera train` does
// with data.read "stream" under `mpirun -np N`. ctest runs it at 1, 2, 3 and 4 ranks. Checked
// against the manifest and the file-order reader (read_prepared_table), not against the dealing:
//   - every train row is read exactly once per epoch across the ranks (the (line, label) pairs of
//     all ranks, gathered, are the split's), and every rank yields the same number of batches
//     per epoch, each at most its share of the global batch;
//   - each rank reads only its slices: its block bytes are its rows' records, within 1/N +- 5% of
//     the split's, and each shard's checksum is read by exactly one rank;
//   - a source seeked to any (epoch, batch), including the empty batches of a rank whose rows are
//     out, yields the uninterrupted tail exactly; the positions a checkpoint records for every
//     rank (lockstep_positions, worked out on one rank) are where each rank's reader stands.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "host/data/batch_source.h"
#include "host/data/prepared.h"
#include "host/data/prepared_writer.h"
#include "host/dist/mpi_group.h"
#include "host/dist/process_group.h"
#include "pipelines/behaviour/prep.h"
#include "pipelines/behaviour/synthetic.h"
#include "tests/mpi/mpi_test_util.h"

namespace tessera {
namespace {

dist::ProcessGroup* g_world = nullptr;
std::string g_dir;  // the shared scratch directory

// The synthetic behaviour data prepared into shards of 700 rows (blocks of 100 rows: every
// shard ends in a short block, so the ranks' slices differ in size), made once by rank 0.
const std::string& prepared_dir() {
  static std::string dir;
  if (!dir.empty()) return dir;
  dir = g_dir + "/prepared";
  if (g_world->rank() == 0) {
    behaviour::SyntheticOptions so;
    so.train_rows = 3000;
    so.test_rows = 300;
    const std::string config = behaviour::write_synthetic_dataset(g_dir + "/data", so);
    PrepareOptions po;
    po.shard_rows = 700;
    po.quiet = true;
    prepare_dataset(behaviour::prepare_inputs_of(config), dir, po);
  }
  g_world->barrier();
  return dir;
}

PreparedReadOptions lockstep(int64_t epochs) {
  PreparedReadOptions o;
  o.batch_size = 96;  // 3 and 4 ranks: shares of 32 and 24; 96 % N == 0 is not needed (below)
  o.shuffle = true;
  o.seed = 5;
  o.block_rows = 100;
  o.shuffle_buffer = 300;
  o.rank = g_world->rank();
  o.world = g_world->world();
  o.lockstep = true;
  o.epochs = epochs;
  return o;
}

std::vector<Batch> drain(BatchSource& s) {
  std::vector<Batch> out;
  Batch b;
  while (s.next(b)) out.push_back(std::move(b));
  return out;
}

// Every rank's value of `v`, in rank order.
std::vector<int64_t> gather(int64_t v) {
  std::vector<int64_t> all(static_cast<size_t>(g_world->world()));
  g_world->allgather(&v, sizeof v, all.data());
  return all;
}

// The (line, label) pairs of `batches` in epoch `epoch`, of every rank, sorted.
std::vector<std::pair<int64_t, float>> epoch_rows_of_all_ranks(const std::vector<Batch>& batches,
                                                               int64_t epoch) {
  std::ostringstream mine;
  for (const Batch& b : batches)
    if (b.epoch == epoch)
      for (int64_t i = 0; i < b.rows; ++i)
        mine << b.lines[static_cast<size_t>(i)] << ' ' << b.labels.data<float>()[i] << '\n';
  std::vector<std::pair<int64_t, float>> all;
  for (const std::string& part : g_world->allgatherv(mine.str())) {
    std::istringstream in(part);
    int64_t line;
    float label;
    while (in >> line >> label) all.emplace_back(line, label);
  }
  std::sort(all.begin(), all.end());
  return all;
}

TEST(MpiStreamedTrain, EveryRowOnceAcrossTheRanksInEqualBatchCounts) {
  const PreparedDataset ds = PreparedDataset::open(prepared_dir());
  const EncodedTable table = read_prepared_table(ds, "train");  // file order, one process
  std::vector<std::pair<int64_t, float>> expected;
  for (int64_t i = 0; i < table.rows; ++i)
    expected.emplace_back(table.lines[static_cast<size_t>(i)],
                          table.labels[static_cast<size_t>(i)]);
  std::sort(expected.begin(), expected.end());

  const PreparedReadOptions o = lockstep(2);
  PreparedSource source(ds, o);
  const std::vector<Batch> batches = drain(source);
  const int64_t steps = source.batches_per_epoch();
  const int N = g_world->world(), r = g_world->rank();
  const int64_t share = o.batch_size / N + (r < o.batch_size % N ? 1 : 0);
  ASSERT_EQ(static_cast<int64_t>(batches.size()), 2 * steps);
  for (const int64_t s : gather(steps)) EXPECT_EQ(s, steps) << "batches per epoch differ";
  // Every rank yields its share until its rows are out, then empty batches; the global batch of
  // a step is the ranks' parts together, never more than batch_size.
  for (size_t k = 0; k < batches.size(); ++k) {
    const Batch& b = batches[k];
    EXPECT_EQ(b.index, static_cast<int64_t>(k) % steps);
    EXPECT_EQ(b.last_in_epoch, b.index + 1 == steps);
    EXPECT_LE(b.rows, share);
    if (k > 0 && b.epoch == batches[k - 1].epoch && batches[k - 1].rows < share)
      EXPECT_EQ(b.rows, 0) << "a short batch must be the rank's last rows";
    int64_t global = 0;
    for (const int64_t n : gather(b.rows)) global += n;
    EXPECT_LE(global, o.batch_size);
  }
  for (int64_t e = 0; e < 2; ++e)
    EXPECT_EQ(epoch_rows_of_all_ranks(batches, e), expected) << "epoch " << e;
  // The global batch count: as few steps as the largest rank part allows (ceil of rows / share
  // for the rank that needs most), at most a step or two more than one process takes.
  EXPECT_LE(steps, (table.rows + o.batch_size - 1) / o.batch_size + 2);
}

// Bytes of one row's record: the shard's bytes per row, every column.
int64_t record_bytes(const PreparedManifest& m) {
  int64_t n = 0;
  for (const PreparedColumnInfo& c : m.columns)
    n += c.width * static_cast<int64_t>(prepared_type_size(c.type));
  return n;
}

TEST(MpiStreamedTrain, EachRankReadsOnlyItsSlicesAndChecksOneShardInN) {
  const PreparedDataset ds = PreparedDataset::open(prepared_dir());
  const int N = g_world->world(), r = g_world->rank();
  const int64_t record = record_bytes(ds.manifest()), rows = ds.rows("train");
  // Without checksums: only the rank's slices of the blocks, once per epoch.
  PreparedReadOptions o = lockstep(2);
  o.verify_checksums = false;
  PreparedSource plain(ds, o);
  int64_t mine = 0;
  for (const Batch& b : drain(plain)) mine += b.rows;
  EXPECT_EQ(plain.bytes_read(), mine * record);
  int64_t total = 0;
  for (const int64_t n : gather(plain.bytes_read())) total += n;
  EXPECT_EQ(total, 2 * rows * record) << "the ranks together read every row once per epoch";
  const double share = static_cast<double>(plain.bytes_read()) / static_cast<double>(total);
  EXPECT_NEAR(share, 1.0 / N, 0.05)
      << "rank " << r << " read " << plain.bytes_read() << " of " << total << " bytes";
  // With checksums (a fresh dataset: nothing verified yet): each shard is read whole by one rank.
  const PreparedDataset fresh = PreparedDataset::open(prepared_dir());
  PreparedSource checked(fresh, lockstep(1));
  drain(checked);
  int64_t my_shards = 0;
  int64_t s = 0;
  for (const auto& [split, sources] : fresh.manifest().splits)
    if (split == "train")
      for (const SourceInfo& src : sources)
        for (const ShardInfo& info : src.shards) my_shards += (s++ % N == r) ? info.bytes : 0;
  EXPECT_EQ(checked.bytes_read(), mine / 2 * record + my_shards);
}

TEST(MpiStreamedTrain, ASeekContinuesExactlyWhereEveryRankStood) {
  const PreparedDataset ds = PreparedDataset::open(prepared_dir());
  const PreparedReadOptions o = lockstep(2);
  PreparedBatchReader reader(ds, o);
  const int64_t steps = reader.batches_in_epoch(0);
  std::vector<Batch> all;
  std::vector<PreparedPosition> after;  // the reader's position after each batch
  Batch b;
  while (reader.next(b)) {
    all.push_back(std::move(b));
    after.push_back(reader.position());
  }
  ASSERT_EQ(static_cast<int64_t>(all.size()), 2 * steps);
  // Mid-epoch points of both epochs, the epoch's last batch (some ranks' parts empty by then).
  for (const auto& [e, k] : std::vector<std::pair<int64_t, int64_t>>{
           {0, 1}, {0, steps / 2}, {0, steps - 1}, {1, 3}, {1, steps - 1}}) {
    SCOPED_TRACE("seek to epoch " + std::to_string(e) + " batch " + std::to_string(k));
    const size_t at = static_cast<size_t>(e * steps + k);
    // What a checkpoint records for every rank, worked out here, against every rank's reader.
    const std::vector<PreparedPosition> recorded = lockstep_positions(ds, o, e, k);
    const PreparedPosition& here = after[at - 1];
    const std::vector<int64_t> rows = gather(here.row), nbatch = gather(here.batch);
    ASSERT_EQ(static_cast<int>(recorded.size()), g_world->world());
    for (size_t q = 0; q < recorded.size(); ++q) {
      EXPECT_EQ(recorded[q].row, rows[q]) << "rank " << q;
      EXPECT_EQ(recorded[q].batch, nbatch[q]) << "rank " << q;
    }
    PreparedSource source(ds, o);
    source.seek(e, k);
    const std::vector<Batch> tail = drain(source);
    ASSERT_EQ(tail.size(), all.size() - at);
    for (size_t i = 0; i < tail.size(); ++i) {
      const Batch& x = tail[i];
      const Batch& y = all[at + i];
      ASSERT_EQ(x.rows, y.rows);
      EXPECT_EQ(x.epoch, y.epoch);
      EXPECT_EQ(x.index, y.index);
      EXPECT_EQ(x.lines, y.lines);
      EXPECT_EQ(0, std::memcmp(x.labels.data<float>(), y.labels.data<float>(),
                               sizeof(float) * static_cast<size_t>(x.rows)));
    }
  }
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  auto world = tessera::dist::make_mpi_group();
  tessera::g_world = world.get();
  tessera::g_dir = tessera::mpitest::make_shared_dir(*world, "mpi_streamed_train");
  tessera::mpitest::report_from_rank0(world->rank());
  const int worst = tessera::mpitest::worst_result(*world, RUN_ALL_TESTS(),
                                                   "mpi_streamed_train_test", tessera::g_dir);
  tessera::g_world = nullptr;
  world.reset();
  MPI_Finalize();
  return worst;
}
