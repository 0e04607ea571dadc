// tessera: the command-line front end. Parses arguments, dispatches to the pipelines, and is the
// only place that turns errors into exit codes:
//   0 success, 1 failure of the job (data, I/O, backend), 2 bad usage or config.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#if TESSERA_WITH_MPI
#include <mpi.h>

#include "embeddings/mpi/mpi_shards.h"
#endif
#include "embeddings/tables.h"
#include "host/backend/backend.h"
#include "host/config/audio_config.h"
#include "host/config/image_config.h"
#include "host/config/video_config.h"
#include "host/core/error.h"
#include "host/model/divergence.h"
#include "host/scheduler/commands.h"
#include "pipelines/audio/audio.h"
#include "pipelines/audio/stages.h"
#include "pipelines/behaviour/behaviour.h"
#include "pipelines/behaviour/stages.h"
#include "pipelines/behaviour/synthetic.h"
#include "pipelines/behaviour/synthetic_criteo.h"
#include "pipelines/image/image.h"
#include "pipelines/image/stages.h"
#include "pipelines/recommend/recommend_cli.h"
#include "pipelines/recommend/stages.h"
#include "pipelines/textclass/stages.h"
#include "pipelines/textclass/textclass.h"
#include "pipelines/textgen/stages.h"
#include "pipelines/textgen/textgen.h"
#include "pipelines/video/stages.h"
#include "pipelines/video/video.h"

namespace {

using tessera::ErrorKind;

struct Command {
  const char* name;
  const char* synopsis;
  const char* help;
  size_t positionals;
};

const Command kCommands[] = {
    {"train", "tessera train CONFIG [options]",
     "Trains the model a JSON config describes, evaluates it on the validation and test data,\n"
     "and writes a run directory: the resolved config, metrics as JSON lines, the model.\n"
     "  --device D       auto (default: CUDA when a GPU is present), cpu, cuda, cuda:N\n"
     "  --runs-dir DIR   where run directories are created (default: the config's, or runs/)\n"
     "  --run-dir DIR    exact run directory to use (must not exist yet)\n"
     "  --epochs N       override train.epochs\n"
     "  --resume RUN_DIR continue a run from its last epoch's checkpoint (same config; every\n"
     "                   task)\n"
     "  --json           last stdout line: one JSON object with the results\n"
     "  --quiet          no progress output\n",
     1},
    {"evaluate", "tessera evaluate MODEL DATA [options]",
     "Evaluates a trained model on a labelled data file (same layout as its training data).\n"
     "Image models: DATA is IMAGES[,LABELS] (IDX, .gz or not; labels default to the images\n"
     "file with 'images-idx3' -> 'labels-idx1') or a digits CSV.\n"
     "Audio models: DATA is a folder of {label}_{speaker}_{index}.wav files or a registered\n"
     "dataset NAME, NAME:test or NAME:train (e.g. fsdd:test).\n"
     "Video models: DATA is a folder of class subfolders of clips (frame folders, .tclip).\n"
     "Text-classification models: DATA is label<TAB>text lines (a first line whose label is\n"
     "'label' is a header); reports accuracy, macro-F1 and the confusion matrix.\n"
     "  --device D, --json, --quiet as for train\n"
     "  --skip-lines N   leading lines of DATA to skip (e.g. 1 for adult.test)\n"
     "  --on-error P     error (default) or skip: what to do with malformed rows\n",
     2},
    {"predict",
     "tessera predict MODEL INPUT OUTPUT [options]  |  tessera predict IMAGE_MODEL IMAGE",
     "Batch-scores INPUT (CSV in the training layout, label column optional) into OUTPUT (CSV:\n"
     "line,score), streaming in bounded memory. OUTPUT is written atomically.\n"
     "With an image model (task \"image\") and one PNG or PGM image: prints the top 3 classes\n"
     "with their probabilities.\n"
     "With an audio model (task \"audio\") and one WAV file: the same, for the recording.\n"
     "With a video model (task \"video\") and one clip (a folder of frames or a .tclip\n"
     "file): the same, for the clip.\n"
     "With a text-classification model: classifies each line of INPUT (a text file) into\n"
     "OUTPUT (TSV: line, label, one probability per class), streaming, written atomically.\n"
     "  --device D, --json, --quiet as for train\n"
     "  --skip-lines N, --on-error P as for evaluate\n"
     "  --batch-size N   rows scored at a time (default 4096)\n",
     3},
    {"generate", "tessera generate MODEL [options]",
     "Samples text from a trained text-generation model, streaming it to stdout as it is\n"
     "produced. The same model, prompt, options and seed give the same text.\n"
     "  --prompt TEXT        text that primes the model (default: a newline)\n"
     "  --length N           characters to generate (default 200)\n"
     "  --temperature T      > 0; lower is more conservative (default 1.0)\n"
     "  --top-k K            sample among the K most likely characters (default 0: all)\n"
     "  --seed S             sampling seed (default 0)\n"
     "  --device D           as for train (default cpu)\n"
     "  --json               last stdout line: one JSON object with the text\n",
     1},
    {"perplexity", "tessera perplexity MODEL TEXT [options]",
     "Reports a text-generation model's loss (nats/char) and perplexity on a text file.\n"
     "  --device D, --json as for generate\n",
     2},
    {"run", "tessera run PIPELINE.json [options]",
     "Runs a pipeline (prep -> train -> evaluate -> deploy stages, e.g.\n"
     "pipelines/behaviour/pipeline.json) in dependency order. Each stage's outputs are cached\n"
     "under a hash of its config, inputs and code version, so a rerun skips what has not\n"
     "changed; an interrupted training stage resumes from its last epoch checkpoint.\n"
     "  --dry-run        print the plan (stage keys, what is cached) and run nothing\n"
     "  --runs-dir DIR   where run directories go (default: the pipeline's runs_dir, or runs/)\n"
     "  --cache-dir DIR  stage cache (default: RUNS_DIR/cache)\n"
     "  --jobs N         independent stages run at once (default: the hardware threads)\n"
     "  --device D, --json, --quiet as for train\n",
     1},
    {"runs", "tessera runs [--runs-dir DIR]",
     "Lists the run directories under DIR (default runs/) with their headline metrics.\n"
     "  --json           last stdout line: one JSON object\n",
     0},
    {"report", "tessera report RUN_DIR",
     "Writes RUN_DIR/report.html: one self-contained page (no network needed) with the\n"
     "training and validation curves as inline SVG, the final metrics and the config.\n"
     "  --json           last stdout line: one JSON object with the report's path\n",
     1},
    {"recommend", "tessera recommend MODEL OUTPUT --k K",
     "Writes the top-K items for every user of a recommendation model to OUTPUT (CSV:\n"
     "user,rank,item,score), excluding the items each user saw in training; streamed, written\n"
     "atomically.\n"
     "  --k K            items per user (default 10)\n"
     "  --json, --quiet as for train\n",
     2},
    {"export", "tessera export MODEL --format npy|safetensors|word2vec|faiss OUTDIR",
     "Writes a recommendation model's user, item and bias tables with their raw ids to OUTDIR\n"
     "(see pipelines/recommend/README.md for the files of each format), plus manifest.json.\n"
     "  --format F       npy (default), safetensors, word2vec, faiss\n"
     "  --json           last stdout line: one JSON object (the manifest)\n",
     2},
    {"make-synthetic", "tessera make-synthetic DIR [options]",
     "Writes a synthetic behaviour dataset (DIR/train.csv, DIR/test.csv, with a planted signal)\n"
     "and DIR/config.json that trains on it: a default that needs no download.\n"
     "  --rows N         training rows (default 20000; test gets a quarter)\n"
     "  --layout L       behaviour (default: the CSV above) | criteo (train.txt, test.txt in the\n"
     "                   Criteo layout: 13 counts, 26 power-law categorical ids, planted signal;\n"
     "                   config.json trains a DLRM; default 100000 rows)\n"
     "  --json           last stdout line: one JSON object with the paths\n",
     1},
};

void print_usage(std::FILE* f) {
  std::fprintf(f, "tessera: train, evaluate and deploy models on your data\n\nusage:\n");
  for (const Command& c : kCommands) std::fprintf(f, "  %s\n", c.synopsis);
  std::fprintf(f, "\nRun 'tessera COMMAND --help' for a command's options.\n");
}

struct Args {
  std::vector<std::string> positionals;
  std::map<std::string, std::string> options;  // "--json" -> "" for flags
  bool help = false;
};

const std::vector<std::string> kFlags = {"--json", "--quiet", "--dry-run"};
const std::vector<std::string> kValued = {
    "--prompt",      "--length",     "--temperature", "--top-k",      "--seed",
    "--time-budget", "--rows",       "--device",      "--runs-dir",   "--run-dir",
    "--epochs",      "--skip-lines", "--on-error",    "--batch-size", "--cache-dir",
    "--k",           "--format",     "--resume",      "--layout",     "--jobs"};

Args parse_args(int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      a.help = true;
    } else if (s.rfind("--", 0) == 0) {
      std::string key = s, value;
      auto eq = s.find('=');
      if (eq != std::string::npos) {
        key = s.substr(0, eq);
        value = s.substr(eq + 1);
      }
      bool flag = false, valued = false;
      for (auto& f : kFlags) flag |= f == key;
      for (auto& v : kValued) valued |= v == key;
      if (!flag && !valued) TESSERA_THROW(Usage, "unknown option '" << key << "'");
      if (valued && eq == std::string::npos) {
        if (i + 1 >= argc) TESSERA_THROW(Usage, "option " << key << " needs a value");
        value = argv[++i];
      }
      a.options[key] = value;
    } else {
      a.positionals.push_back(s);
    }
  }
  return a;
}

int64_t int_option(const Args& a, const std::string& key, int64_t fallback) {
  auto it = a.options.find(key);
  if (it == a.options.end()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || v < 0)
    TESSERA_THROW(
        Usage, "option " << key << " expects a non-negative integer, got '" << it->second << "'");
  return v;
}

std::string str_option(const Args& a, const std::string& key, const std::string& fallback) {
  auto it = a.options.find(key);
  return it == a.options.end() ? fallback : it->second;
}

// The run-directory options every task's train takes.
template <typename TrainOpts>
void read_run_options(const Args& a, TrainOpts& o) {
  o.runs_dir = str_option(a, "--runs-dir", "");
  o.run_dir = str_option(a, "--run-dir", "");
  o.epochs = int_option(a, "--epochs", -1);
}

// A command's human summary on stdout, then (with --json) its result object as the last line.
template <typename Result>
int print_result(const Result& r, bool json) {
  std::cout << r.summary;
  if (json) std::cout << r.json << "\n";
  std::cout.flush();
  return 0;
}

int run(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage(stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  const Command* command = nullptr;
  for (const Command& c : kCommands)
    if (cmd == c.name) command = &c;
  if (!command) {
    std::fprintf(stderr, "tessera: unknown command '%s'\n\n", cmd.c_str());
    print_usage(stderr);
    return 2;
  }
  Args a = parse_args(argc, argv, 2);
  if (a.help) {
    std::printf("usage: %s\n\n%s", command->synopsis, command->help);
    return 0;
  }
  // Every trainer takes --epochs as an override of the config's train.epochs: 0 would save an
  // untrained model, so it is refused here for all of them.
  if (a.options.count("--epochs") && int_option(a, "--epochs", -1) < 1)
    TESSERA_THROW(Usage, "option --epochs expects a positive integer, got '"
                             << a.options.at("--epochs") << "'");
  // `predict IMAGE_MODEL IMAGE` takes two arguments.
  const bool image_predict = cmd == "predict" && a.positionals.size() == 2;
  if (a.positionals.size() != command->positionals && !image_predict)
    TESSERA_THROW(Usage, "usage: " << command->synopsis << " (got " << a.positionals.size()
                                   << " arguments; see 'tessera " << cmd << " --help')");

  tessera::behaviour::CommonOptions common;
  common.device = str_option(a, "--device", "");
  common.json = a.options.count("--json") > 0;
  common.quiet = a.options.count("--quiet") > 0;
  common.skip_lines = static_cast<int>(int_option(a, "--skip-lines", -1));
  common.on_error = str_option(a, "--on-error", "");

  // ---- pipelines, run listings and reports (host/scheduler) ----
  if (cmd == "run" || cmd == "runs" || cmd == "report") {
    namespace sched = tessera::scheduler;
    sched::CommandResult r;
    if (cmd == "run") {
      sched::StageRegistry registry;
      tessera::behaviour::register_stages(registry);  // one line per task with a pipeline
      tessera::image::register_stages(registry);
      tessera::textgen::register_stages(registry);
      tessera::textclass::register_stages(registry);
      tessera::recommend::register_stages(registry);
      tessera::audio::register_stages(registry);
      tessera::video::register_stages(registry);
      sched::RunOptions o;
      o.runs_dir = str_option(a, "--runs-dir", "");
      o.cache_dir = str_option(a, "--cache-dir", "");
      o.jobs = static_cast<int>(int_option(a, "--jobs", 0));
      o.device = common.device;
      o.quiet = common.quiet;
      r = sched::run_command(
          a.positionals[0], registry, o,
          a.options.count("--dry-run") ? sched::Execution::DryRun : sched::Execution::Run);
    } else if (cmd == "runs") {
      r = sched::runs_command(str_option(a, "--runs-dir", "runs"));
    } else {
      r = sched::report_command(a.positionals[0]);
    }
    return print_result(r, common.json);
  }

  // ---- personalised recommendation (pipelines/recommend) ----
  if (cmd == "recommend" || cmd == "export" ||
      (cmd == "train" && tessera::recommend::is_recommend_config(a.positionals[0]))) {
    tessera::recommend::CliOptions o;
    o.device = common.device;
    o.quiet = common.quiet;
    read_run_options(a, o);
    o.resume = str_option(a, "--resume", "");
    o.k = int_option(a, "--k", 10);
    o.format = str_option(a, "--format", "npy");
    const tessera::recommend::Result r = tessera::recommend::run_cli(cmd, a.positionals, o);
    return print_result(r, common.json);
  }
  tessera::behaviour::Result result;
  // ---- text generation (pipelines/textgen) ----
  if (cmd == "generate" || cmd == "perplexity" ||
      (cmd == "train" && tessera::textgen::is_textgen_config(a.positionals[0]))) {
    tessera::textgen::Result r;
    if (cmd == "train") {
      tessera::textgen::TrainOptions o;
      o.device = common.device;
      o.quiet = common.quiet;
      read_run_options(a, o);
      o.time_budget_s = static_cast<double>(int_option(a, "--time-budget", -1));
      o.resume = str_option(a, "--resume", "");
      r = tessera::textgen::train(a.positionals[0], o);
    } else if (cmd == "generate") {
      tessera::textgen::GenerateOptions o;
      o.device = str_option(a, "--device", "cpu");
      o.prompt = str_option(a, "--prompt", "");
      o.length = int_option(a, "--length", 200);
      o.top_k = int_option(a, "--top-k", 0);
      o.seed = static_cast<uint64_t>(int_option(a, "--seed", 0));
      const std::string temp = str_option(a, "--temperature", "1.0");
      char* end = nullptr;
      o.temperature = std::strtod(temp.c_str(), &end);
      if (temp.empty() || *end != '\0')
        TESSERA_THROW(Usage, "option --temperature expects a number, got '" << temp << "'");
      r = tessera::textgen::generate(a.positionals[0], o, [](const std::string& piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      });
      std::printf("\n");
    } else {
      r = tessera::textgen::perplexity(a.positionals[0], a.positionals[1],
                                       str_option(a, "--device", "cpu"));
    }
    return print_result(r, common.json);
  }
  // ---- text classification (pipelines/textclass) ----
  if ((cmd == "train" && tessera::textclass::is_textclass_config(a.positionals[0])) ||
      ((cmd == "evaluate" || (cmd == "predict" && !image_predict)) &&
       tessera::textclass::is_textclass_model(a.positionals[0]))) {
    tessera::textclass::Result r;
    if (cmd == "train") {
      tessera::textclass::TrainOptions o;
      o.device = common.device;
      o.quiet = common.quiet;
      read_run_options(a, o);
      o.time_budget_s = static_cast<double>(int_option(a, "--time-budget", -1));
      o.resume = str_option(a, "--resume", "");
      r = tessera::textclass::train(a.positionals[0], o);
    } else {
      tessera::textclass::RunOptions o;
      o.device = common.device.empty() ? "cpu" : common.device;
      o.quiet = common.quiet;
      o.skip_lines = common.skip_lines;
      o.batch_size = int_option(a, "--batch-size", 4096);
      r = cmd == "evaluate" ? tessera::textclass::evaluate(a.positionals[0], a.positionals[1], o)
                            : tessera::textclass::predict(a.positionals[0], a.positionals[1],
                                                          a.positionals[2], o);
    }
    return print_result(r, common.json);
  }
  // ---- video clips (pipelines/video): `predict VIDEO_MODEL CLIP` ----
  if ((cmd == "train" && tessera::is_video_config_file(a.positionals[0])) ||
      ((cmd == "evaluate" || image_predict) &&
       tessera::video::is_video_model_file(a.positionals[0]))) {
    tessera::video::TrainOptions o;
    o.device = common.device;
    o.json = common.json;
    o.quiet = common.quiet;
    read_run_options(a, o);
    o.resume = str_option(a, "--resume", "");
    const tessera::video::Result r =
        cmd == "train"      ? tessera::video::train(a.positionals[0], o)
        : cmd == "evaluate" ? tessera::video::evaluate(a.positionals[0], a.positionals[1], o)
                            : tessera::video::predict(a.positionals[0], a.positionals[1], o);
    return print_result(r, common.json);
  }
  // ---- audio classification (pipelines/audio): `predict AUDIO_MODEL FILE.wav` ----
  if ((cmd == "train" && tessera::is_audio_config_file(a.positionals[0])) ||
      ((cmd == "evaluate" || image_predict) &&
       tessera::audio::is_audio_model_file(a.positionals[0]))) {
    tessera::audio::TrainOptions o;
    o.device = common.device;
    o.json = common.json;
    o.quiet = common.quiet;
    read_run_options(a, o);
    o.resume = str_option(a, "--resume", "");
    const tessera::audio::Result r =
        cmd == "train"      ? tessera::audio::train(a.positionals[0], o)
        : cmd == "evaluate" ? tessera::audio::evaluate(a.positionals[0], a.positionals[1], o)
                            : tessera::audio::predict(a.positionals[0], a.positionals[1], o);
    return print_result(r, common.json);
  }
  // ---- image classification (pipelines/image) ----
  const bool image_train = cmd == "train" && tessera::is_image_config_file(a.positionals[0]);
  const bool image_model =
      (cmd == "evaluate" || image_predict) && tessera::image::is_image_model_file(a.positionals[0]);
  if (image_predict && !image_model)
    TESSERA_THROW(
        Usage, "'" << a.positionals[0] << "' is not an image model; usage: " << command->synopsis);
  if (image_train || image_model) {
    tessera::image::Options io;
    io.device = common.device;
    io.json = common.json;
    io.quiet = common.quiet;
    tessera::image::Result r;
    if (image_train) {
      tessera::image::TrainOptions o;
      static_cast<tessera::image::Options&>(o) = io;
      read_run_options(a, o);
      o.resume = str_option(a, "--resume", "");
      r = tessera::image::train(a.positionals[0], o);
    } else if (cmd == "evaluate") {
      r = tessera::image::evaluate(a.positionals[0], a.positionals[1], io);
    } else {
      r = tessera::image::predict(a.positionals[0], a.positionals[1], io);
    }
    return print_result(r, common.json);
  }
  if (cmd == "make-synthetic" && str_option(a, "--layout", "behaviour") == "criteo") {
    tessera::behaviour::CriteoSyntheticOptions co;
    co.train_rows = int_option(a, "--rows", co.train_rows);
    if (co.train_rows < 100) TESSERA_THROW(Usage, "--rows must be at least 100");
    co.test_rows = co.train_rows / 4;
    const std::string cfg = tessera::behaviour::write_synthetic_criteo(a.positionals[0], co);
    result.summary = "wrote " + a.positionals[0] + "/{train,test}.txt and " + cfg + "\n";
    result.json = "{\"command\":\"make-synthetic\",\"layout\":\"criteo\",\"config\":\"" + cfg +
                  "\",\"train_rows\":" + std::to_string(co.train_rows) +
                  ",\"test_rows\":" + std::to_string(co.test_rows) + "}";
  } else if (cmd == "make-synthetic") {
    if (str_option(a, "--layout", "behaviour") != "behaviour")
      TESSERA_THROW(Usage, "--layout must be one of: behaviour, criteo");
    tessera::behaviour::SyntheticOptions so;
    so.train_rows = int_option(a, "--rows", so.train_rows);
    if (so.train_rows < 100) TESSERA_THROW(Usage, "--rows must be at least 100");
    so.test_rows = so.train_rows / 4;
    const std::string cfg = tessera::behaviour::write_synthetic_dataset(a.positionals[0], so);
    result.summary = "wrote " + a.positionals[0] + "/{train,test}.csv and " + cfg + "\n";
    result.json = "{\"command\":\"make-synthetic\",\"config\":\"" + cfg +
                  "\",\"train_rows\":" + std::to_string(so.train_rows) +
                  ",\"test_rows\":" + std::to_string(so.test_rows) + "}";
  } else if (cmd == "train") {
    tessera::behaviour::TrainOptions o;
    static_cast<tessera::behaviour::CommonOptions&>(o) = common;
    read_run_options(a, o);
    o.resume = str_option(a, "--resume", "");
    result = tessera::behaviour::train(a.positionals[0], o);
  } else if (cmd == "evaluate") {
    result = tessera::behaviour::evaluate(a.positionals[0], a.positionals[1], common);
  } else {
    tessera::behaviour::PredictOptions o;
    static_cast<tessera::behaviour::CommonOptions&>(o) = common;
    o.batch_size = int_option(a, "--batch-size", 4096);
    result = tessera::behaviour::predict(a.positionals[0], a.positionals[1], a.positionals[2], o);
  }
  return print_result(result, common.json);
}

}  // namespace

namespace {

int run_guarded(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const tessera::TrainingDiverged& e) {
    // A failed job like any other (exit 1), whose --json result still is one object on stdout:
    // the run's result.json, "status": "diverged".
    std::fprintf(stderr, "tessera: %s: %s\n", tessera::error_kind_name(e.kind()), e.what());
    for (int i = 2; i < argc; ++i)
      if (!std::strcmp(argv[i], "--json")) std::printf("%s\n", e.result_json().c_str());
    std::fflush(stdout);
    return 1;
  } catch (const tessera::Error& e) {
    std::fprintf(stderr, "tessera: %s: %s\n", tessera::error_kind_name(e.kind()), e.what());
    return (e.kind() == ErrorKind::Usage || e.kind() == ErrorKind::Config) ? 2 : 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "tessera: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera: internal error: %s\n", e.what());
    return 1;
  }
}

#if TESSERA_WITH_MPI
// Started by an MPI launcher (mpirun sets one of these): rank 0 runs the command, and a config
// with "remote_shards" puts its embedding shards on the other ranks, which only serve them.
bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

int run_mpi(int argc, char** argv) {
  // Pipeline stages train on scheduler threads, and two may run at once.
  int threads = MPI_THREAD_SINGLE;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &threads);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int rc = 0;
  if (rank != 0) {
    try {
      auto backend = tessera::make_host_backend();
      tessera::emb::serve_mpi_shards(*backend);
    } catch (const std::exception& e) {
      // Rank 0 may be waiting for this rank's reply: end the whole job rather than leave it hung.
      std::fprintf(stderr, "tessera (shard server, MPI rank %d): %s\n", rank, e.what());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  } else {
    const std::string ranks = "MPI ranks 1-" + std::to_string(size - 1);
    if (size < 2) {
      tessera::emb::set_remote_shard_factory(nullptr, "mpirun started only 1 rank");
    } else if (threads == MPI_THREAD_MULTIPLE) {
      tessera::emb::set_remote_shard_factory(tessera::emb::mpi_shard_factory(), ranks);
    } else {
      // Without thread support only this thread may talk MPI: the stages of a `tessera run`
      // pipeline (on scheduler threads) cannot use remote shards.
      const std::thread::id main_thread = std::this_thread::get_id();
      tessera::emb::ShardFactory mpi = tessera::emb::mpi_shard_factory();
      tessera::emb::set_remote_shard_factory(
          [main_thread, mpi](int k, std::vector<tessera::emb::TableSpec> specs,
                             const tessera::emb::CollectionOptions& opts) {
            if (std::this_thread::get_id() != main_thread)
              TESSERA_THROW(Usage,
                            "this MPI has no thread support, so remote shards work in "
                            "`tessera train`, not in a pipeline stage");
            return mpi(k, std::move(specs), opts);
          },
          ranks);
    }
    rc = run_guarded(argc, argv);
    if (size > 1) tessera::emb::stop_mpi_shard_servers();
  }
  MPI_Finalize();
  return rc;
}
#endif

}  // namespace

int main(int argc, char** argv) {
#if TESSERA_WITH_MPI
  if (launched_by_mpi()) return run_mpi(argc, argv);
#else
  tessera::emb::set_remote_shard_factory(
      nullptr,
      "this tessera was built without MPI (install Open MPI, tools/setup.sh, and rebuild)");
#endif
  return run_guarded(argc, argv);
}
