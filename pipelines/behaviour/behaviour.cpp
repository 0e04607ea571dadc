#include "pipelines/behaviour/behaviour.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <future>
#include <sstream>

#include "host/backend/backend.h"
#include "host/core/progress.h"
#include "host/config/behaviour_config.h"
#include "host/config/json_writer.h"
#include "host/core/atomic_file.h"
#include "host/core/run_dir.h"
#include "host/data/batcher.h"
#include "host/data/encoded_table.h"
#include "host/data/libsvm.h"
#include "host/data/movielens_clicks.h"
#include "host/data/registry.h"
#include "host/data/sha256.h"
#include "host/data/stream_encoder.h"
#include "host/metrics/metrics.h"
#include "host/model/divergence.h"
#include "host/model/mlp.h"
#include "host/model/optimizer.h"
#include "host/scheduler/checkpoint.h"
#include "pipelines/behaviour/model_artefact.h"
#include "pipelines/behaviour/net.h"
#include "pipelines/behaviour/train_feed.h"

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

// A libSVM file densified to `width` columns; features beyond the training width are dropped
// (the model has no weights for them).
EncodedTable load_libsvm(const FileSpec& f, int64_t width, BadRowPolicy policy, BadRowReport* bad) {
  return table_from_sparse(read_libsvm(f, policy, bad), width, OutOfRangeFeature::Drop);
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

// Probabilities of every row of a batch source, in order.
struct Scored {
  std::vector<float> probs;
  std::vector<float> labels;
  double seconds = 0;
};

void score_batch(BehaviourNet& model, const Batch& b, std::vector<float>& probs) {
  Tensor logits = model.forward(b.dense, b.cat, Mode::Eval, 0);
  Tensor h = model.backend().to_host(logits);
  const float* z = h.data<float>();
  for (int64_t i = 0; i < b.rows; ++i) probs.push_back(math::sigmoid(z[i]));
}

Scored score_table(BehaviourNet& model, const EncodedTable& table, int64_t batch_size) {
  Scored s;
  auto t0 = Clock::now();
  BatcherOptions bo;
  bo.batch_size = batch_size;
  bo.shuffle = ShuffleMode::None;
  bo.epochs = 1;
  Batcher batcher(table, bo);
  Batch b;
  s.probs.reserve(table.rows);
  while (batcher.next(b)) score_batch(model, b, s.probs);
  s.labels = table.labels;
  s.seconds = seconds_since(t0);
  return s;
}

// Scores computed from checked weights can still overflow: a NaN or Inf among them stops the
// run as a divergence (the metrics would refuse it) rather than as bad data.
const Scored& checked(DivergenceGuard& guard, const Scored& s) {
  guard.check_values("predictions", s.probs.data(), static_cast<int64_t>(s.probs.size()));
  return s;
}

BinaryReport report_of(const Scored& s) {
  BinaryMetrics m;
  m.add(s.probs.data(), s.labels.data(), s.probs.size());
  return m.compute();
}

std::string fmt(double v, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

void write_report(json::JsonWriter& w, const std::string& key, const BinaryReport& r) {
  w.key(key).begin_object();
  w.field("count", r.count).field("positives", r.positives);
  auto num = [&](const char* k, double v) {
    w.key(k);
    if (std::isnan(v))
      w.null();
    else
      w.value(v);
  };
  num("auc", r.auc);
  num("logloss", r.logloss);
  num("accuracy", r.accuracy);
  num("ece", r.calibration.ece);
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

}  // namespace

Result train(const std::string& config_path, const TrainOptions& options) {
  BehaviourConfig cfg = load_behaviour_config(config_path);  // validated before any allocation
  if (!options.device.empty()) cfg.device = options.device;
  if (options.epochs >= 0) cfg.train.epochs = static_cast<int>(options.epochs);
  if (!options.runs_dir.empty()) cfg.train.runs_dir = options.runs_dir;
  const uint64_t seed = static_cast<uint64_t>(cfg.seed);

  auto backend = make_backend(cfg.device);
  const bool resumable = options.checkpoints == Checkpoints::EveryEpochAndResume;
  if (resumable && options.run_dir.empty())
    TESSERA_THROW(Usage, "resumable training needs an explicit run directory");
  if (options.stop_after_epochs >= 0 && !resumable)
    TESSERA_THROW(Usage, "stopping after some epochs needs checkpoints to resume from");
  // A resumable run reopens its directory; any other run gets a fresh one (mkdir fails if taken).
  if (resumable) make_directories(options.run_dir);
  const std::string run_path = resumable ? options.run_dir
                               : options.run_dir.empty()
                                   ? RunDir::create(cfg.train.runs_dir, cfg.name).path()
                                   : RunDir::create_exact(options.run_dir).path();
  write_file_atomic(run_path + "/config.json", to_json(cfg));

  // ---- prep: fit on train only, encode train / validation / test ------------------------------
  auto t_prep = Clock::now();
  const BehaviourDataConfig d = with_derived_files(cfg.data);
  const FileSpec train_file = resolve_file(d.dataset, d.train);
  Preprocessor pre;
  EncodedTable train_t, val_t, test_t;
  LoadReport train_rep, val_rep, test_rep;
  int64_t libsvm_width = 0;
  if (d.schema.format == TableFormat::LibSvm) {
    // Sparse rows are used as written (no fitted encoding), densified to the train width.
    SparseTable tr = read_libsvm(train_file, d.schema.on_error, &train_rep.bad_rows);
    libsvm_width = d.schema.libsvm_features > 0 ? d.schema.libsvm_features : tr.max_index + 1;
    EncodedTable all = table_from_sparse(tr, libsvm_width, OutOfRangeFeature::Error);
    if (d.validation) {
      train_t = std::move(all);
      val_t = load_libsvm(resolve_file(d.dataset, *d.validation), libsvm_width, d.schema.on_error,
                          &val_rep.bad_rows);
    } else {
      TableSplit split = split_table(all, d.validation_fraction, seed);
      train_t = std::move(split.train);
      val_t = std::move(split.validation);
    }
    if (d.test)
      test_t = load_libsvm(resolve_file(d.dataset, *d.test), libsvm_width, d.schema.on_error,
                           &test_rep.bad_rows);
  } else if (d.validation) {
    BadRowReport fit_bad;
    pre = fit_preprocessor(train_file, d.schema, preprocess_options(cfg), {}, &fit_bad);
    train_t = load_table(train_file, pre, {}, &train_rep);
    val_t = load_table(resolve_file(d.dataset, *d.validation), pre, {}, &val_rep);
  } else {
    TrainValidation tv = load_train_validation(train_file, d.schema, preprocess_options(cfg),
                                               d.validation_fraction, seed);
    pre = std::move(tv.preprocessor);
    train_t = std::move(tv.train);
    val_t = std::move(tv.validation);
    train_rep = std::move(tv.train_report);
    val_rep = std::move(tv.validation_report);
  }
  // The test rows are needed only after training: by default they are encoded on a host thread
  // while the model trains (the training thread never waits for them).
  std::future<EncodedTable> test_future;
  double test_prep_seconds = 0;
  if (d.test && libsvm_width == 0) {
    auto encode_test = [file = resolve_file(d.dataset, *d.test), &pre, &test_rep,
                        &test_prep_seconds] {
      auto t0 = Clock::now();
      EncodedTable t = load_table(file, pre, {}, &test_rep);
      test_prep_seconds = seconds_since(t0);
      return t;
    };
    if (options.test_prep == TestPrep::Overlapped)
      test_future = std::async(std::launch::async, encode_test);
    else
      test_t = encode_test();
  }
  // A bad test row under on_error "error" stops the run at the end of the epoch it is found in.
  auto collect_test = [&](bool wait) {
    if (test_future.valid() &&
        (wait || test_future.wait_for(std::chrono::seconds(0)) == std::future_status::ready))
      test_t = test_future.get();
  };
  const double prep_seconds = seconds_since(t_prep);
  const auto t_fit = Clock::now();
  if (train_t.rows == 0) TESSERA_THROW(Data, "no training rows in '" << train_file.path << "'");

  // ---- model ---------------------------------------------------------------------------------
  const MlpSpec spec = spec_for(cfg, pre, libsvm_width);
  const int64_t batch = cfg.train.batch_size;
  const int64_t eval_batch = cfg.train.eval_batch_size;
  std::unique_ptr<BehaviourNet> net =
      make_net(*backend, cfg, pre, spec, seed, std::max(batch, eval_batch));
  BehaviourNet& model = *net;
  BatcherOptions bo;
  bo.batch_size = batch;
  bo.seed = seed;
  bo.epochs = cfg.train.epochs;
  bo.queue_depth = std::clamp(cfg.train.prefetch, 2, 4);
  Batcher batcher(train_t, bo);
  const int64_t steps_per_epoch = batcher.batches_per_epoch();
  const int64_t total_steps = steps_per_epoch * cfg.train.epochs;
  Optimizer opt(*backend, cfg.train.optimizer,
                LrSchedule::from_config(cfg.train.lr_schedule, steps_per_epoch, total_steps));
  opt.attach(model.parameters());

  if (!options.quiet) {
    std::fprintf(stderr,
                 "tessera train: %s on %s; %lld train / %lld validation / %s test rows; "
                 "%lld dense + %lld categorical features (%lld embedding rows); %lld parameters; "
                 "run dir %s\n",
                 cfg.name.c_str(), backend->name().c_str(), (long long)train_t.rows,
                 (long long)val_t.rows,
                 test_future.valid() ? "(being encoded)" : std::to_string(test_t.rows).c_str(),
                 (long long)spec.n_dense, (long long)spec.n_cat, (long long)spec.embedding_rows,
                 (long long)model.parameter_count(), run_path.c_str());
    const std::string plan = model.shard_plan();
    if (!plan.empty()) std::fprintf(stderr, "%s", plan.c_str());
  }

  // ---- train ---------------------------------------------------------------------------------
  Tensor loss_dev = backend->empty({batch});
  Tensor dlogits_dev = backend->empty({batch, 1});
  Progress progress("train", total_steps * batch, "samples", options.quiet);
  double train_seconds = 0, loss_sum = 0;
  int64_t samples = 0, loss_rows = 0, step = 0;
  std::map<std::string, Tensor> best_weights;
  double best_score = -INFINITY;
  int64_t best_epoch = -1, bad_epochs = 0, epochs_run = 0;
  BinaryReport last_val{};
  const bool minimize_logloss = cfg.train.early_stopping.metric == EarlyStoppingMetric::Logloss;
  Batch b;
  // ---- resume from the last epoch checkpoint -------------------------------------------------
  const std::string checkpoint_path = run_path + "/checkpoint.tsc";
  // Checkpoints hold whole tables (the unsharded layout), so a resume may change the shards.
  const std::string checkpoint_tag = [&] {
    BehaviourConfig c = cfg;
    c.model.shards = 1;
    c.model.placement = TablePlacement::Auto;
    c.model.remote_shards = false;
    return sha256_hex(to_json(c));
  }();
  int64_t resumed_from_epoch = 0;
  bool finished = false;
  bool stopped = false;  // options.stop_after_epochs reached
  DivergenceGuard guard(cfg.train.on_nonfinite, {"behaviour", cfg.name, run_path, options.quiet});
  if (resumable && ::access(checkpoint_path.c_str(), F_OK) == 0) {
    scheduler::TrainingState st;
    std::map<std::string, Tensor> state;  // a DLRM's tables and sparse optimizer state
    scheduler::load_checkpoint(checkpoint_path, *backend, model.parameters(), checkpoint_tag, &st,
                               &best_weights, &state);
    try {
      model.restore_training_state(state);
    } catch (const Error& e) {
      TESSERA_THROW(Io, "checkpoint '" << checkpoint_path << "' cannot be resumed: " << e.what());
    }
    resumed_from_epoch = epochs_run = st.epochs_done;
    step = st.step;
    samples = st.samples;
    train_seconds = st.train_seconds;
    best_epoch = st.best_epoch;
    if (best_epoch >= 0) best_score = st.best_score;
    bad_epochs = st.bad_epochs;
    opt.set_steps_taken(step);
    // Lines logged after the checkpoint (a kill between the two writes) are redone.
    scheduler::truncate_lines(run_path + "/metrics.jsonl", epochs_run);
    guard.resumed(checkpoint_path, epochs_run, run_path + "/metrics.jsonl");
    // The batcher's order for epoch e depends only on (seed, e): cutting and dropping the
    // finished epochs' batches puts it exactly where the checkpoint left off.
    for (int64_t i = 0; i < epochs_run * steps_per_epoch && batcher.next(b); ++i) {
    }
    finished =
        cfg.train.early_stopping.patience > 0 && bad_epochs >= cfg.train.early_stopping.patience;
    if (!options.quiet)
      std::fprintf(stderr, "tessera train: resuming %s after epoch %lld (step %lld)\n",
                   run_path.c_str(), (long long)epochs_run, (long long)step);
  } else if (resumable) {
    scheduler::truncate_lines(run_path + "/metrics.jsonl",
                              0);  // killed before the first checkpoint
  }
  auto t_epoch = Clock::now();
  double epoch_train_seconds = 0;
  // Batches reach the model one ahead through the backend's stager (train_feed.h): on CUDA the
  // next batch uploads while this one computes.
  TrainFeed feed(
      *backend, batcher, batch,
      cfg.model.type == BehaviourModelType::Dlrm ? CatPlacement::Host : CatPlacement::Device);
  TrainFeed::Item item;
  int64_t epoch_batch = 0;  // batches of the current epoch so far
  while (!finished) {
    auto t_step = Clock::now();
    if (!feed.next(item)) break;
    b = std::move(item.batch);  // item keeps the staged tensors; b the epoch bookkeeping
    const int64_t n = b.rows;
    guard.at_batch(b.epoch + 1, ++epoch_batch, steps_per_epoch, step + 1);
    Tensor logits = model.forward(item.dense, item.cat, Mode::Train,
                                  math::mix64(seed ^ (0x5eedull + static_cast<uint64_t>(step))));
    Tensor loss = loss_dev.rows(0, n), dl = dlogits_dev.rows(0, n);
    backend->bce_with_logits(logits, item.labels, 1.f / static_cast<float>(n), loss, dl);
    // The per-sample losses come to the host every step (B floats) and are checked before the
    // backward; under "skip_batch" every gradient, the tables' too, before any weight changes.
    const Tensor lh = backend->to_host(loss);
    bool ok = guard.loss_ok(lh);
    if (ok) {
      model.backward(dl);
      ok = guard.gradients_ok(*backend, model.parameters(),
                              [&model] { return model.sparse_gradients(); });
    }
    if (ok) {
      model.step_sparse();
      opt.step();
      ++step;
    }
    feed.done(item);
    samples += n;
    // The epoch's training loss is the mean over the steps sampled every log_every.
    if (ok && (step % cfg.train.log_every == 0 || b.last_in_epoch)) {
      for (int64_t i = 0; i < n; ++i) loss_sum += lh.data<float>()[i];
      loss_rows += n;
    }
    const double dt = seconds_since(t_step);
    train_seconds += dt;
    epoch_train_seconds += dt;
    // The training loss is read back every log_every steps (a device sync on CUDA), so the
    // epoch's figure is the mean over those sampled steps.
    progress.update(samples, loss_rows ? "loss " + fmt(loss_sum / loss_rows) : std::string());
    if (!b.last_in_epoch) continue;

    // ---- end of epoch: check the weights, validate, log, early stopping -------------------
    ++epochs_run;
    epoch_batch = 0;
    guard.at_epoch_end(b.epoch + 1, step);
    guard.check_weights(*backend, model.parameters());
    model.visit_tables([&](const std::string& name, const Tensor& table) {
      guard.check_weights(*backend, NamedTensors{{name, table}});
    });
    json::JsonWriter w;
    w.begin_object();
    w.field("epoch", b.epoch + 1).field("step", step);
    w.field("train_loss", loss_rows ? loss_sum / loss_rows : 0.0);
    w.field("lr", static_cast<double>(opt.current_lr()));
    w.field("train_samples_per_sec", epoch_train_seconds > 0
                                         ? (double)(steps_per_epoch * batch) / epoch_train_seconds
                                         : 0.0);
    w.field("epoch_seconds", seconds_since(t_epoch));
    bool improved = false;
    if (val_t.rows > 0) {
      last_val = report_of(checked(guard, score_table(model, val_t, eval_batch)));
      write_report(w, "validation", last_val);
      const double score = minimize_logloss ? -last_val.logloss : last_val.auc;
      if (!std::isnan(score) && score > best_score) {
        best_score = score;
        best_epoch = b.epoch + 1;
        best_weights = model.snapshot();
        bad_epochs = 0;
        improved = true;
      } else {
        ++bad_epochs;
      }
    }
    guard.write_epoch_fields(w);
    w.end_object();
    scheduler::append_line(run_path + "/metrics.jsonl", w.compact());
    collect_test(/*wait=*/false);
    if (resumable) {
      scheduler::TrainingState st;
      st.epochs_done = epochs_run;
      st.step = step;
      st.samples = samples;
      st.train_seconds = train_seconds;
      st.best_score = best_score;
      st.best_epoch = best_epoch;
      st.bad_epochs = bad_epochs;
      st.tag = checkpoint_tag;
      scheduler::save_checkpoint(checkpoint_path, *backend, model.parameters(), st, best_weights,
                                 model.training_state());
      guard.checkpoint_saved(checkpoint_path, epochs_run);
    }
    if (!options.quiet) {
      std::fprintf(stderr, "%sepoch %lld: train loss %s%s%s\n", ::isatty(2) ? "\r\033[K" : "",
                   (long long)(b.epoch + 1), fmt(loss_rows ? loss_sum / loss_rows : 0.0).c_str(),
                   val_t.rows ? (", validation AUC " + fmt(last_val.auc) + " logloss " +
                                 fmt(last_val.logloss) + " accuracy " + fmt(last_val.accuracy))
                                    .c_str()
                              : "",
                   improved ? " (best)" : "");
    }
    loss_sum = 0;
    loss_rows = 0;
    epoch_train_seconds = 0;
    t_epoch = Clock::now();
    if (options.stop_after_epochs >= 0 &&
        epochs_run - resumed_from_epoch >= options.stop_after_epochs &&
        epochs_run < cfg.train.epochs) {
      stopped = true;
      break;
    }
    if (cfg.train.early_stopping.patience > 0 && bad_epochs >= cfg.train.early_stopping.patience) {
      if (!options.quiet)
        std::fprintf(stderr, "early stopping: no improvement for %d epochs\n",
                     cfg.train.early_stopping.patience);
      break;
    }
  }
  progress.finish();
  if (stopped) {
    json::JsonWriter w;
    w.begin_object();
    w.field("command", "train").field("task", "behaviour").field("name", cfg.name);
    w.field("run_dir", run_path).field("checkpoint", checkpoint_path);
    w.field("stopped_after_epoch", epochs_run).field("steps", step);
    w.field("resumed_from_epoch", resumed_from_epoch);
    w.end_object();
    return {"stopped after epoch " + std::to_string(epochs_run) + "; " + checkpoint_path +
                " resumes it\n",
            w.compact()};
  }
  if (!best_weights.empty()) model.restore(best_weights);

  // ---- evaluate ------------------------------------------------------------------------------
  BinaryReport val_report{}, test_report{};
  if (val_t.rows > 0) val_report = report_of(checked(guard, score_table(model, val_t, eval_batch)));
  collect_test(/*wait=*/true);
  if (test_t.rows > 0)
    test_report = report_of(checked(guard, score_table(model, test_t, eval_batch)));

  // ---- deploy: the model artefact ------------------------------------------------------------
  json::JsonWriter mw;
  mw.begin_object();
  if (val_t.rows > 0) write_report(mw, "validation", val_report);
  if (test_t.rows > 0) write_report(mw, "test", test_report);
  mw.end_object();
  ModelArtefact art;
  art.config = cfg;
  art.preprocessor = pre;
  art.spec = spec;
  art.weights = model.snapshot();
  guard.at_model_write();
  guard.check_weights(art.weights);
  art.metrics_json = mw.compact();
  const std::string model_path = run_path + "/model.tsm";
  save_model(model_path, art);

  json::JsonWriter w;
  w.begin_object();
  w.field("command", "train").field("task", "behaviour").field("name", cfg.name);
  w.field("device", backend->name()).field("run_dir", run_path).field("model", model_path);
  w.field("epochs", epochs_run).field("best_epoch", best_epoch).field("steps", step);
  w.field("resumed_from_epoch", resumed_from_epoch);
  guard.write_result_fields(w);
  w.field("batch_size", batch);
  w.field("train_rows", train_t.rows)
      .field("validation_rows", val_t.rows)
      .field("test_rows", test_t.rows);
  w.field("parameters", model.parameter_count());
  w.field("prep_seconds", prep_seconds).field("train_seconds", train_seconds);
  // fit: everything after the blocking preparation (epochs, validation, checkpoints, final
  // evaluation, the model file); test_prep: encoding the test file, overlapped or not.
  w.field("fit_seconds", seconds_since(t_fit)).field("test_prep_seconds", test_prep_seconds);
  w.field("test_prep",
          options.test_prep == TestPrep::Overlapped ? "overlapped" : "before_training");
  w.field("train_samples_per_sec", train_seconds > 0 ? samples / train_seconds : 0.0);
  w.field("bad_rows_skipped",
          train_rep.bad_rows.skipped + val_rep.bad_rows.skipped + test_rep.bad_rows.skipped);
  if (test_t.rows > 0) w.field("test_unseen_categories", test_rep.encode.total_oov());
  if (val_t.rows > 0) write_report(w, "validation", val_report);
  if (test_t.rows > 0) write_report(w, "test", test_report);
  w.end_object();
  const std::string result_json = w.compact();
  write_file_atomic(run_path + "/result.json", result_json + "\n");

  std::ostringstream s;
  s << "trained " << cfg.name << " on " << backend->name() << ": " << epochs_run << " epochs, "
    << fmt(train_seconds > 0 ? samples / train_seconds : 0, 0) << " samples/s\n";
  if (val_t.rows > 0)
    s << "  validation: AUC " << fmt(val_report.auc) << "  logloss " << fmt(val_report.logloss)
      << "  accuracy " << fmt(val_report.accuracy) << "\n";
  if (test_t.rows > 0)
    s << "  test:       AUC " << fmt(test_report.auc) << "  logloss " << fmt(test_report.logloss)
      << "  accuracy " << fmt(test_report.accuracy) << "\n";
  const int64_t skipped =
      train_rep.bad_rows.skipped + val_rep.bad_rows.skipped + test_rep.bad_rows.skipped;
  if (skipped > 0) s << "  bad rows: " << train_rep.bad_rows.summary() << "\n";
  if (test_t.rows > 0 && test_rep.encode.total_oov() > 0)
    s << "  test values unseen on train: " << pre.oov_summary(test_rep.encode) << "\n";
  s << "  model: " << model_path << "\n";
  return {s.str(), result_json};
}

Result evaluate(const std::string& model_path, const std::string& data_path,
                const CommonOptions& options) {
  ModelArtefact art = load_model(model_path);
  const BadRowPolicy policy = policy_option(options.on_error, art.config.data.schema.on_error);
  art.preprocessor.set_bad_row_policy(policy);
  auto backend = backend_for(options.device, "auto");
  std::unique_ptr<BehaviourNet> net = make_net(*backend, art.config, art.preprocessor, art.spec, 0,
                                               art.config.train.eval_batch_size);
  BehaviourNet& model = *net;
  model.restore(art.weights);
  FileSpec f;
  f.path = data_path;
  f.skip_lines = std::max(0, options.skip_lines);
  LoadReport rep;
  EncodedTable t = is_libsvm(art.config) ? load_libsvm(f, art.spec.n_dense, policy, &rep.bad_rows)
                                         : load_table(f, art.preprocessor, {}, &rep);
  if (t.rows == 0) TESSERA_THROW(Data, "'" << data_path << "' has no rows to evaluate");
  Scored sc = score_table(model, t, art.config.train.eval_batch_size);
  BinaryReport r = report_of(sc);
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "evaluate").field("model", model_path).field("data", data_path);
  w.field("device", backend->name()).field("rows", t.rows);
  w.field("bad_rows_skipped", rep.bad_rows.skipped);
  w.field("unseen_categories", rep.encode.total_oov());
  w.field("rows_per_sec", sc.seconds > 0 ? t.rows / sc.seconds : 0.0);
  write_report(w, "metrics", r);
  w.end_object();
  std::ostringstream s;
  s << "evaluated " << t.rows << " rows of " << data_path << " on " << backend->name() << ": AUC "
    << fmt(r.auc) << "  logloss " << fmt(r.logloss) << "  accuracy " << fmt(r.accuracy) << "\n";
  if (rep.bad_rows.skipped) s << "  " << rep.bad_rows.summary() << "\n";
  if (rep.encode.total_oov())
    s << "  unseen on train: " << art.preprocessor.oov_summary(rep.encode) << "\n";
  return {s.str(), w.compact()};
}

Result predict(const std::string& model_path, const std::string& input_path,
               const std::string& output_path, const PredictOptions& options) {
  ModelArtefact art = load_model(model_path);
  const BadRowPolicy policy = policy_option(options.on_error, art.config.data.schema.on_error);
  art.preprocessor.set_bad_row_policy(policy);
  TESSERA_CHECK(options.batch_size > 0, "--batch-size must be positive");
  if (is_libsvm(art.config))
    TESSERA_THROW(Usage,
                  "predict streams CSV/Criteo input; for a libSVM model use 'tessera "
                  "evaluate' (libSVM batch scoring is not implemented yet)");
  auto backend = backend_for(options.device, "auto");
  std::unique_ptr<BehaviourNet> net =
      make_net(*backend, art.config, art.preprocessor, art.spec, 0, options.batch_size);
  BehaviourNet& model = *net;
  model.restore(art.weights);
  FileSpec f;
  f.path = input_path;
  f.skip_lines = std::max(0, options.skip_lines);
  StreamOptions so;
  so.chunk_rows = options.batch_size;
  so.label = LabelMode::Optional;
  auto stream = std::make_unique<StreamEncoder>(f, art.preprocessor, so);
  StreamEncoder* enc = stream.get();
  BatcherOptions bo;
  bo.batch_size = options.batch_size;
  bo.shuffle = ShuffleMode::None;
  Batcher batcher(std::move(stream), bo);

  auto t0 = Clock::now();
  AtomicFileWriter out(output_path);
  out.write("line,score\n");
  Progress progress("predict", 0, "rows", options.quiet);
  Batch b;
  std::vector<float> probs;
  int64_t rows = 0;
  std::string buf;
  char line[64];
  while (batcher.next(b)) {
    probs.clear();
    score_batch(model, b, probs);
    buf.clear();
    for (int64_t i = 0; i < b.rows; ++i) {
      int len = std::snprintf(line, sizeof(line), "%lld,%.6f\n",
                              (long long)(b.lines.empty() ? rows + i + 1 : b.lines[i]), probs[i]);
      buf.append(line, len);
    }
    out.write(buf);
    rows += b.rows;
    progress.update(rows);
  }
  out.commit();
  const double secs = seconds_since(t0);
  json::JsonWriter w;
  w.begin_object();
  w.field("command", "predict").field("model", model_path).field("input", input_path);
  w.field("output", output_path).field("device", backend->name()).field("rows", rows);
  w.field("bad_rows_skipped", enc->bad_rows().skipped);
  w.field("unseen_categories", enc->encode_stats().total_oov());
  w.field("seconds", secs).field("rows_per_sec", secs > 0 ? rows / secs : 0.0);
  w.end_object();
  std::ostringstream s;
  s << "scored " << rows << " rows of " << input_path << " into " << output_path << " ("
    << fmt(secs > 0 ? rows / secs : 0, 0) << " rows/s on " << backend->name() << ")\n";
  if (enc->bad_rows().skipped) s << "  " << enc->bad_rows().summary() << "\n";
  return {s.str(), w.compact()};
}

}  // namespace tessera::behaviour
