// Exact resumption of the image (CNN, also used by audio) and textgen trainers: a run stopped
// right after its epoch-k checkpoint, rerun into the same directory, ends bit-identical (weights,
// metrics, final figures) to an uninterrupted run with the same seed. Small slices of
// sklearn-digits and tinyshakespeare (seconds); skipped where the dataset is absent.
//
// The stop is the after_checkpoint hook throwing: the files on disk are then exactly those a
// SIGKILL at that instant leaves (nothing is written between the checkpoint and the hook, and no
// destructor writes). A forked child cannot train here: the host backend's OpenMP pool does not
// survive fork() in a process that has used it; the tessera binary can (fork + exec), and the
// image family is also killed there with SIGKILL and continued with `tessera train CONFIG
// --resume RUN_DIR`. tests/scheduler_resume_test.cpp does that for the behaviour pipeline.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/scheduler/stage_helpers.h"
#include "pipelines/image/image.h"
#include "pipelines/textgen/textgen.h"
#include "tests/support/run_program.h"
#include "tests/support/skips.h"

namespace tessera {
namespace {

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/resume_tasks_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  make_directories(d);
  return d;
}

struct Killed {};

// Runs `train` (which installs the hook it is given) and stops it dead once the checkpoint of
// epoch `k` is on disk. Fails the test unless it stopped there.
void train_killed_after(int64_t k, const std::function<void(std::function<void(int64_t)>)>& train) {
  try {
    train([k](int64_t done) {
      if (done == k) throw Killed{};
    });
    ADD_FAILURE() << "the run finished without reaching the checkpoint of epoch " << k;
  } catch (const Killed&) {
  }
}

// A JSON object with the members that measure time (and the paths) removed, serialised.
std::string without_timings(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  EXPECT_FALSE(d.HasParseError()) << json;
  if (d.HasParseError() || !d.IsObject()) return json;
  std::vector<std::string> drop;
  for (auto m = d.MemberBegin(); m != d.MemberEnd(); ++m) {
    const std::string k = m->name.GetString();
    if (k.find("seconds") != std::string::npos || k.find("per_s") != std::string::npos ||
        k == "run_dir" || k == "model" || k == "resumed_from_epoch")
      drop.push_back(k);
  }
  for (const std::string& k : drop) d.RemoveMember(k.c_str());
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  d.Accept(w);
  return sb.GetString();
}

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(read_file(path));
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(without_timings(l));
  return out;
}

// Every tensor of the two archives is bit-identical, and they hold the same names.
void expect_same_archive(const std::string& a_path, const std::string& b_path) {
  const Archive a = load_archive(a_path), b = load_archive(b_path);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    auto it = b.tensors.find(name);
    ASSERT_NE(it, b.tensors.end()) << name;
    ASSERT_EQ(t.shape(), it->second.shape()) << name;
    ASSERT_EQ(t.bytes(), it->second.bytes()) << name;
    EXPECT_EQ(std::memcmp(t.raw(), it->second.raw(), t.bytes()), 0) << name << " differs";
  }
}

int64_t json_int(const std::string& json, const char* key) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  return !d.HasParseError() && d.IsObject() && d.HasMember(key) && d[key].IsInt64()
             ? d[key].GetInt64()
             : -999;
}

TEST(ResumeTasks, ImageCnnResumesBitIdenticalAfterKill) {
  const std::string missing = test::missing_dataset("sklearn-digits", {"digits.csv.gz"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string digits = scheduler::find_local_dataset_file("sklearn-digits", "digits.csv.gz");
  const std::string dir = temp_dir("image");
  // Batch norm (running statistics), dropout (step-seeded), augmentation (a generator carried
  // across epochs), Adam state and a cosine schedule: everything a resume must restore.
  const std::string config = dir + "/digits.json";
  write_file_atomic(config, R"({"task": "image", "name": "digits-resume", "seed": 5,
    "device": "cpu",
    "data": {"dataset": "sklearn-digits", "format": "digits_csv", "train": ")" +
                                digits + R"(",
             "test_fraction": 0.2, "validation_fraction": 0.15, "max_train_images": 500,
             "classes": 10},
    "model": {"layers": [
      {"type": "conv", "filters": 8, "kernel": 3, "padding": 1, "bias": false},
      {"type": "batchnorm"}, {"type": "relu"}, {"type": "maxpool", "kernel": 2},
      {"type": "flatten"}, {"type": "dense", "units": 32, "activation": "relu"},
      {"type": "dropout", "p": 0.2}]},
    "augment": {"crop_padding": 1, "horizontal_flip": true},
    "train": {"epochs": 3, "batch_size": 32, "eval_batch_size": 128,
              "optimizer": {"type": "adam", "lr": 0.003},
              "lr_schedule": {"type": "cosine", "warmup_steps": 3}}})");
  auto options = [&](const std::string& run) {
    image::TrainOptions o;
    o.quiet = true;
    o.resume = run;
    return o;
  };
  const image::Result whole = image::train(config, options(dir + "/whole"));
  EXPECT_EQ(json_int(whole.json, "resumed_from_epoch"), 0);

  train_killed_after(1, [&](std::function<void(int64_t)> hook) {
    image::TrainOptions o = options(dir + "/killed");
    o.after_checkpoint = std::move(hook);
    image::train(config, o);
  });
  EXPECT_EQ(lines_of(dir + "/killed/metrics.jsonl").size(), 1u);
  const image::Result resumed = image::train(config, options(dir + "/killed"));
  EXPECT_EQ(json_int(resumed.json, "resumed_from_epoch"), 1);

  EXPECT_EQ(without_timings(resumed.json), without_timings(whole.json));
  EXPECT_EQ(lines_of(dir + "/killed/metrics.jsonl"), lines_of(dir + "/whole/metrics.jsonl"));
  expect_same_archive(dir + "/killed/model.tsm", dir + "/whole/model.tsm");
  expect_same_archive(dir + "/killed/checkpoint.tsc", dir + "/whole/checkpoint.tsc");

  // A finished run rerun in place resumes at its end: same figures, no further training.
  const image::Result again = image::train(config, options(dir + "/whole"));
  EXPECT_EQ(json_int(again.json, "resumed_from_epoch"), 3);
  EXPECT_EQ(without_timings(again.json), without_timings(whole.json));
  std::filesystem::remove_all(dir);
}

std::string last_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// Through the binary: `tessera train CONFIG` killed with SIGKILL once its first checkpoint is on
// disk, continued with `--resume RUN_DIR`, ends as the uninterrupted run: the same result (but
// timings), every metrics line, the model file byte for byte.
void expect_binary_resumes_exactly(const std::string& dir, const std::string& config,
                                   int64_t epochs) {
  const std::string bin = std::string(TESSERA_BINARY_DIR) + "/tessera";
  const std::string no_cli = test::missing_cli(bin);
  if (!no_cli.empty()) TESSERA_SKIP_OR_FAIL(no_cli);
  const test::ProgramResult whole =
      test::run_program({bin, "train", config, "--run-dir", dir + "/whole", "--quiet", "--json"});
  ASSERT_EQ(whole.status, 0) << whole.err;
  const std::string killed = dir + "/killed";
  ASSERT_EQ(
      test::run_killed_when({bin, "train", config, "--run-dir", killed, "--quiet"},
                            [&] { return std::filesystem::exists(killed + "/checkpoint.tsc"); }),
      test::Killed::AtReady);
  ASSERT_FALSE(std::filesystem::exists(killed + "/model.tsm")) << "trained before the kill";
  const test::ProgramResult resumed =
      test::run_program({bin, "train", config, "--resume", killed, "--quiet", "--json"});
  ASSERT_EQ(resumed.status, 0) << resumed.err;
  const int64_t from = json_int(last_line(resumed.out), "resumed_from_epoch");
  EXPECT_GE(from, 1);
  EXPECT_LT(from, epochs);
  EXPECT_EQ(without_timings(last_line(resumed.out)), without_timings(last_line(whole.out)));
  EXPECT_EQ(lines_of(killed + "/metrics.jsonl"), lines_of(dir + "/whole/metrics.jsonl"));
  expect_same_archive(killed + "/model.tsm", dir + "/whole/model.tsm");  // names a tensor
  EXPECT_TRUE(read_file(killed + "/model.tsm") == read_file(dir + "/whole/model.tsm"));
}

TEST(ResumeTasks, ImageResumesAKilledBinaryRun) {
  const std::string missing = test::missing_dataset("sklearn-digits", {"digits.csv.gz"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string digits = scheduler::find_local_dataset_file("sklearn-digits", "digits.csv.gz");
  const std::string dir = temp_dir("image_cli");
  const std::string config = dir + "/digits.json";
  auto write_config = [&](int seed) {
    write_file_atomic(config, R"({"task": "image", "name": "digits-cli", "seed": )" +
                                  std::to_string(seed) + R"(, "device": "cpu",
      "data": {"format": "digits_csv", "train": ")" +
                                  digits + R"(",
               "validation_fraction": 0.15, "max_train_images": 900, "classes": 10},
      "model": {"layers": [
        {"type": "conv", "filters": 8, "kernel": 3, "padding": 1, "bias": false},
        {"type": "batchnorm"}, {"type": "relu"}, {"type": "flatten"},
        {"type": "dense", "units": 32, "activation": "relu"}, {"type": "dropout", "p": 0.2}]},
      "augment": {"crop_padding": 1, "horizontal_flip": true},
      "train": {"epochs": 5, "batch_size": 16, "optimizer": {"type": "adam", "lr": 0.003},
                "lr_schedule": {"type": "cosine", "warmup_steps": 3}}})");
  };
  write_config(5);
  expect_binary_resumes_exactly(dir, config, 5);
  // A checkpoint of another configuration is refused by name, not resumed.
  write_config(6);
  const test::ProgramResult other =
      test::run_program({std::string(TESSERA_BINARY_DIR) + "/tessera", "train", config, "--resume",
                         dir + "/killed", "--quiet"});
  EXPECT_EQ(other.status, 1) << other.err;
  EXPECT_NE(other.err.find("another configuration"), std::string::npos) << other.err;
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

TEST(ResumeTasks, AudioResumesAKilledBinaryRun) {
  // SpecAugment draws from the generator the checkpoint carries.
  const std::string missing = test::missing_dataset("fsdd", {"recordings/0_george_0.wav"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string dir = temp_dir("audio_cli");
  const std::string config = dir + "/fsdd.json";
  write_file_atomic(config, R"({"task": "audio", "name": "fsdd-cli", "seed": 4, "device": "cpu",
    "data": {"dataset": "fsdd", "test_max_index": 1, "max_index": 9,
             "speakers": ["george", "jackson", "theo"], "validation_fraction": 0.15},
    "features": {"n_mels": 16, "frames": 32},
    "augment": {"time_masks": 2, "time_mask_width": 4, "freq_masks": 1, "freq_mask_width": 3},
    "model": {"layers": [
      {"type": "conv", "filters": 8, "kernel": 3, "padding": 1, "bias": false},
      {"type": "batchnorm"}, {"type": "relu"}, {"type": "maxpool", "kernel": 2},
      {"type": "flatten"}, {"type": "dropout", "p": 0.2}]},
    "train": {"epochs": 4, "batch_size": 16, "optimizer": {"type": "adam", "lr": 0.003}}})");
  expect_binary_resumes_exactly(dir, config, 4);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

TEST(ResumeTasks, TextgenResumesBitIdenticalAfterKill) {
  const std::string missing = test::missing_dataset("tinyshakespeare", {"input.txt"});
  if (!missing.empty()) TESSERA_SKIP_OR_FAIL(missing);
  const std::string dir = temp_dir("textgen");
  const std::string config = dir + "/slice.json";
  auto write_config = [&](int epochs) {
    write_file_atomic(config, R"({"task": "textgen", "name": "slice", "seed": 3, "device": "cpu",
      "data": {"dataset": "tinyshakespeare", "file": "input.txt", "max_chars": 12000},
      "model": {"embedding_dim": 8, "hidden_size": 24, "num_layers": 2, "dropout": 0.1},
      "train": {"epochs": )" + std::to_string(epochs) +
                                  R"(, "batch_size": 8, "seq_len": 24,
                "clip_norm": 1.0, "log_every": 1000, "optimizer": {"type": "adam", "lr": 0.01},
                "lr_schedule": {"type": "cosine", "warmup_steps": 5, "min_lr": 0.001}}})");
  };
  write_config(3);
  auto options = [&](const std::string& run) {
    textgen::TrainOptions o;
    o.quiet = true;
    o.resume = run;
    return o;
  };
  const textgen::Result whole = textgen::train(config, options(dir + "/whole"));

  train_killed_after(2, [&](std::function<void(int64_t)> hook) {
    textgen::TrainOptions o = options(dir + "/killed");
    o.after_checkpoint = std::move(hook);
    textgen::train(config, o);
  });
  EXPECT_EQ(lines_of(dir + "/killed/metrics.jsonl").size(), 2u);
  const textgen::Result resumed = textgen::train(config, options(dir + "/killed"));
  EXPECT_EQ(json_int(resumed.json, "resumed_from_epoch"), 2);

  EXPECT_EQ(without_timings(resumed.json), without_timings(whole.json));
  EXPECT_EQ(lines_of(dir + "/killed/metrics.jsonl"), lines_of(dir + "/whole/metrics.jsonl"));
  expect_same_archive(dir + "/killed/model.tsm", dir + "/whole/model.tsm");

  // A checkpoint of another configuration (here: another epoch count, hence another schedule)
  // is refused with an error naming it, not silently continued.
  write_config(4);
  try {
    textgen::train(config, options(dir + "/killed"));
    FAIL() << "resumed a checkpoint of another configuration";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint.tsc"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tessera
