#include "pipelines/behaviour/behaviour.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <functional>
#include <future>
#include <optional>
#include <sstream>

#include "host/backend/backend.h"
#include "host/config/json_writer.h"
#include "host/core/atomic_file.h"
#include "host/core/progress.h"
#include "host/data/batch_source.h"
#include "host/data/batcher.h"
#include "host/data/encoded_table.h"
#include "host/data/libsvm.h"
#include "host/data/movielens_clicks.h"
#include "host/data/prepared.h"
#include "host/data/registry.h"
#include "host/data/sha256.h"
#include "host/data/stream_encoder.h"
#include "host/dist/process_group.h"
#include "host/metrics/metrics.h"
#include "host/model/divergence.h"
#include "host/model/mlp.h"
#include "host/model/optimizer.h"
#include "host/train/checkpoint.h"
#include "host/train/trainer.h"
#include "pipelines/behaviour/behaviour_config.h"
#include "pipelines/behaviour/distributed_scoring.h"
#include "pipelines/behaviour/model_artefact.h"
#include "pipelines/behaviour/net.h"
#include "pipelines/behaviour/sparse_input.h"
#include "pipelines/behaviour/train_feed.h"
#include "pipelines/json_nullable.h"
#include "pipelines/task_run.h"

namespace tessera::behaviour {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A relative path of a registered dataset is found through the registry (mirror, cache or
// download); anything else is used as given.
FileSpec resolve_file(const std::string& dataset, FileSpec f) {
  if (!dataset.empty() && !f.path.empty() && f.path[0] != '/')
    f.path = resolve_dataset_file(dataset, f.path);
  return f;
}

// data.derive: writes the derived files into the cache and returns a config whose relative
// train / validation / test paths point at them (the dataset's own files are read from the
// registry as usual).
BehaviourDataConfig with_derived_files(BehaviourDataConfig d) {
  if (d.derive.empty()) return d;
  const std::string dir = tessera_cache_dir() + "/derived/" + d.dataset + "-" + d.derive;
  write_movielens_clicks(resolve_dataset_file(d.dataset, "ratings.csv"),
                         resolve_dataset_file(d.dataset, "movies.csv"), dir);
  auto place = [&](FileSpec& f) {
    if (!f.path.empty() && f.path[0] != '/') f.path = dir + "/" + f.path;
  };
  place(d.train);
  if (d.test) place(*d.test);
  if (d.validation) place(*d.validation);
  d.dataset.clear();  // the paths are final now
  return d;
}

PreprocessOptions preprocess_options(const BehaviourConfig& c) {
  PreprocessOptions o;
  o.categorical = c.data.categorical;
  o.numeric = c.data.numeric;
  return o;
}

MlpSpec spec_for(const BehaviourConfig& c, const Preprocessor& pre, int64_t libsvm_width) {
  MlpSpec s;
  s.n_dense = libsvm_width > 0 ? libsvm_width : pre.n_dense();
  s.n_cat = pre.n_cat();
  s.embedding_rows = pre.total_embedding_rows();
  s.embedding_dim = c.model.embedding_dim;
  s.hidden.assign(c.model.hidden.begin(), c.model.hidden.end());
  s.dropout = static_cast<float>(c.model.dropout);
  s.activation = c.model.activation;
  return s;
}

// Every row of a batch source scored, as metrics: sums plus the scores split by label, 4 bytes a
// row (host/metrics/metrics.h), where keeping (score, label) rows for the metrics to copy and
// sort cost ~30 bytes a row at the end of a run (issue 18).
struct Scored {
  BinaryMetrics metrics;
  double seconds = 0;
};

// A (1, ...) host tensor as (2, ...): its row twice.
Tensor two_rows(const Tensor& t) {
  Shape shape = t.shape();
  shape[0] = 2;
  Tensor two = Tensor::host(shape, t.dtype());
  if (t.bytes() == 0) return two;
  std::memcpy(two.raw(), t.raw(), t.bytes());
  std::memcpy(static_cast<char*>(two.raw()) + t.bytes(), t.raw(), t.bytes());
  return two;
}

// A row's score must not depend on the batch it falls in: distributed scoring cuts the batches
// where one process does not (docs/distributed-scoring.md). The host GEMM rounds a one-row batch
// differently (oneDNN takes its matrix-vector path: scores differed in the 6th decimal), so a
// one-row batch is scored as two copies of its row, which rounds as every larger batch does.
void score_batch(BehaviourNet& model, const Batch& b, std::vector<float>& probs) {
  const bool one = b.rows == 1;
  Tensor logits = one ? model.forward(two_rows(b.dense), two_rows(b.cat), Mode::Eval, 0)
                      : model.forward(b.dense, b.cat, Mode::Eval, 0);
  Tensor h = model.backend().to_host(logits);
  const float* z = h.data<float>();
  for (int64_t i = 0; i < b.rows; ++i) probs.push_back(math::sigmoid(z[i]));
}

// A batch's first `n` scores into the metrics. Scores computed from checked weights can still
// overflow: with a guard (training's validation and test), a NaN or Inf among them stops the run
// as a divergence rather than as bad data (the metrics would refuse it as that).
void add_scores(Scored& s, DivergenceGuard* guard, const std::vector<float>& probs, const Batch& b,
                int64_t n) {
  if (guard) guard->check_values("predictions", probs.data(), n);
  s.metrics.add(probs.data(), b.labels.data<float>(), static_cast<size_t>(n));
}

// Every batch of `source` scored, up to `max_rows` rows (< 0: all); the labels come with the
// batches (a prepared split has them).
Scored score_source(BehaviourNet& model, BatchSource& source, int64_t max_rows = -1,
                    DivergenceGuard* guard = nullptr) {
  Scored s;
  auto t0 = Clock::now();
  Batch b;
  std::vector<float> probs;
  int64_t rows = 0;
  while ((max_rows < 0 || rows < max_rows) && source.next(b)) {
    probs.clear();
    score_batch(model, b, probs);
    const int64_t n = max_rows < 0 ? b.rows : std::min(b.rows, max_rows - rows);
    add_scores(s, guard, probs, b, n);
    rows += n;
  }
  s.seconds = seconds_since(t0);
  return s;
}

// A split of a prepared directory scored streaming, in file order: rows -> scores -> metrics.
// Only the scores, split by label (4 bytes a row), are kept, which AUC needs. `part`: only those
// rows (distributed scoring; rows < 0: all).
Scored score_prepared(BehaviourNet& model, const PreparedDataset& data, const std::string& split,
                      int64_t batch_size, RowPart part = {0, -1},
                      DivergenceGuard* guard = nullptr) {
  if (part.rows == 0) return {};
  PreparedReadOptions o;
  o.split = split;
  o.batch_size = batch_size;
  o.start.row = part.first;
  PreparedSource source(data, o);
  return score_source(model, source, part.rows, guard);
}

Scored score_table(BehaviourNet& model, const EncodedTable& table, int64_t batch_size,
                   DivergenceGuard* guard = nullptr) {
  BatcherOptions bo;
  bo.batch_size = batch_size;
  bo.shuffle = ShuffleMode::None;
  bo.epochs = 1;
  Batcher batcher(table, bo);
  return score_source(model, batcher, -1, guard);
}

// with_roc: the final test evaluation, whose ROC curve the run report draws.
BinaryReport report_of(Scored&& s, bool with_roc = false) {
  return with_roc ? s.metrics.compute_with_roc() : s.metrics.compute();
}

std::string fmt(double v, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

// The plots' points (tessera report draws them): "roc": [[fpr, tpr], ...] (absent when one class
// is), "calibration": [[mean predicted, observed positive rate, rows], ...] per non-empty bin.
void write_curves(json::JsonWriter& w, const BinaryReport& r) {
  if (!r.roc.empty()) {
    w.key("roc").begin_array();
    for (const RocPoint& p : r.roc) w.begin_array().value(p.fpr).value(p.tpr).end_array();
    w.end_array();
  }
  w.key("calibration").begin_array();
  for (const ReliabilityPoint& p : reliability_points(r.calibration))
    w.begin_array().value(p.mean_predicted).value(p.observed_rate).value(p.count).end_array();
  w.end_array();
}

void write_report(json::JsonWriter& w, const std::string& key, const BinaryReport& r,
                  bool curves = false) {
  w.key(key).begin_object();
  w.field("count", r.count).field("positives", r.positives);
  auto num = [&](const char* k, double v) { json::field_or_null(w, k, v, !std::isnan(v)); };
  num("auc", r.auc);
  num("logloss", r.logloss);
  num("accuracy", r.accuracy);
  num("ece", r.calibration.ece);
  if (curves) write_curves(w, r);
  w.end_object();
}

std::unique_ptr<Backend> backend_for(const std::string& option, const std::string& fallback) {
  return make_backend(option.empty() ? fallback : option);
}

BadRowPolicy policy_option(const std::string& s, BadRowPolicy fallback) {
  if (s.empty()) return fallback;
  if (s == "error") return BadRowPolicy::Error;
  if (s == "skip") return BadRowPolicy::Skip;
  TESSERA_THROW(Usage, "--on-error '" << s << "' is not one of: error, skip");
}

// ---- evaluate and predict ---------------------------------------------------------------------

// Sets the policy for the bad rows of a saved model's input on its preprocessor: `on_error`
// (--on-error) or, when empty, the model's own; returns it.
BadRowPolicy set_bad_row_policy(ModelArtefact& art, const std::string& on_error) {
  const BadRowPolicy policy = policy_option(on_error, art.config.data.schema.on_error);
  art.preprocessor.set_bad_row_policy(policy);
  return policy;
}

// The saved model's net on `backend`, for batches of up to `max_batch` rows (at least 2:
// score_batch), with its weights.
std::unique_ptr<BehaviourNet> restored_net(Backend& backend, const ModelArtefact& art,
                                           int64_t max_batch) {
  // The file holds whole tables: each process scores with all of them (distributed scoring
  // cuts the rows, not the tables), however the run that trained it placed them.
  BehaviourConfig config = art.config;
  config.model.tables_across_ranks = emb::RankPlacement::Replicated;
  std::unique_ptr<BehaviourNet> net =
      make_net(backend, config, art.preprocessor, art.spec, 0, std::max<int64_t>(2, max_batch));
  net->restore(art.weights);
  return net;
}

// An input file of evaluate or predict, its first `skip_lines` lines skipped (-1: none).
FileSpec input_file(const std::string& path, int skip_lines) {
  FileSpec f;
  f.path = path;
  f.skip_lines = std::max(0, skip_lines);
  return f;
}

// evaluate's and predict's input as a prepared directory: "DIR" (its "test" split) or
// "DIR:SPLIT"; nullopt for anything else (a text file).
struct PreparedInput {
  PreparedDataset data;
  std::string split;
};

bool is_prepared_dir(const std::string& dir) {
  struct stat st;
  return !dir.empty() && ::stat((dir + "/" + kManifestFile).c_str(), &st) == 0;
}

std::optional<PreparedInput> prepared_input(const std::string& path, const ModelArtefact& art) {
  std::string dir = path, split = "test";
  if (!is_prepared_dir(dir)) {
    const size_t colon = path.rfind(':');
    if (colon == std::string::npos || colon == 0 || !is_prepared_dir(path.substr(0, colon)))
      return std::nullopt;
    dir = path.substr(0, colon);
    split = path.substr(colon + 1);
  }
  if (is_libsvm(art.config))
    TESSERA_THROW(Usage, dir << " is a prepared directory; a libSVM model reads libSVM text");
  PreparedInput in{PreparedDataset::open(dir), split};
  if (!in.data.has_split(split))
    TESSERA_THROW(Data, dir << ": the prepared dataset has no split '" << split << "'");
  // The shards hold ids encoded by the preprocessor prep fitted: the model's must be the same.
  Preprocessor mine = art.preprocessor, theirs = in.data.preprocessor();
  mine.set_bad_row_policy(BadRowPolicy::Error);
  theirs.set_bad_row_policy(BadRowPolicy::Error);
  if (mine.to_json_string() != theirs.to_json_string())
    TESSERA_THROW(Data, dir << " was prepared with another preprocessor than the model's (its ids "
                               "would mean other categories): prepare the model's data with "
                               "`tessera prep` on the model's config");
  return in;
}

// This rank's part of evaluate's or predict's input: all of it in one process; under mpirun
// (distributed_scoring.h) a byte range of a text file, or a range of a prepared split's rows.
struct InputSlice {
  FileSpec file;
  RowPart rows{0, -1};  // prepared input (rows < 0: all)
};

InputSlice input_slice(dist::ProcessGroup& g, const FileSpec& file, const ModelArtefact& art,
                       const std::optional<PreparedInput>& prepared) {
  InputSlice s{file, {0, -1}};
  if (prepared) {
    if (g.world() > 1) s.rows = row_part(g, prepared->data.rows(prepared->split));
  } else if (g.world() > 1) {
    s.file = text_input_part(g, file, !is_libsvm(art.config) && art.preprocessor.schema().header);
  }
  return s;
}

using Sink = std::function<void(const std::string&)>;

// predict's output: "line,score" for every row of `source`, in order, up to `part.rows` rows
// (< 0: all); a row without a source line is numbered from part.first + 1. Returns the rows.
int64_t write_scores(BehaviourNet& model, BatchSource& source, const RowPart& part, const Sink& out,
                     Progress& progress) {
  Batch b;
  std::vector<float> probs;
  int64_t rows = 0;
  std::string buf;
  char line[64];
  while ((part.rows < 0 || rows < part.rows) && source.next(b)) {
    probs.clear();
    score_batch(model, b, probs);
    buf.clear();
    const int64_t n = part.rows < 0 ? b.rows : std::min(b.rows, part.rows - rows);
    for (int64_t i = 0; i < n; ++i) {
      const long long at = b.lines.empty() ? part.first + rows + i + 1 : b.lines[i];
      const int len = std::snprintf(line, sizeof(line), "%lld,%.6f\n", at, probs[i]);
      buf.append(line, static_cast<size_t>(len));
    }
    out(buf);
    rows += n;
    progress.update(rows);
  }
  return rows;
}

// ---- training ---------------------------------------------------------------------------------

// The rows a training run needs, encoded before the model exists, but for the test rows: those
// are needed only after training, so by default (TestPrep::Overlapped) they are encoded on a
// host thread while the model trains, and the training thread never waits for them. Held by
// pointer: the encoding thread writes into it.
struct Prepared {
  Preprocessor pre;  // fitted on the training rows (none for libSVM rows)
  EncodedTable train, validation, test;
  LoadReport train_rep, val_rep, test_rep;
  int64_t libsvm_width = 0;    // > 0: libSVM rows, over this many feature rows (sparse_input.h)
  SparseLayout libsvm_layout;  // their tables, recorded in the run's config
  std::string train_path;
  double prep_seconds = 0, test_prep_seconds = 0;
  TestPrep test_prep = TestPrep::Overlapped;
  std::future<EncodedTable> test_future;
  // data.prepared: the directory (read: stream keeps the rows there, and train / validation /
  // test stay empty; read: memory reads them into the tables above).
  std::optional<PreparedDataset> shards;
  bool streamed = false;

  int64_t rows_of(const EncodedTable& t, const char* split) const {
    return streamed ? (shards->has_split(split) ? shards->rows(split) : 0) : t.rows;
  }
  int64_t train_rows() const { return rows_of(train, "train"); }
  int64_t validation_rows() const { return rows_of(validation, "validation"); }
  int64_t test_rows() const { return rows_of(test, "test"); }
  // The validation or test split's scores, from memory or streamed from the shards.
  Scored score(BehaviourNet& model, const char* split, int64_t batch_size,
               DivergenceGuard& guard) const {
    if (streamed) return score_prepared(model, *shards, split, batch_size, {0, -1}, &guard);
    return score_table(model, std::string(split) == "test" ? test : validation, batch_size, &guard);
  }

  // Takes the test rows once they are encoded (wait: blocks until they are). A bad test row under
  // on_error "error" is thrown here, so it stops the run at the end of the epoch it is found in.
  void collect_test(bool wait) {
    if (test_future.valid() &&
        (wait || test_future.wait_for(std::chrono::seconds(0)) == std::future_status::ready))
      test = test_future.get();
  }
  int64_t bad_rows_skipped() const {
    return train_rep.bad_rows.skipped + val_rep.bad_rows.skipped + test_rep.bad_rows.skipped;
  }
};

// Sparse rows are used as written (no fitted encoding), kept sparse (sparse_input.h): the
// tables' sizes are fitted on train (or configured), each row its (id, value) slots.
void prepare_libsvm(const BehaviourDataConfig& d, const FileSpec& train_file, uint64_t seed,
                    Prepared& p) {
  std::optional<FileSpec> validation, test;
  if (d.validation) validation = resolve_file(d.dataset, *d.validation);
  if (d.test) test = resolve_file(d.dataset, *d.test);
  SparseRows r = prepare_sparse(d, train_file, validation ? &*validation : nullptr,
                                test ? &*test : nullptr, seed);
  p.train = std::move(r.train);
  p.validation = std::move(r.validation);
  p.test = std::move(r.test);
  p.train_rep = std::move(r.train_rep);
  p.val_rep = std::move(r.val_rep);
  p.test_rep = std::move(r.test_rep);
  p.libsvm_width = r.layout.total_rows();
  p.libsvm_layout = std::move(r.layout);
}

// Delimited rows: the preprocessor is fitted on the training rows only.
void prepare_table(const BehaviourConfig& cfg, const BehaviourDataConfig& d,
                   const FileSpec& train_file, uint64_t seed, Prepared& p) {
  if (d.validation) {
    BadRowReport fit_bad;
    p.pre = fit_preprocessor(train_file, d.schema, preprocess_options(cfg), {}, &fit_bad);
    p.train = load_table(train_file, p.pre, {}, &p.train_rep);
    p.validation = load_table(resolve_file(d.dataset, *d.validation), p.pre, {}, &p.val_rep);
  } else {
    TrainValidation tv = load_train_validation(train_file, d.schema, preprocess_options(cfg),
                                               d.validation_fraction, seed);
    p.pre = std::move(tv.preprocessor);
    p.train = std::move(tv.train);
    p.validation = std::move(tv.validation);
    p.train_rep = std::move(tv.train_report);
    p.val_rep = std::move(tv.validation_report);
  }
  if (!d.test) return;
  auto encode_test = [file = resolve_file(d.dataset, *d.test), &p] {
    auto t0 = Clock::now();
    EncodedTable t = load_table(file, p.pre, {}, &p.test_rep);
    p.test_prep_seconds = seconds_since(t0);
    return t;
  };
  if (p.test_prep == TestPrep::Overlapped)
    p.test_future = std::async(std::launch::async, encode_test);
  else
    p.test = encode_test();
}

// data.read "auto" streams the training split when its shard bytes exceed this fraction of the
// machine's physical memory (1/4: the tables in memory take more than the shards, whose ids are
// narrowed, and the model, the validation rows and the page cache need room too).
constexpr int64_t kAutoStreamMemoryDivisor = 4;

int64_t split_bytes(const PreparedDataset& ds, const std::string& split) {
  int64_t bytes = 0;
  for (const SourceInfo& src : ds.manifest().splits.at(split))
    for (const ShardInfo& sh : src.shards) bytes += sh.bytes;
  return bytes;
}

int64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
}

// Ranks of this job on this machine (the launcher's variables; 1 without them): in memory, each
// holds the whole train split.
int64_t ranks_on_this_machine() {
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"})
    if (const char* s = std::getenv(v))
      if (std::atoll(s) > 0) return std::atoll(s);
  return 1;
}

// Under mpirun rank 0 decides "auto" for every rank: ranks reading one way and the others the
// other would deal the rows differently (memory cuts the one-process permutation, the stream
// reads slices), so some rows would be trained twice and some never.
bool streams(const BehaviourDataConfig& d, const PreparedDataset& ds) {
  if (d.read != DataRead::Auto) return d.read == DataRead::Stream;
  const int64_t memory = physical_memory_bytes();
  const int64_t budget = memory / (kAutoStreamMemoryDivisor * ranks_on_this_machine());
  uint8_t stream = memory > 0 && split_bytes(ds, "train") > budget;
  dist::ProcessGroup& group = dist::process_group();
  if (group.world() > 1) group.broadcast(&stream, 1, 0);
  return stream != 0;
}

// data.prepared: the rows and the fitted preprocessor `tessera prep` wrote (checked as they are
// read: manifest, shard headers, checksums). read "memory": every split in memory, in file order:
// the batcher shuffles as it does for text, so a run equals the text path's with the same seed.
// read "stream": no split is read here; training streams the train split through the reader's
// block shuffle and buffer, and validation / test are scored streaming.
void prepare_from_shards(const BehaviourDataConfig& d, Prepared& p) {
  if (d.schema.format == TableFormat::LibSvm)
    TESSERA_THROW(Config, "data.prepared: libSVM input is not prepared by `tessera prep` yet");
  PreparedDataset ds = PreparedDataset::open(d.prepared);
  // Moved, not copied: the run's is the only copy of the vocabulary through the epoch (the shards
  // do not need it once open() has checked their columns).
  p.pre = ds.release_preprocessor();
  p.train_path = d.prepared;
  p.shards = ds;
  if (streams(d, ds)) {
    p.streamed = true;
    return;
  }
  p.train = read_prepared_table(ds, "train");
  p.validation = read_prepared_table(ds, "validation");
  if (ds.has_split("test")) p.test = read_prepared_table(ds, "test");
}

// Fit on train only; encode train / validation / test.
std::unique_ptr<Prepared> prepare(const BehaviourConfig& cfg, TestPrep test_prep) {
  const auto t0 = Clock::now();
  auto p = std::make_unique<Prepared>();
  p->test_prep = test_prep;
  const BehaviourDataConfig d = with_derived_files(cfg.data);
  const FileSpec train_file = resolve_file(d.dataset, d.train);
  p->train_path = train_file.path;
  const auto seed = static_cast<uint64_t>(cfg.seed);
  if (!d.prepared.empty())
    prepare_from_shards(d, *p);
  else if (d.schema.format == TableFormat::LibSvm)
    prepare_libsvm(d, train_file, seed, *p);
  else
    prepare_table(cfg, d, train_file, seed, *p);
  p->prep_seconds = seconds_since(t0);
  if (p->train_rows() == 0) TESSERA_THROW(Data, "no training rows in '" << p->train_path << "'");
  return p;
}

// What must match for a checkpoint to be resumed: the config, less what may change on resume.
// Checkpoints hold whole tables (the unsharded layout), so a resume may change the shards; and
// how often it checkpoints inside an epoch.
std::string resume_tag(BehaviourConfig c) {
  c.model.shards = 1;
  c.model.placement = emb::ShardPlacement::Auto;
  c.model.remote_shards = false;
  c.model.tables_across_ranks = emb::RankPlacement::Replicated;
  c.train.runs_dir = "-";
  c.train.checkpoint_every_steps = 0;
  return sha256_hex(to_json(c));
}

// The streamed train split's reader options on this rank: lockstep parts (prepared.h), so every
// rank reads only its slice of each block and takes the same batches per epoch, each its share
// of the global batch (docs/prepared-format.md, "Several ranks").
PreparedReadOptions stream_options(const BehaviourConfig& cfg) {
  const dist::ProcessGroup& group = dist::process_group();
  PreparedReadOptions o;
  o.split = "train";
  o.batch_size = cfg.train.batch_size;
  o.shuffle = true;
  o.seed = static_cast<uint64_t>(cfg.seed);
  o.block_rows = cfg.data.block_rows;
  o.shuffle_buffer = cfg.data.shuffle_buffer;
  o.rank = group.rank();
  o.world = group.world();
  o.lockstep = true;
  o.epochs = cfg.train.epochs;
  return o;
}

// The model's part of the Trainer's loop: the source's batches (each epoch's order a function
// of the seed and the epoch: a Batcher over the rows in memory or a PreparedSource streaming the
// shards) reaching the model one ahead through TrainFeed, one step with the
// guard's loss and gradient checks before any weight (a DLRM's tables too) changes, validation
// AUC / logloss / accuracy, and the model artefact with the final evaluation.
class BehaviourTraining final : public train::TrainTask {
 public:
  BehaviourTraining(const BehaviourConfig& cfg, Prepared& data, const MlpSpec& spec,
                    BehaviourNet& model, Optimizer& opt, BatchSource& source,
                    std::chrono::steady_clock::time_point t_fit)
      : cfg_(cfg),
        data_(data),
        spec_(spec),
        model_(model),
        be_(model.backend()),
        opt_(opt),
        source_(source),
        t_fit_(t_fit),
        loss_dev_(be_.empty({cfg.train.batch_size})),
        dlogits_dev_(be_.empty({cfg.train.batch_size, 1})) {}

  int64_t batches_per_epoch() override { return source_.batches_per_epoch(); }
  void start_epoch(int64_t epoch) override { start_epoch_at(epoch, 0); }
  bool start_epoch_at(int64_t epoch, int64_t batch) override;
  train::StepResult step(train::StepContext& ctx) override;
  double learning_rate() override { return opt_.current_lr(); }
  void check_weights(DivergenceGuard& guard) override;
  train::Metrics validate(DivergenceGuard& guard) override;
  // The epoch line keeps the "validation" object behaviour runs have always logged.
  void write_validation(json::JsonWriter& w, const train::Metrics& m) override {
    if (!m.empty()) write_report(w, "validation", last_validation_);
  }
  // Every weight and its optimizer state is in the optimizer's groups (the dense parameters, a
  // DLRM's tables), which the Trainer steps and checkpoints.
  Optimizer* optimizer() override { return &opt_; }
  NamedTensors training_state() override;
  void restore_training_state(const NamedTensors& state, int64_t steps) override;
  NamedTensors snapshot() override {
    const std::map<std::string, Tensor> w = model_.snapshot();
    return NamedTensors(w.begin(), w.end());
  }
  void restore_snapshot(const NamedTensors& w) override { model_.restore({w.begin(), w.end()}); }
  void finish(train::FinishContext& ctx) override;
  // Tables split across the ranks: rank 0 validates, scores the test split and saves the model
  // alone, on a whole copy of the tables gathered for it (docs/distributed.md).
  void begin_lead_only() override {
    if (emb::AllToAllTables* split = model_.split_tables()) split->gather_whole_copy(0);
  }
  void end_lead_only() override {
    if (emb::AllToAllTables* split = model_.split_tables()) split->drop_whole_copy();
  }

 private:
  std::string save_artefact(train::FinishContext& ctx, const BinaryReport& val,
                            const BinaryReport& test);
  void check_resumed_position(int64_t epoch, int64_t batch);
  void write_result(train::FinishContext& ctx, const std::string& model_path,
                    const BinaryReport& val, const BinaryReport& test);

  const BehaviourConfig& cfg_;
  Prepared& data_;
  const MlpSpec& spec_;
  BehaviourNet& model_;
  Backend& be_;
  Optimizer& opt_;
  BatchSource& source_;
  std::chrono::steady_clock::time_point t_fit_;
  Tensor loss_dev_, dlogits_dev_;  // [batch], [batch, 1] on the backend
  std::unique_ptr<TrainFeed> feed_;
  int64_t next_epoch_ = 1;
  BinaryReport last_validation_{};
  int64_t stepped_epoch_ = 0, stepped_batches_ = 0;  // the last step's epoch and batch + 1
  // A streamed checkpoint's (epoch, row, batch) per rank, [world * 3], copied: the checkpoint's
  // tensors do not outlive the resume.
  std::vector<int64_t> resumed_positions_;
};

// Streamed, a checkpoint inside an epoch records every rank's reader position, (epoch, row,
// batch) per rank: i64 [world, 3]. The dealing is a function of the manifest and the options, so
// rank 0 (which alone writes the checkpoint) works them out for every rank without a gather; a
// resume checks that the world size is the same and that each rank's reader stands there.
constexpr const char* kStreamPositions = "data.stream_positions";

NamedTensors BehaviourTraining::training_state() {
  if (!data_.streamed || stepped_batches_ == 0 || stepped_batches_ >= source_.batches_per_epoch())
    return {};  // epoch ends (and the in-memory Batcher) resume at any world size
  const std::vector<PreparedPosition> at =
      lockstep_positions(*data_.shards, stream_options(cfg_), stepped_epoch_ - 1, stepped_batches_);
  Tensor t = Tensor::host({static_cast<int64_t>(at.size()), 3}, DType::I64);
  for (size_t r = 0; r < at.size(); ++r) {
    int64_t* row = t.data<int64_t>() + 3 * r;
    row[0] = at[r].epoch;
    row[1] = at[r].row;
    row[2] = at[r].batch;
  }
  return {{kStreamPositions, t}};
}

bool BehaviourTraining::start_epoch_at(int64_t epoch, int64_t batch) {
  if (feed_ && batch == 0 && epoch == next_epoch_) {
    ++next_epoch_;  // the source runs on into this epoch
    return true;
  }
  // A (re)start: the source's order for epoch e depends only on (seed, e), so seeking puts a
  // resumed run exactly where its checkpoint left off, mid-epoch too (the table batcher without
  // copying the batches before it, the stream by replaying its row order's indices).
  // A fresh source already stands at (1, 0).
  const bool fresh = !feed_;
  feed_.reset();
  if (!fresh || epoch != 1 || batch != 0) source_.seek(epoch - 1, batch);
  if (!resumed_positions_.empty()) check_resumed_position(epoch, batch);
  // Batches reach the model one ahead through the backend's stager (train_feed.h): on CUDA the
  // next batch uploads while this one computes, across epoch ends too.
  feed_ = std::make_unique<TrainFeed>(
      be_, source_, cfg_.train.batch_size,
      has_tables(cfg_.model.type) ? CatPlacement::Host : CatPlacement::Device);
  next_epoch_ = epoch + 1;
  return true;
}

// A resumed streamed run: this rank's reader must stand where the checkpoint says it stood.
void BehaviourTraining::check_resumed_position(int64_t epoch, int64_t batch) {
  const int rank = dist::process_group().rank();
  const PreparedPosition rec{resumed_positions_[3 * rank], resumed_positions_[3 * rank + 1],
                             resumed_positions_[3 * rank + 2]};
  const PreparedPosition here =
      lockstep_positions(*data_.shards, stream_options(cfg_), epoch - 1, batch)[rank];
  resumed_positions_.clear();
  if (here == rec) return;
  TESSERA_THROW(Io, "behaviour checkpoint: rank "
                        << rank << " was at row " << rec.row << ", batch " << rec.batch
                        << " of epoch " << rec.epoch + 1 << "; resuming puts its reader at row "
                        << here.row << ", batch " << here.batch << " of epoch " << here.epoch + 1);
}

train::StepResult BehaviourTraining::step(train::StepContext& ctx) {
  stepped_epoch_ = ctx.epoch;
  stepped_batches_ = ctx.batch + 1;
  TrainFeed::Item item;
  if (!feed_->next(item))
    TESSERA_THROW(Internal, "behaviour: the batch source ended inside epoch " << ctx.epoch);
  const int64_t n = item.batch.rows;
  train::StepResult r;
  if (n == 0) {
    // This rank's part of a short last batch is empty (batcher.h): no forward; zero dense
    // gradients and 0 examples, so the ranks' weighted gradient exchange counts it as nothing
    // while every rank still takes the step (a table model's sparse group is not distributed).
    for (Parameter* p : model_.parameters()) be_.fill(p->grad, 0.f);
    feed_->done(item);
    return r;
  }
  const uint64_t seed = static_cast<uint64_t>(cfg_.seed);
  Tensor logits = model_.forward(item.dense, item.cat, Mode::Train,
                                 math::mix64(seed ^ (0x5eedull + static_cast<uint64_t>(ctx.step))));
  Tensor loss = loss_dev_.rows(0, n), dl = dlogits_dev_.rows(0, n);
  be_.bce_with_logits(logits, item.labels, 1.f / static_cast<float>(n), loss, dl);
  // Under "stop" the per-sample losses stay on the device: the Trainer sums them there and
  // checks them at its next read, so the step does not wait for the device. Under "skip_batch"
  // they come to the host (B floats) and are checked before the backward, and every gradient,
  // the tables' too, before any weight changes.
  Tensor lh;
  if (ctx.guard.policy() == NonFinitePolicy::SkipBatch) {
    lh = be_.to_host(loss);
    r.applied = ctx.guard.loss_ok(lh);
  } else {
    r.device_loss = loss;
  }
  if (r.applied) {
    model_.backward(dl);
    r.applied = ctx.guard.gradients_ok(be_, model_.parameters(),
                                       [this] { return model_.sparse_gradients(); });
  }
  if (r.applied && lh.defined()) {
    for (int64_t i = 0; i < n; ++i) r.loss_sum += lh.data<float>()[i];
  }
  feed_->done(item);
  r.examples = n;
  r.units = n;
  return r;
}

void BehaviourTraining::check_weights(DivergenceGuard& guard) {
  guard.check_weights(be_, model_.parameters());
  model_.visit_tables([&](const std::string& name, const Tensor& table) {
    guard.check_weights(be_, NamedTensors{{name, table}});
  });
}

train::Metrics BehaviourTraining::validate(DivergenceGuard& guard) {
  data_.collect_test(/*wait=*/false);
  if (data_.validation_rows() == 0) return {};
  last_validation_ =
      report_of(data_.score(model_, "validation", cfg_.train.eval_batch_size, guard));
  return {{"validation_auc", last_validation_.auc},
          {"validation_logloss", last_validation_.logloss},
          {"validation_accuracy", last_validation_.accuracy}};
}

void BehaviourTraining::restore_training_state(const NamedTensors& state, int64_t steps) {
  for (const auto& [name, t] : state) {
    if (name != kStreamPositions || !data_.streamed)
      TESSERA_THROW(Io,
                    "behaviour checkpoint: tensor '" << name << "' belongs to no parameter group");
    const int world = dist::process_group().world();
    if (t.dtype() != DType::I64 || t.shape().size() != 2 || t.shape()[1] != 3)
      TESSERA_THROW(Io, "behaviour checkpoint: '" << name << "' is not i64 [ranks, 3]");
    // Each rank's slices of the blocks, and its share of the global batch, depend on the world
    // size: another one would read other rows for the rest of the epoch.
    if (t.shape()[0] != world)
      TESSERA_THROW(Usage, "the checkpoint was taken inside epoch "
                               << t.data<int64_t>()[0] + 1 << " by " << t.shape()[0]
                               << " ranks reading streamed shards, each at its own place in its "
                                  "slices of the blocks; resume it with mpirun -np "
                               << t.shape()[0] << " (this run has " << world
                               << "), or from a checkpoint at an epoch's end");
    resumed_positions_.assign(t.data<int64_t>(), t.data<int64_t>() + t.numel());
  }
}

std::string BehaviourTraining::save_artefact(train::FinishContext& ctx, const BinaryReport& val,
                                             const BinaryReport& test) {
  json::JsonWriter mw;
  mw.begin_object();
  if (data_.validation_rows() > 0) write_report(mw, "validation", val);
  if (data_.test_rows() > 0) write_report(mw, "test", test);
  mw.end_object();
  const std::map<std::string, Tensor> weights = model_.snapshot();
  ctx.guard.check_weights(weights);
  const std::string metrics = mw.compact();
  const std::string model_path = ctx.run_dir + "/model.tsm";
  // By reference: the run's preprocessor is not copied for the file (ModelArtefactRef).
  save_model(model_path, ModelArtefactRef{cfg_, data_.pre, spec_, weights, metrics});
  return model_path;
}

void BehaviourTraining::write_result(train::FinishContext& ctx, const std::string& model_path,
                                     const BinaryReport& val, const BinaryReport& test) {
  json::JsonWriter& w = ctx.result;
  w.field("model", model_path).field("batch_size", cfg_.train.batch_size);
  w.field("train_rows", data_.train_rows())
      .field("validation_rows", data_.validation_rows())
      .field("test_rows", data_.test_rows());
  w.field("parameters", model_.parameter_count()).field("prep_seconds", data_.prep_seconds);
  // fit: everything after the blocking preparation (epochs, validation, checkpoints, final
  // evaluation, the model file); test_prep: encoding the test file, overlapped or not.
  w.field("fit_seconds", seconds_since(t_fit_)).field("test_prep_seconds", data_.test_prep_seconds);
  w.field("test_prep", data_.test_prep == TestPrep::Overlapped ? "overlapped" : "before_training");
  w.field("train_samples_per_sec",
          ctx.train_seconds > 0 ? static_cast<double>(ctx.samples) / ctx.train_seconds : 0.0);
  w.field("bad_rows_skipped", data_.bad_rows_skipped());
  if (data_.shards) w.field("data_read", data_.streamed ? "stream" : "memory");
  if (data_.test_rows() > 0) w.field("test_unseen_categories", data_.test_rep.encode.total_oov());
  if (data_.validation_rows() > 0) write_report(w, "validation", val);
  if (data_.test_rows() > 0) write_report(w, "test", test, /*curves=*/true);
}

void BehaviourTraining::finish(train::FinishContext& ctx) {
  const int64_t eval_batch = cfg_.train.eval_batch_size;
  BinaryReport val{}, test{};
  if (data_.validation_rows() > 0)
    val = report_of(data_.score(model_, "validation", eval_batch, ctx.guard));
  data_.collect_test(/*wait=*/true);
  if (data_.test_rows() > 0)
    test = report_of(data_.score(model_, "test", eval_batch, ctx.guard), /*with_roc=*/true);
  const std::string model_path = save_artefact(ctx, val, test);
  write_result(ctx, model_path, val, test);
  std::ostringstream s;
  if (data_.validation_rows() > 0)
    s << "  validation: AUC " << fmt(val.auc) << "  logloss " << fmt(val.logloss) << "  accuracy "
      << fmt(val.accuracy) << "\n";
  if (data_.test_rows() > 0)
    s << "  test:       AUC " << fmt(test.auc) << "  logloss " << fmt(test.logloss) << "  accuracy "
      << fmt(test.accuracy) << "\n";
  if (data_.bad_rows_skipped() > 0)
    s << "  bad rows: " << data_.train_rep.bad_rows.summary() << "\n";
  if (data_.test_rows() > 0 && data_.test_rep.encode.total_oov() > 0)
    s << "  test values unseen on train: " << data_.pre.oov_summary(data_.test_rep.encode) << "\n";
  s << "  model: " << model_path << "\n";
  ctx.summary += s.str();
}

void print_plan(const BehaviourConfig& cfg, const Backend& backend, const Prepared& data,
                const MlpSpec& spec, const BehaviourNet& model) {
  std::fprintf(
      stderr,
      "tessera train: %s on %s; %lld train / %lld validation / %s test rows; "
      "%lld dense + %lld categorical features (%lld embedding rows); %lld parameters\n",
      cfg.name.c_str(), backend.name().c_str(), (long long)data.train_rows(),
      (long long)data.validation_rows(),
      data.test_future.valid() ? "(being encoded)" : std::to_string(data.test_rows()).c_str(),
      (long long)spec.n_dense, (long long)spec.n_cat, (long long)spec.embedding_rows,
      (long long)model.parameter_count());
  if (data.streamed)
    std::fprintf(stderr, "tessera train: streaming the rows from %s (data.read)\n",
                 data.train_path.c_str());
  const std::string plan = model.shard_plan();
  if (!plan.empty()) std::fprintf(stderr, "%s", plan.c_str());
}

// The training batches: this rank's part (dist::process_group()) of each epoch, from the rows in
// memory (a Batcher: every global batch cut across the ranks) or streamed from the prepared
// shards (a PreparedSource: each rank reads its slice of every block; seeded block shuffle and
// buffer).
std::unique_ptr<BatchSource> train_source(const BehaviourConfig& cfg, const Prepared& data) {
  const dist::ProcessGroup& group = dist::process_group();
  const int queue_depth = std::clamp(cfg.train.prefetch, 2, 4);
  if (data.streamed) {
    if (cfg.train.batch_size < group.world())
      TESSERA_THROW(Usage, "data.read \"stream\" under mpirun: train.batch_size "
                               << cfg.train.batch_size << " is smaller than the " << group.world()
                               << " ranks (each rank takes a share of every global batch)");
    return std::make_unique<PreparedSource>(*data.shards, stream_options(cfg), queue_depth);
  }
  BatcherOptions bo;
  bo.batch_size = cfg.train.batch_size;
  bo.seed = static_cast<uint64_t>(cfg.seed);
  bo.epochs = cfg.train.epochs;
  bo.queue_depth = queue_depth;
  bo.rank = group.rank();
  bo.world = group.world();
  return std::make_unique<Batcher>(data.train, bo);
}

train::TrainerOptions trainer_options(const BehaviourConfig& cfg, const TrainOptions& options,
                                      const std::string& device) {
  train::TrainerOptions t = train::trainer_options(
      options, train::task_run("behaviour", cfg, to_json(cfg), resume_tag(cfg)), device);
  if (cfg.train.early_stopping.metric == EarlyStoppingMetric::Logloss)
    t.selection = {"validation_logloss", train::Goal::Minimize, "", train::Goal::Minimize,
                   cfg.train.early_stopping.patience};
  else
    t.selection = {"validation_auc", train::Goal::Maximize, "", train::Goal::Minimize,
                   cfg.train.early_stopping.patience};
  t.throughput_field = "train_samples_per_sec";
  // BehaviourTraining implements start_epoch_at (the Batcher and PreparedSource seek exactly).
  t.checkpoint_every_steps = cfg.train.checkpoint_every_steps;
  return t;
}

}  // namespace

Result train(const std::string& config_path, const TrainOptions& options) {
  BehaviourConfig cfg = load_behaviour_config(config_path);  // validated before any allocation
  if (options.seed >= 0) cfg.seed = options.seed;
  if (!options.device.empty()) cfg.device = options.device;
  if (options.epochs >= 0) cfg.train.epochs = static_cast<int>(options.epochs);
  if (!options.runs_dir.empty()) cfg.train.runs_dir = options.runs_dir;
  if (options.stop_after_epochs >= 0 && options.resume.empty())
    TESSERA_THROW(Usage, "stopping after some epochs needs checkpoints to resume from");
  const auto seed = static_cast<uint64_t>(cfg.seed);
  auto backend = make_backend(cfg.device);
  std::unique_ptr<Prepared> data = prepare(cfg, options.test_prep);
  // The model file and checkpoints record the tables training read.
  if (is_libsvm(cfg)) record_layout(cfg, data->libsvm_layout);
  const auto t_fit = Clock::now();

  const MlpSpec spec = spec_for(cfg, data->pre, data->libsvm_width);
  const int64_t batch = cfg.train.batch_size;
  // At least 2 rows: score_batch scores a one-row batch as two.
  std::unique_ptr<BehaviourNet> model =
      make_net(*backend, cfg, data->pre, spec, seed,
               std::max<int64_t>({batch, cfg.train.eval_batch_size, 2}));
  std::unique_ptr<BatchSource> source = train_source(cfg, *data);
  const int64_t steps_per_epoch = source->batches_per_epoch();
  Optimizer opt = train::epoch_optimizer(*backend, cfg.train, steps_per_epoch, model->parameters());
  if (SparseGroup* tables = model->sparse_group()) opt.add_sparse_group("tables", *tables);
  if (!options.quiet) print_plan(cfg, *backend, *data, spec, *model);

  BehaviourTraining task(cfg, *data, spec, *model, opt, *source, t_fit);
  const train::TrainResult r =
      train::Trainer(trainer_options(cfg, options, backend->name())).fit(task);
  return {r.summary, r.json};
}

namespace {

// evaluate's rows of `slice` scored: a prepared directory streaming (its rows were checked and
// encoded by prep: no bad rows, and unseen categories are not counted); a CSV / Criteo text file
// streaming too (parsed and encoded chunk by chunk, labels required); a libSVM file read into
// memory. Streaming keeps only the scores, split by label (4 bytes a row), which AUC needs.
Scored evaluate_rows(BehaviourNet& model, const ModelArtefact& art, const InputSlice& slice,
                     const std::optional<PreparedInput>& prepared, BadRowPolicy policy,
                     LoadReport& rep) {
  const int64_t batch = art.config.train.eval_batch_size;
  if (prepared) return score_prepared(model, prepared->data, prepared->split, batch, slice.rows);
  if (is_libsvm(art.config)) {
    EncodedTable t =
        load_sparse(slice.file, sparse_layout(art.config, art.spec.n_dense), policy, &rep.bad_rows);
    return t.rows > 0 ? score_table(model, t, batch) : Scored{};
  }
  StreamOptions so;
  so.chunk_rows = batch;
  so.label = LabelMode::Required;
  auto stream = std::make_unique<StreamEncoder>(slice.file, art.preprocessor, so);
  const StreamEncoder& enc = *stream;
  BatcherOptions bo;
  bo.batch_size = batch;
  bo.shuffle = ShuffleMode::None;
  Batcher source(std::move(stream), bo);
  Scored sc = score_source(model, source);
  rep.records = enc.records_read();
  rep.bad_rows.merge(enc.bad_rows());
  rep.encode.merge(enc.encode_stats());
  return sc;
}

// Under mpirun: every rank scores its slice (`score`), then rank 0 holds every rank's scores and
// labels in input order, and the bad rows and unseen categories of all. False on the other ranks
// (their part is done). When a rank failed, rank 0 throws its error and the others wait for the
// job's end (await_job_end).
bool evaluate_on_every_rank(dist::ProcessGroup& g, const std::function<Scored()>& score, Scored& sc,
                            LoadReport& rep) {
  const auto t0 = Clock::now();
  std::exception_ptr failed;
  try {
    sc = score();
  } catch (...) {
    failed = std::current_exception();
  }
  if (!all_succeeded(g, failed)) await_job_end(g);
  rep.bad_rows = merge_bad_rows(g, rep.bad_rows);
  rep.encode = merge_encode_stats(g, rep.encode);
  gather_scores(g, sc.metrics);
  sc.seconds = seconds_since(t0);
  return g.rank() == 0;
}

}  // namespace

Result evaluate(const std::string& model_path, const std::string& data_path,
                const CommonOptions& options) {
  ModelArtefact art = load_model(model_path);
  const BadRowPolicy policy = set_bad_row_policy(art, options.on_error);
  auto backend = backend_for(options.device, "auto");
  std::unique_ptr<BehaviourNet> net = restored_net(*backend, art, art.config.train.eval_batch_size);
  const std::optional<PreparedInput> prepared = prepared_input(data_path, art);
  dist::ProcessGroup& g = dist::process_group();
  const InputSlice slice = input_slice(g, input_file(data_path, options.skip_lines), art, prepared);
  LoadReport rep;
  rep.encode = art.preprocessor.make_stats();
  auto score = [&] { return evaluate_rows(*net, art, slice, prepared, policy, rep); };
  Scored sc;
  if (g.world() == 1)
    sc = score();
  else if (!evaluate_on_every_rank(g, score, sc, rep))
    return {};
  const auto rows = static_cast<int64_t>(sc.metrics.size());
  if (rows == 0) TESSERA_THROW(Data, "'" << data_path << "' has no rows to evaluate");
  const double seconds = sc.seconds;
  BinaryReport r = report_of(std::move(sc), /*with_roc=*/true);
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "evaluate").field("model", model_path).field("data", data_path);
  w.field("device", backend->name()).field("rows", rows);
  if (g.world() > 1) w.field("ranks", g.world());
  w.field("bad_rows_skipped", rep.bad_rows.skipped);
  json::field_or_null(w, "unseen_categories", rep.encode.total_oov(), !prepared);
  w.field("rows_per_sec", seconds > 0 ? rows / seconds : 0.0);
  write_report(w, "metrics", r, /*curves=*/true);
  w.end_object();
  std::ostringstream s;
  s << "evaluated " << rows << " rows of " << data_path << " on " << backend->name() << ": AUC "
    << fmt(r.auc) << "  logloss " << fmt(r.logloss) << "  accuracy " << fmt(r.accuracy) << "\n";
  if (rep.bad_rows.skipped) s << "  " << rep.bad_rows.summary() << "\n";
  if (rep.encode.total_oov())
    s << "  unseen on train: " << art.preprocessor.oov_summary(rep.encode) << "\n";
  return {s.str(), w.compact()};
}

namespace {

// What predict read: the rows scored, the bad rows skipped, unseen categories (text input) and
// dropped libSVM features.
struct PredictCounts {
  int64_t rows = 0, oov = 0, dropped = 0;
  BadRowReport bad_rows;
};

// predict's rows of `slice` scored into `out`. A prepared directory is read by the prepared
// reader (file order); a text file is parsed and encoded as it streams. Either way only the
// queue's batches are in memory.
PredictCounts predict_rows(BehaviourNet& net, const ModelArtefact& art, const InputSlice& slice,
                           const std::optional<PreparedInput>& prepared, BadRowPolicy policy,
                           const PredictOptions& options, const Sink& out) {
  PredictCounts c;
  Progress progress("predict", 0, "rows", options.quiet);
  if (is_libsvm(art.config)) {
    SparseBatchStream source(slice.file, sparse_layout(art.config, art.spec.n_dense), policy,
                             options.batch_size);
    c.rows = write_scores(net, source, slice.rows, out, progress);
    c.bad_rows = source.bad_rows();
    c.dropped = source.dropped();
  } else if (prepared) {
    if (slice.rows.rows == 0) return c;
    PreparedReadOptions o;
    o.split = prepared->split;
    o.batch_size = options.batch_size;
    o.start.row = slice.rows.first;
    PreparedSource source(prepared->data, o);
    c.rows = write_scores(net, source, slice.rows, out, progress);
  } else {
    StreamOptions so;
    so.chunk_rows = options.batch_size;
    so.label = LabelMode::Optional;
    auto stream = std::make_unique<StreamEncoder>(slice.file, art.preprocessor, so);
    const StreamEncoder& enc = *stream;
    BatcherOptions bo;
    bo.batch_size = options.batch_size;
    bo.shuffle = ShuffleMode::None;
    Batcher source(std::move(stream), bo);
    c.rows = write_scores(net, source, slice.rows, out, progress);
    c.bad_rows = enc.bad_rows();
    c.oov = enc.encode_stats().total_oov();
  }
  return c;
}

// Under mpirun: every rank scores its slice into its part of the output (`score`), then rank 0
// writes OUTPUT from the parts in rank order, and the counts are summed over the ranks. False on
// the other ranks. When a rank failed, rank 0 throws its error and the others remove their part
// files and wait for the job's end (await_job_end).
bool predict_on_every_rank(dist::ProcessGroup& g, const std::string& output_path,
                           const std::function<PredictCounts(const Sink&)>& score,
                           PredictCounts& c) {
  bool ok = false;
  {
    OutputParts parts(g, output_path);  // removes this rank's part file when it goes
    std::exception_ptr failed;
    try {
      c = score([&](const std::string& bytes) { parts.write(bytes); });
      parts.close();
    } catch (...) {
      failed = std::current_exception();
    }
    if (all_succeeded(g, failed)) {
      c.rows = sum_over_ranks(g, c.rows);
      c.oov = sum_over_ranks(g, c.oov);
      c.dropped = sum_over_ranks(g, c.dropped);
      c.bad_rows = merge_bad_rows(g, c.bad_rows);
      ok = parts.concatenate("line,score\n");
    }
  }
  if (!ok) await_job_end(g);
  return g.rank() == 0;
}

}  // namespace

Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const PredictOptions& options) {
  ModelArtefact art = load_model(model_path);
  const BadRowPolicy policy = set_bad_row_policy(art, options.on_error);
  TESSERA_CHECK(options.batch_size > 0, "--batch-size must be positive");
  auto backend = backend_for(options.device, "auto");
  std::unique_ptr<BehaviourNet> net = restored_net(*backend, art, options.batch_size);
  const std::optional<PreparedInput> prepared = prepared_input(input_path, art);
  dist::ProcessGroup& g = dist::process_group();
  const InputSlice slice =
      input_slice(g, input_file(input_path, options.skip_lines), art, prepared);
  auto score = [&](const Sink& out) {
    return predict_rows(*net, art, slice, prepared, policy, options, out);
  };
  auto t0 = Clock::now();
  PredictCounts c;
  if (g.world() == 1) {
    AtomicFileWriter out(output_path);
    out.write("line,score\n");
    c = score([&](const std::string& bytes) { out.write(bytes); });
    out.commit();
  } else if (!predict_on_every_rank(g, output_path, score, c)) {
    return {};
  }
  const double secs = seconds_since(t0);
  const bool text = !prepared && !is_libsvm(art.config);
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "predict").field("model", model_path).field("input", input_path);
  w.field("output", output_path).field("device", backend->name()).field("rows", c.rows);
  if (g.world() > 1) w.field("ranks", g.world());
  w.field("bad_rows_skipped", c.bad_rows.skipped);
  json::field_or_null(w, "unseen_categories", c.oov, text);
  if (is_libsvm(art.config)) w.field("dropped_features", c.dropped);
  w.field("seconds", secs).field("rows_per_sec", secs > 0 ? c.rows / secs : 0.0);
  w.end_object();
  std::ostringstream s;
  s << "scored " << c.rows << " rows of " << input_path << " into " << output_path << " ("
    << fmt(secs > 0 ? c.rows / secs : 0, 0) << " rows/s on " << backend->name() << ")\n";
  if (c.bad_rows.skipped) s << "  " << c.bad_rows.summary() << "\n";
  return {s.str(), w.compact()};
}

}  // namespace tessera::behaviour
