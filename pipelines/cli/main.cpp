// tessera: the command-line front end. Parses arguments and dispatches through the task registry
// (pipelines/task.h): `train` by the config's "task", the model verbs by the model file's. It is
// the only place that turns errors into exit codes:
//   0 success, 1 failure of the job (data, I/O, backend), 2 bad usage or config.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#if TESSERA_WITH_MPI
#include <mpi.h>

#include "embeddings/mpi/mpi_shards.h"
#include "host/dist/mpi_group.h"
#endif
#if TESSERA_WITH_NCCL
#include "cuda/nccl_group.h"
#endif
#include "embeddings/tables.h"
#include "host/backend/backend.h"
#include "host/config/json_reader.h"
#include "host/config/json_writer.h"
#include "host/core/error.h"
#include "host/model/divergence.h"
#include "host/scheduler/commands.h"
#include "host/train/repeats.h"
#include "pipelines/commands.h"
#include "pipelines/json_nullable.h"
#include "pipelines/task.h"

namespace {

using tessera::ErrorKind;

struct Command {
  const char* name;
  const char* synopsis;
  const char* help;
  size_t min_positionals, max_positionals;
};

const Command kCommands[] = {
    {"train", "tessera train CONFIG [options]",
     "Trains the model a JSON config describes, evaluates it on the validation and test data,\n"
     "and writes a run directory: the resolved config, metrics as JSON lines, the model.\n"
     "  --device D       auto (default: CUDA when a GPU is present), cpu, cuda, cuda:N\n"
     "  --runs-dir DIR   where run directories are created (default: the config's, or runs/)\n"
     "  --run-dir DIR    exact run directory to use (must not exist yet)\n"
     "  --epochs N       override train.epochs\n"
     "  --time-budget S  stop after the batch that crosses S seconds of training (checkpointed,\n"
     "                   result \"out_of_time\": true); textgen and textclass configs have one\n"
     "  --seed S         override the config's seed\n"
     "  --seeds S1,S2,.. one run per seed (each its own run directory), then each metric's\n"
     "                   mean, sample standard deviation, min and max (under --json: \"mean\",\n"
     "                   \"std\", \"min\", \"max\" by dotted name, and every run's result)\n"
     "  --resume RUN_DIR continue a run from its last epoch's checkpoint (same config; every\n"
     "                   task)\n"
     "  --json           last stdout line: one JSON object with the results\n"
     "  --quiet          no progress output\n"
     "  --deterministic-reduction\n"
     "                   under mpirun (every rank trains, docs/distributed.md): sum the\n"
     "                   ranks' gradients in rank order, bit-identical from run to run\n",
     1, 1},
    {"evaluate", "tessera evaluate MODEL DATA [options]",
     "Evaluates a trained model on a labelled data file (same layout as its training data).\n"
     "Image models: DATA is IMAGES[,LABELS] (IDX, .gz or not; labels default to the images\n"
     "file with 'images-idx3' -> 'labels-idx1') or a digits CSV.\n"
     "Audio models: DATA is a folder of {label}_{speaker}_{index}.wav files or a registered\n"
     "dataset NAME, NAME:test or NAME:train (e.g. fsdd:test).\n"
     "Video models: DATA is a folder of class subfolders of clips (frame folders, .tclip).\n"
     "Text-classification models: DATA is label<TAB>text lines (a first line whose label is\n"
     "'label' is a header); reports accuracy, macro-F1 and the confusion matrix.\n"
     "Recommendation models: DATA is the ratings file the model was trained on; its held-out\n"
     "split is rebuilt from the model's config and seed and measured (RMSE, HR/NDCG@K).\n"
     "Text-generation models: DATA is a text file; reports perplexity and bits per character.\n"
     "  --device D, --json, --quiet as for train\n"
     "Under mpirun, a behaviour model is evaluated on every rank, each its part of DATA, and\n"
     "rank 0 prints the metrics over all rows (docs/distributed-scoring.md).\n"
     "  --skip-lines N   leading lines of DATA to skip (e.g. 1 for adult.test)\n"
     "  --on-error P     error (default) or skip: what to do with malformed rows\n",
     2, 2},
    {"predict",
     "tessera predict MODEL INPUT OUTPUT [options]  |  tessera predict IMAGE_MODEL IMAGE",
     "Batch-scores INPUT (CSV in the training layout, label column optional) into OUTPUT (CSV:\n"
     "line,score), streaming in bounded memory. OUTPUT is written atomically. Under mpirun every\n"
     "rank scores its part of INPUT and OUTPUT is the one-process file "
     "(docs/distributed-scoring.md).\n"
     "With an image model (task \"image\") and one PNG or PGM image: prints the top 3 classes\n"
     "with their probabilities.\n"
     "With an audio model (task \"audio\") and one WAV file: the same, for the recording.\n"
     "With a video model (task \"video\") and one clip (a folder of frames or a .tclip\n"
     "file): the same, for the clip; with DATA OUTPUT, every clip of DATA's class folders\n"
     "into OUTPUT (TSV: clip, folder, top class, probability).\n"
     "With a text-classification model: classifies each line of INPUT (a text file) into\n"
     "OUTPUT (TSV: line, label, one probability per class), streaming, written atomically.\n"
     "With a text-generation model: each line of INPUT is a prompt; OUTPUT (TSV) gets its most\n"
     "likely next token, that token's probability and a greedy continuation (--length N).\n"
     "With a recommendation model: INPUT rows user,item get OUTPUT rows user,item,score; rows\n"
     "of one user id get that user's top-K items (--k K), as 'tessera recommend' lists them.\n"
     "  --device D, --json, --quiet as for train\n"
     "  --skip-lines N, --on-error P as for evaluate\n"
     "  --batch-size N   rows scored at a time (default 4096)\n"
     "  --length N       text generation: tokens of greedy continuation (default 20)\n"
     "  --k K            recommendation: items per user (default 10)\n",
     2, 3},
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
     1, 1},
    {"perplexity", "tessera perplexity MODEL TEXT [options]",
     "Reports a text-generation model's loss (nats/char) and perplexity on a text file.\n"
     "  --device D, --json as for generate\n",
     2, 2},
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
     1, 1},
    {"prep", "tessera prep CONFIG [--out DIR] [--append FILE]",
     "Prepares a behaviour config's data (csv or criteo) once for many training runs: fits the\n"
     "preprocessor on the train rows as train does, then writes every split's encoded rows as\n"
     "binary column shards plus manifest.json (docs/prepared-format.md), streaming in bounded\n"
     "memory. A rerun with unchanged sources is up to date; a stopped one resumes.\n"
     "  --out DIR        the dataset directory (default: CONFIG's directory/prepared)\n"
     "  --append FILE    add FILE (a new day of logs, same layout) to the train split of the\n"
     "                   prepared dataset, encoded with its fitted vocabularies\n"
     "  --shard-rows N   rows per shard (default 262144)\n"
     "  --threads N      threads parsing and encoding (default 4)\n"
     "  --json, --quiet as for train\n",
     1, 1},
    {"runs", "tessera runs [--runs-dir DIR]",
     "Lists the run directories under DIR (default runs/) with their headline metrics.\n"
     "  --json           last stdout line: one JSON object\n",
     0, 0},
    {"report", "tessera report RUN_DIR",
     "Writes RUN_DIR/report.html: one self-contained page (no network needed) with the\n"
     "training and validation curves as inline SVG, the final metrics and the config.\n"
     "  --json           last stdout line: one JSON object with the report's path\n",
     1, 1},
    {"recommend", "tessera recommend MODEL OUTPUT --k K",
     "Writes the top-K items for every user of a recommendation model to OUTPUT (CSV:\n"
     "user,rank,item,score), excluding the items each user saw in training; streamed, written\n"
     "atomically.\n"
     "  --k K            items per user (default 10)\n"
     "  --json, --quiet as for train\n",
     2, 2},
    {"export", "tessera export MODEL --format npy|safetensors|word2vec|faiss OUTDIR",
     "Writes a recommendation model's user, item and bias tables with their raw ids to OUTDIR\n"
     "(see pipelines/recommend/README.md for the files of each format), plus manifest.json.\n"
     "  --format F       npy (default), safetensors, word2vec, faiss\n"
     "  --json           last stdout line: one JSON object (the manifest)\n",
     2, 2},
    {"config", "tessera config TASK [--example | --schema]",
     "Prints a task's config documentation, derived from the one declaration its reader uses:\n"
     "  --example        (default) a complete config with every field at its default, each\n"
     "                   documented in // comments (tessera reads comments); fields that do not\n"
     "                   apply to the defaults are commented out with the reason\n"
     "  --schema         the config's JSON Schema (draft 2020-12), for editors to validate with\n"
     "  --json           last stdout line: one JSON object (the schema, or {\"example\": ...})\n",
     1, 1},
    {"make-synthetic", "tessera make-synthetic DIR [options]",
     "Writes a synthetic behaviour dataset (DIR/train.csv, DIR/test.csv, with a planted signal)\n"
     "and DIR/config.json that trains on it: a default that needs no download.\n"
     "  --rows N         training rows (default 20000; test gets a quarter)\n"
     "  --layout L       behaviour (default: the CSV above) | criteo (train.txt, test.txt in the\n"
     "                   Criteo layout: 13 counts, 26 power-law categorical ids, planted signal;\n"
     "                   config.json trains a DLRM from DIR/prepared; default 100000 rows)\n"
     "  --size S         criteo: write about S bytes of text instead (40G, 512M, ...)\n"
     "  --max-table-rows N  criteo: cap each table of the Criteo 1TB profile at N ids\n"
     "  --min-count N    criteo: the config's vocabulary threshold (rarer ids share a row)\n"
     "  --threads N      criteo: generator threads (the output does not depend on N)\n"
     "  --seed N         the generator's seed\n"
     "  --json           last stdout line: one JSON object with the paths\n",
     1, 1},
};

void print_usage(std::FILE* f) {
  std::fprintf(f, "tessera: train, evaluate and deploy models on your data\n\nusage:\n");
  for (const Command& c : kCommands) std::fprintf(f, "  %s\n", c.synopsis);
  std::fprintf(f, "\ntasks (a config's \"task\"; a model file answers its task's verbs):\n");
  for (const tessera::Task& t : tessera::tasks().all()) {
    std::string verbs;
    for (const auto& verb : t.model_verbs) verbs += (verbs.empty() ? "" : ", ") + verb.first;
    std::fprintf(f, "  %-10s %s\n             model verbs: %s\n", t.name.c_str(), t.about.c_str(),
                 verbs.c_str());
  }
  std::fprintf(f, "\nRun 'tessera COMMAND --help' for a command's options.\n");
}

const std::vector<std::string> kFlags = {"--json",    "--quiet",  "--dry-run",
                                         "--example", "--schema", "--deterministic-reduction"};
const std::vector<std::string> kValued = {
    "--prompt",   "--length",     "--temperature",    "--top-k",    "--seed",   "--time-budget",
    "--rows",     "--device",     "--runs-dir",       "--run-dir",  "--epochs", "--skip-lines",
    "--on-error", "--batch-size", "--cache-dir",      "--k",        "--format", "--resume",
    "--layout",   "--jobs",       "--seeds",          "--out",      "--append", "--shard-rows",
    "--threads",  "--size",       "--max-table-rows", "--min-count"};

// argv[first..]: options ("--name value", "--name=value", flags) and positional arguments.
tessera::CliArgs parse_args(int argc, char** argv, int first, bool* help) {
  tessera::CliArgs a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      *help = true;
    } else if (s.rfind("--", 0) == 0) {
      std::string key = s, value;
      auto eq = s.find('=');
      if (eq != std::string::npos) {
        key = s.substr(0, eq);
        value = s.substr(eq + 1);
      }
      const bool flag = std::find(kFlags.begin(), kFlags.end(), key) != kFlags.end();
      const bool valued = std::find(kValued.begin(), kValued.end(), key) != kValued.end();
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

// A command's human summary on stdout, then (with --json) its result object as the last line.
int print_result(const tessera::CommandResult& r, bool json) {
  std::cout << r.summary;
  if (json) std::cout << r.json << "\n";
  std::cout.flush();
  return 0;
}

// train CONFIG: the config's "task" picks the task.
// With --seeds 1,2,3: one run per seed, each in its own run directory, then each metric's mean
// and spread (host/train/repeats.h).
tessera::CommandResult train_command(const tessera::CliArgs& a) {
  const tessera::Task& task = tessera::task_of_config(tessera::tasks(), a.positionals[0]);
  if (!a.flag("--seeds")) return task.train(a);
  for (const char* other : {"--seed", "--run-dir", "--resume"})
    if (a.flag(other))
      TESSERA_THROW(Usage,
                    "--seeds trains one run directory per seed under --runs-dir: it "
                    "cannot be combined with "
                        << other);
  const std::vector<int64_t> seeds = tessera::train::parse_seed_list(a.options.at("--seeds"));
  std::vector<tessera::CommandResult> runs;
  std::string lines;
  for (const int64_t seed : seeds) {
    tessera::CliArgs one = a;
    one.options.erase("--seeds");
    one.options["--seed"] = std::to_string(seed);
    runs.push_back(task.train(one));
    lines += "== seed " + std::to_string(seed) + "\n" + runs.back().summary;
    if (!lines.empty() && lines.back() != '\n') lines += '\n';
  }
  tessera::CommandResult all = tessera::train::summarize_repeats(seeds, runs);
  all.summary = lines + all.summary;
  return all;
}

tessera::CommandResult dispatch(const tessera::CliArgs& a) {
  const std::string& c = a.command;
  if (c == "train") return train_command(a);
  if (c == "config") return tessera::cli::config_command(a);
  if (c == "run" || c == "runs" || c == "report") return tessera::cli::pipeline_command(a);
  if (c == "make-synthetic") return tessera::cli::synthetic_command(a);
  if (c == "prep") return tessera::cli::prep_command(a);
  return tessera::cli::model_command(a);
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
  bool help = false;
  tessera::CliArgs a = parse_args(argc, argv, 2, &help);
  a.command = cmd;
  if (help) {
    std::printf("usage: %s\n\n%s", command->synopsis, command->help);
    return 0;
  }
  const size_t n = a.positionals.size();
  if (n < command->min_positionals || n > command->max_positionals)
    TESSERA_THROW(Usage, "usage: " << command->synopsis << " (got " << n
                                   << " arguments; see 'tessera " << cmd << " --help')");
  return print_result(dispatch(a), a.flag("--json"));
}

// With --json, a failed command still ends with one JSON object on stdout: {"error": {"kind",
// "message", "file", "line", "column", "json_path"}} (the place null where the error has none).
void print_json_error(int argc, char** argv, const tessera::Error& e) {
  bool json = false;
  for (int i = 2; i < argc; ++i) json = json || !std::strcmp(argv[i], "--json");
  if (!json) return;
  const tessera::ErrorLocation& at = e.location();
  tessera::json::JsonWriter w;
  w.begin_object().key("error").begin_object();
  w.field("kind", tessera::error_kind_id(e.kind())).field("message", std::string(e.what()));
  tessera::json::field_or_null(w, "file", at.file, !at.file.empty());
  tessera::json::field_or_null(w, "line", at.line, at.line > 0);
  tessera::json::field_or_null(w, "column", at.column, at.column > 0);
  tessera::json::field_or_null(w, "json_path", at.json_path, !at.json_path.empty());
  w.end_object().end_object();
  std::printf("%s\n", w.compact().c_str());
  std::fflush(stdout);
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
    print_json_error(argc, argv, e);
    return (e.kind() == ErrorKind::Usage || e.kind() == ErrorKind::Config) ? 2 : 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "tessera: out of memory\n");
    print_json_error(argc, argv, tessera::Error(ErrorKind::Internal, "out of memory"));
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera: internal error: %s\n", e.what());
    print_json_error(argc, argv, tessera::Error(ErrorKind::Internal, e.what()));
    return 1;
  }
}

#if TESSERA_WITH_MPI
// Started by an MPI launcher (mpirun sets one of these).
bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

bool has_arg(int argc, char** argv, const char* arg) {
  for (int i = 2; i < argc; ++i)
    if (!std::strcmp(argv[i], arg)) return true;
  return false;
}

// Whether `train CONFIG`'s config puts its tables on other ranks: "remote_shards": true in one of
// its sections (the behaviour config's "model", the recommendation config's "embeddings"). An
// unreadable config counts as not, and training reports it.
bool config_has_remote_shards(const std::string& path) {
  try {
    const std::unique_ptr<tessera::json::Document> doc =
        tessera::json::parse(tessera::json::read_text_file(path), path);
    if (!doc->json.IsObject()) return false;
    for (const auto& section : doc->json.GetObject()) {
      if (!section.value.IsObject()) continue;
      const auto it = section.value.FindMember("remote_shards");
      if (it != section.value.MemberEnd() && it->value.IsBool() && it->value.GetBool()) return true;
    }
  } catch (const tessera::Error&) {
  }
  return false;
}

// The config of `train CONFIG [options]` ("" when the arguments do not parse: rank 0 reports it).
std::string train_config(int argc, char** argv) {
  try {
    bool help = false;
    const tessera::CliArgs a = parse_args(argc, argv, 2, &help);
    return a.positionals.empty() ? "" : a.positionals[0];
  } catch (const tessera::Error&) {
    return "";
  }
}

// `evaluate MODEL DATA` and `predict MODEL INPUT OUTPUT` of a behaviour model: every rank scores
// its part of the input and rank 0 writes the one result (docs/distributed-scoring.md). Other
// tasks' models, and arguments that do not parse (rank 0 reports them), stay on rank 0.
bool scores_on_every_rank(int argc, char** argv) {
  if (argc < 3 || (std::strcmp(argv[1], "evaluate") && std::strcmp(argv[1], "predict")))
    return false;
  try {
    bool help = false;
    const tessera::CliArgs a = parse_args(argc, argv, 2, &help);
    if (help || a.positionals.empty()) return false;
    return tessera::task_of_model(tessera::tasks(), a.positionals[0]).name == "behaviour";
  } catch (const tessera::Error&) {
    return false;
  }
}

// Every rank trains (data-parallel, docs/distributed.md) or scores (scores_on_every_rank): the
// MPI group is installed and each rank runs the command; rank 0 prints (the others run --quiet with
// stdout closed). An error on any rank ends the whole job with that rank's message and exit code
// (MPI_Abort): the other ranks may be waiting in a collective for it.
#if TESSERA_WITH_NCCL
// On GPU machines: one GPU per rank (its rank among the ranks of its node; "cuda" and "auto" then
// mean it), and a CUDA backend's gradients all-reduced by NCCL on its stream (host collectives
// stay MPI's). Only when every rank of the job has a GPU of its own: NCCL refuses two ranks on one
// GPU, and every rank must take the same path (a rank on the MPI path and one in NCCL would wait
// for each other forever). Otherwise all ranks keep the MPI path.
std::unique_ptr<tessera::dist::ProcessGroup> with_nccl(
    std::unique_ptr<tessera::dist::ProcessGroup> group, int rank) {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int local = 0, local_size = 1;
  MPI_Comm_rank(node, &local);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
  const int gpus = tessera::cuda_device_count();
  // Counted by MPI directly, not the group: the group's byte counters are the training's.
  int own_gpu = local_size <= gpus ? 1 : 0, with_gpu = 0;
  MPI_Allreduce(&own_gpu, &with_gpu, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (with_gpu < group->world()) {
    if (rank == 0 && (gpus > 0 || with_gpu > 0))
      std::fprintf(stderr,
                   "tessera: %d of %d ranks have no GPU of their own (more ranks on a node than "
                   "GPUs): gradients are all-reduced over MPI, not NCCL\n",
                   group->world() - with_gpu, group->world());
    return group;
  }
  tessera::cuda::use_device(local);
  return tessera::cuda::make_nccl_group(std::move(group));
}
#endif

int run_data_parallel(int argc, char** argv, int rank) {
  tessera::dist::MpiGroupOptions o;
  o.deterministic = has_arg(argc, argv, "--deterministic-reduction");
  try {
    std::unique_ptr<tessera::dist::ProcessGroup> group = tessera::dist::make_mpi_group(o);
#if TESSERA_WITH_NCCL
    group = with_nccl(std::move(group), rank);
#endif
    tessera::dist::set_process_group(std::move(group));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tessera (MPI rank %d): %s; ending the job\n", rank, e.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  std::vector<char*> args(argv, argv + argc);
  std::string quiet = "--quiet";
  if (rank != 0) {
    if (!has_arg(argc, argv, "--quiet")) args.push_back(quiet.data());
    if (!std::freopen("/dev/null", "w", stdout))
      std::fprintf(stderr, "tessera (MPI rank %d): cannot close stdout\n", rank);
  }
  int rc = run_guarded(static_cast<int>(args.size()), args.data());
  if (rc != 0) {
    std::fprintf(stderr, "tessera: MPI rank %d failed (exit %d); ending the job\n", rank, rc);
    std::fflush(stderr);
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, rc);
  }
  tessera::dist::set_process_group(nullptr);
  return rc;
}

// Rank 0 runs the command, and a config with "remote_shards" puts its embedding shards on the
// other ranks, which only serve them.
int run_rank0_with_shard_servers(int argc, char** argv, int rank, int size, int threads) {
  if (rank != 0) {
    try {
      auto backend = tessera::make_host_backend();
      tessera::emb::serve_mpi_shards(*backend);
    } catch (const std::exception& e) {
      // Rank 0 may be waiting for this rank's reply: end the whole job rather than leave it hung.
      std::fprintf(stderr, "tessera (shard server, MPI rank %d): %s\n", rank, e.what());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return 0;
  }
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
  const int rc = run_guarded(argc, argv);
  if (size > 1) tessera::emb::stop_mpi_shard_servers();
  return rc;
}

// Under mpirun: `train CONFIG` without "remote_shards" trains on every rank, and a behaviour
// model's evaluate and predict score on every rank; every other command, and a config with remote
// shards, runs on rank 0 with the other ranks serving its shards.
int run_mpi(int argc, char** argv) {
  // Pipeline stages train on scheduler threads, and two may run at once.
  int threads = MPI_THREAD_SINGLE;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &threads);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  tessera::emb::set_remote_shard_factory(
      nullptr, "every MPI rank trains this config (it has no \"remote_shards\")");
  const bool every_rank_trains = argc >= 3 && !std::strcmp(argv[1], "train") &&
                                 !config_has_remote_shards(train_config(argc, argv));
  const int rc = every_rank_trains || scores_on_every_rank(argc, argv)
                     ? run_data_parallel(argc, argv, rank)
                     : run_rank0_with_shard_servers(argc, argv, rank, size, threads);
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
