// Mid-epoch checkpoints of a behaviour run, set from the config (train.checkpoint_every_steps),
// end to end through the binary: data from `tessera make-synthetic --layout criteo`, prepared with
// `tessera prep`, trained with data.read "stream" and "memory". A run killed with SIGKILL as soon
// as its first checkpoint appears holds a checkpoint taken inside an epoch (read back from the
// file), and `--resume` continues from that batch (the Trainer says so) to the uninterrupted
// run's result.json metrics, metrics.jsonl and model bytes exactly. A resume may change the
// interval: it is not part of the resume check.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/archive.h"
#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "pipelines/behaviour/behaviour_config.h"
#include "tests/support/run_program.h"

namespace tessera {
namespace {

const std::string kBinary = std::string(TESSERA_BINARY_DIR) + "/tessera";
constexpr int kEpochs = 2;
constexpr int kEvery = 20;  // optimizer steps between checkpoints

rapidjson::Document parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  EXPECT_TRUE(!d.HasParseError() && d.IsObject()) << s;
  return d;
}

std::string last_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

// Sets `key` of the object `obj` (replacing it when present).
template <typename T>
void set(rapidjson::Value& obj, const char* key, T value, rapidjson::Document& d) {
  obj.RemoveMember(key);
  obj.AddMember(rapidjson::Value(key, d.GetAllocator()), rapidjson::Value(value), d.GetAllocator());
}

// Every figure result.json gives but the timings and paths, as exact text.
std::string result_fingerprint(const rapidjson::Document& d) {
  std::ostringstream s;
  s.precision(17);
  s << "epochs " << d["epochs"].GetInt64() << " steps " << d["steps"].GetInt64() << " best "
    << d["best_epoch"].GetInt64();
  for (const char* part : {"validation", "test"}) {
    EXPECT_TRUE(d.HasMember(part) && d[part].IsObject()) << part;
    for (const char* m : {"auc", "logloss", "accuracy"})
      s << " " << part << "." << m << " " << d[part][m].GetDouble();
  }
  return s.str();
}

// The lines of metrics.jsonl, parsed.
std::vector<rapidjson::Document> metrics_lines(const std::string& run_dir) {
  std::vector<rapidjson::Document> out;
  std::istringstream lines(read_file(run_dir + "/metrics.jsonl"));
  std::string line;
  while (std::getline(lines, line)) out.push_back(parse(line));
  return out;
}

// Every logged figure of metrics.jsonl but the timings and the training loss, epoch by epoch.
std::string metrics_fingerprint(const std::string& run_dir) {
  std::ostringstream s;
  s.precision(17);
  for (const rapidjson::Document& d : metrics_lines(run_dir)) {
    const auto& v = d["validation"];
    s << "epoch " << d["epoch"].GetInt64() << " step " << d["step"].GetInt64() << " lr "
      << d["lr"].GetDouble() << " auc " << v["auc"].GetDouble() << " logloss "
      << v["logloss"].GetDouble() << " accuracy " << v["accuracy"].GetDouble() << "\n";
  }
  return s.str();
}

std::vector<double> train_losses(const std::string& run_dir) {
  std::vector<double> out;
  for (const rapidjson::Document& d : metrics_lines(run_dir))
    out.push_back(d["train_loss"].GetDouble());
  return out;
}

// Every tensor of two archives: same names, dtypes, shapes and bytes.
void expect_same_tensors(const std::string& a_path, const std::string& b_path) {
  const Archive a = load_archive(a_path), b = load_archive(b_path);
  ASSERT_EQ(a.tensors.size(), b.tensors.size()) << a_path << " vs " << b_path;
  for (const auto& [name, ta] : a.tensors) {
    auto it = b.tensors.find(name);
    ASSERT_NE(it, b.tensors.end()) << name << " missing from " << b_path;
    ASSERT_EQ(ta.dtype(), it->second.dtype()) << name;
    ASSERT_EQ(ta.shape(), it->second.shape()) << name;
    EXPECT_EQ(std::memcmp(ta.raw(), it->second.raw(), ta.bytes()), 0) << name << " differs";
  }
}

std::string config_with_train(const std::string& train_body) {
  return R"({"task": "behaviour",
 "data": {"train": "t.csv", "columns": [{"name": "x", "type": "numeric"}, {"name": "y", "type": "label"}]},
 "train": )" +
         train_body + "}";
}

// The key: an integer >= 0, default 0, written only when set, read back as written.
TEST(CheckpointEveryStepsKey, ParsedValidatedAndWrittenOnlyWhenSet) {
  const BehaviourConfig plain = parse_behaviour_config(config_with_train("{}"), "a.json");
  EXPECT_EQ(plain.train.checkpoint_every_steps, 0);
  EXPECT_EQ(to_json(plain).find("checkpoint_every_steps"), std::string::npos) << to_json(plain);
  const BehaviourConfig set =
      parse_behaviour_config(config_with_train(R"({"checkpoint_every_steps": 5000})"), "b.json");
  EXPECT_EQ(set.train.checkpoint_every_steps, 5000);
  EXPECT_NE(to_json(set).find("\"checkpoint_every_steps\": 5000"), std::string::npos)
      << to_json(set);
  EXPECT_EQ(parse_behaviour_config(to_json(set), "c.json").train.checkpoint_every_steps, 5000);
  EXPECT_NE(set, plain);
  try {
    parse_behaviour_config(config_with_train(R"({"checkpoint_every_steps": -1})"), "d.json");
    ADD_FAILURE() << "a negative interval was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("checkpoint_every_steps"), std::string::npos) << e.what();
  }
}

class MidEpochResume : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/tessera_mid_epoch_resume." + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    make_directories(dir_);
    ASSERT_EQ(
        run({"make-synthetic", dir_ + "/syn", "--layout", "criteo", "--rows", "12000"}).status, 0);
    prepared_ = dir_ + "/prepared";
    const test::ProgramResult prep =
        run({"prep", dir_ + "/syn/config.json", "--out", prepared_, "--shard-rows", "2000"});
    ASSERT_EQ(prep.status, 0) << prep.err;
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  static test::ProgramResult run(std::vector<std::string> args) {
    args.insert(args.begin(), kBinary);
    return test::run_program(args);
  }

  // make-synthetic's config on the prepared directory, read as `read`, checkpointing every
  // `every` steps.
  std::string config(const std::string& read, int every) {
    rapidjson::Document c = parse(read_file(dir_ + "/syn/config.json"));
    set(c["data"], "prepared", rapidjson::StringRef(prepared_.c_str()), c);
    set(c["data"], "read", rapidjson::StringRef(read.c_str()), c);
    if (!c.HasMember("train"))
      c.AddMember("train", rapidjson::Value(rapidjson::kObjectType), c.GetAllocator());
    set(c["train"], "epochs", kEpochs, c);
    set(c["train"], "batch_size", 32, c);
    set(c["train"], "checkpoint_every_steps", every, c);
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    c.Accept(w);
    const std::string path = dir_ + "/config-" + read + "-" + std::to_string(every) + ".json";
    write_file_atomic(path, buf.GetString());
    return path;
  }

  static test::ProgramResult train(const std::string& cfg, const std::string& run_dir) {
    // Not --quiet: stderr has the Trainer's resume line.
    return run({"train", cfg, "--resume", run_dir, "--device", "cpu", "--json"});
  }

  // Kills a run of `cfg` in `run_dir` as soon as its first checkpoint is written and returns
  // the checkpoint's batches_done (0: taken at an epoch's end), or -1 when the run ended before
  // the kill (it finished: a loaded machine stalled this process that long). Anything else
  // fails the test.
  int64_t killed_at_first_checkpoint(const std::string& cfg, const std::string& run_dir) {
    const std::string ck = run_dir + "/checkpoint.tsc";
    const test::Killed k = test::run_killed_when(
        {kBinary, "train", cfg, "--resume", run_dir, "--device", "cpu", "--quiet"},
        [&] { return std::filesystem::exists(ck); });
    if (k == test::Killed::EndedFirst) {
      EXPECT_TRUE(std::filesystem::exists(run_dir + "/model.tsm"))
          << "the run ended before the kill without finishing";
      return -1;
    }
    EXPECT_EQ(k, test::Killed::AtReady) << "2: timed out, 3: did not start";
    if (k != test::Killed::AtReady) return -2;
    EXPECT_FALSE(std::filesystem::exists(run_dir + "/model.tsm")) << "it finished before the kill";
    const rapidjson::Document meta = parse(load_archive(ck).meta_json);
    EXPECT_LT(meta["epochs_done"].GetInt64(), kEpochs);
    return meta.HasMember("batches_done") ? meta["batches_done"].GetInt64() : 0;
  }

  // A run killed inside an epoch. A kill that came too late (after an epoch-end checkpoint
  // overwrote the first, or after the run ended) is tried again in a fresh directory; three such
  // tries fail the test, never pass it.
  std::string killed_mid_epoch(const std::string& cfg, const std::string& name,
                               int64_t& batches_done) {
    std::string outcomes;
    for (int attempt = 0; attempt < 3; ++attempt) {
      const std::string run_dir = dir_ + "/" + name + "-" + std::to_string(attempt);
      batches_done = killed_at_first_checkpoint(cfg, run_dir);
      if (batches_done < -1 || ::testing::Test::HasFailure()) return "";
      if (batches_done > 0) return run_dir;
      outcomes += batches_done < 0 ? " ended before the kill;" : " killed at an epoch's end;";
    }
    ADD_FAILURE() << "no kill landed inside an epoch in three tries:" << outcomes;
    return "";
  }

  // Trains `cfg` whole, then killed and resumed with `resume_cfg`, and compares.
  void check(const std::string& cfg, const std::string& resume_cfg, const std::string& name) {
    const std::string whole = dir_ + "/" + name + "-whole";
    const test::ProgramResult ref = train(cfg, whole);
    ASSERT_EQ(ref.status, 0) << ref.err;
    const rapidjson::Document w = parse(last_line(ref.out));
    ASSERT_EQ(w["epochs"].GetInt64(), kEpochs);
    // Several checkpoints an epoch: the first is mid-epoch.
    ASSERT_GT(w["steps"].GetInt64(), 4 * kEvery * kEpochs) << ref.out;

    int64_t batches_done = 0;
    const std::string killed = killed_mid_epoch(cfg, name + "-killed", batches_done);
    ASSERT_FALSE(killed.empty());
    const test::ProgramResult resumed = train(resume_cfg, killed);
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    // The Trainer resumed inside the epoch, at the checkpoint's batch.
    EXPECT_NE(resumed.err.find(" and " + std::to_string(batches_done) + " batches (step"),
              std::string::npos)
        << resumed.err;
    const rapidjson::Document r = parse(last_line(resumed.out));
    EXPECT_EQ(result_fingerprint(r), result_fingerprint(w));
    EXPECT_EQ(metrics_fingerprint(killed), metrics_fingerprint(whole));
    const std::string m = metrics_fingerprint(whole);
    EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), kEpochs) << m;
    const std::vector<double> loss = train_losses(killed), ref_loss = train_losses(whole);
    ASSERT_EQ(loss.size(), ref_loss.size());
    if (cfg == resume_cfg) {
      EXPECT_EQ(loss, ref_loss);
      EXPECT_EQ(read_file(killed + "/model.tsm"), read_file(whole + "/model.tsm"));
    } else {
      // The epoch's loss is summed in float groups ended by each read of the device loss
      // accumulator, and one is read before every checkpoint: another interval rounds the sum
      // differently (a few float ulps). The model file records the config: its tensors are
      // compared.
      for (size_t i = 0; i < loss.size(); ++i)
        EXPECT_NEAR(loss[i], ref_loss[i], 1e-6 * std::abs(ref_loss[i])) << "epoch " << i + 1;
      expect_same_tensors(killed + "/model.tsm", whole + "/model.tsm");
    }
  }

  std::string dir_, prepared_;
};

TEST_F(MidEpochResume, StreamedRunKilledInsideAnEpochResumesExactly) {
  const std::string cfg = config("stream", kEvery);
  check(cfg, cfg, "stream");
}

TEST_F(MidEpochResume, InMemoryRunKilledInsideAnEpochResumesExactly) {
  const std::string cfg = config("memory", kEvery);
  check(cfg, cfg, "memory");
}

// The interval is not part of the resume check: a run killed with one resumes with another (or
// none) and still ends with the same metrics.
TEST_F(MidEpochResume, AResumeMayChangeTheInterval) {
  check(config("memory", kEvery), config("memory", 0), "change");
}

}  // namespace
}  // namespace tessera
