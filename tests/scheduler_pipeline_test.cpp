// The host scheduler with stand-in stage kinds: spec validation, dependency order, content-hash
// caching (config, data and code version changes), failure handling, concurrent runs, and
// unwritable directories.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "host/core/atomic_file.h"
#include "host/core/build_id.h"
#include "host/core/error.h"
#include "host/data/sha256.h"
#include "host/scheduler/pipeline_spec.h"
#include "host/scheduler/scheduler.h"

namespace tessera::scheduler {
namespace {

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/sched_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  make_directories(d);
  return d;
}

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

std::string config_error(const std::string& json) {
  try {
    parse_pipeline_spec(json, "p.json", ".");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    return e.what();
  }
  ADD_FAILURE() << "no error for " << json;
  return "";
}

TEST(PipelineSpec, OrdersStagesAfterTheirInputsKeepingDeclaredOrder) {
  PipelineSpec s = parse_pipeline_spec(R"({"name": "p", "task": "t", "stages": [
      {"name": "eval", "kind": "evaluate", "inputs": ["train"]},
      {"name": "score", "kind": "batch-score", "inputs": ["train", "prep"]},
      {"name": "train", "kind": "train", "inputs": ["prep"]},
      {"name": "prep", "kind": "prep"},
      {"name": "other", "kind": "prep"}]})",
                                       "p.json", "/d");
  std::vector<std::string> order;
  for (size_t i : execution_order(s)) order.push_back(s.stages[i].name);
  EXPECT_EQ(order, (std::vector<std::string>{"prep", "train", "eval", "score", "other"}));
}

// A long chain declared backwards (each stage reads the next one down) runs last-declared first.
// The order was found by rescanning every stage for each one taken: quadratic, over two minutes
// for 20,000 stages under the fuzz build; Kahn's algorithm with a heap keeps the declared order.
TEST(PipelineSpec, LongChainDeclaredBackwardsOrdersInLinearishTime) {
  constexpr int kStages = 20000;
  PipelineSpec s;
  s.path = "chain.json";
  for (int i = 0; i < kStages; ++i) {
    StageSpec st;
    st.name = "s" + std::to_string(i);
    if (i + 1 < kStages) st.inputs = {"s" + std::to_string(i + 1), "s" + std::to_string(i + 1)};
    s.stages.push_back(std::move(st));
  }
  const std::vector<size_t> order = execution_order(s);
  ASSERT_EQ(order.size(), static_cast<size_t>(kStages));
  for (int k = 0; k < kStages; ++k) ASSERT_EQ(order[k], static_cast<size_t>(kStages - 1 - k)) << k;
  // A cycle still names every stage that cannot run.
  s.stages.back().inputs = {"s0"};
  try {
    execution_order(s);
    FAIL() << "a cycle was ordered";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("chain.json: the stage inputs form a cycle among 's0', "
                                         "'s1'"),
              std::string::npos);
  }
}

TEST(PipelineSpec, ConfigIsCanonicalAndFilesResolveAgainstTheSpec) {
  PipelineSpec a = parse_pipeline_spec(
      R"({"name": "p", "task": "t", "stages": [{"name": "s", "kind": "prep", "files": ["x.csv"],
          "config": {"b": 1, "a": {"d": [1, 2], "c": "x"}}}]})",
      "p.json", "/data");
  EXPECT_EQ(a.stages[0].config_json, R"({"a":{"c":"x","d":[1,2]},"b":1})");
  EXPECT_EQ(a.stages[0].files, std::vector<std::string>{"/data/x.csv"});
}

TEST(PipelineSpec, ErrorsNameTheFileTheFieldAndTheChoices) {
  std::string e =
      config_error(R"({"name": "p", "task": "t", "stages": [{"name": "s", "kind": "trian"}]})");
  EXPECT_NE(e.find("p.json"), std::string::npos) << e;
  EXPECT_NE(e.find("$.stages[0].kind"), std::string::npos) << e;
  EXPECT_NE(e.find("batch-score"), std::string::npos) << e;  // lists the kinds
  e = config_error(
      R"({"name": "p", "task": "t", "stages": [{"name": "s", "kind": "train", "inputs": ["nope"]}]})");
  EXPECT_NE(e.find("unknown stage 'nope'"), std::string::npos) << e;
  e = config_error(
      R"({"name": "p", "task": "t", "stages": [{"name": "s", "kind": "train", "inputs": ["s"]}]})");
  EXPECT_NE(e.find("lists itself"), std::string::npos) << e;
  e = config_error(
      R"({"name": "p", "task": "t", "stages": [{"name": "s", "kind": "prep"}, {"name": "s", "kind": "prep"}]})");
  EXPECT_NE(e.find("duplicate stage name 's'"), std::string::npos) << e;
  e = config_error(R"({"name": "p", "task": "t", "stages": [
      {"name": "a", "kind": "train", "inputs": ["b"]}, {"name": "b", "kind": "train", "inputs": ["a"]}]})");
  EXPECT_NE(e.find("cycle"), std::string::npos) << e;
  e = config_error(
      R"({"name": "p", "task": "t", "stages": [{"name": "s", "kind": "prep", "confg": {}}]})");
  EXPECT_NE(e.find("confg"), std::string::npos) << e;
  e = config_error(R"({"task": "t", "stages": []})");
  EXPECT_NE(e.find("name"), std::string::npos) << e;
}

// Stand-in stage kinds: each writes out.txt = its config + its inputs' out.txt, and counts runs.
struct Fake {
  std::mutex mu;
  std::map<std::string, int> runs;
  std::string fail_stage;              // this stage throws
  std::chrono::milliseconds delay{0};  // per stage, to make concurrent runs overlap

  StageRegistry registry() {
    StageRegistry r;
    for (StageKind k : {StageKind::Prep, StageKind::Train, StageKind::Evaluate}) {
      StageRunner runner;
      runner.run = [this](const StageContext& ctx) {
        std::this_thread::sleep_for(delay);
        {
          std::lock_guard<std::mutex> lock(mu);
          ++runs[ctx.stage->name];
        }
        if (ctx.stage->name == fail_stage) TESSERA_THROW(Data, "planted failure");
        std::string text = ctx.stage->config_json;
        for (const auto& [name, out] : ctx.inputs) text += "|" + read_file(out.file("out"));
        for (const std::string& f : ctx.stage->files) text += "|" + read_file(f);
        write_file_atomic(ctx.work_dir + "/out.txt", text);
        StageResult res;
        res.files["out"] = "out.txt";
        res.result_json = "{\"len\":" + std::to_string(text.size()) + "}";
        return res;
      };
      r.add("fake", k, runner);
    }
    return r;
  }
};

std::string pipeline_json(const std::string& train_config, const std::string& data_file) {
  return R"({"name": "fp", "task": "fake", "stages": [
      {"name": "prep", "kind": "prep", "files": [")" +
         data_file + R"("], "config": {"rows": 10}},
      {"name": "train", "kind": "train", "inputs": ["prep"], "config": )" +
         train_config + R"(},
      {"name": "eval", "kind": "evaluate", "inputs": ["train", "prep"]}]})";
}

struct Workspace {
  std::string dir, spec_path, data;
  RunOptions options;
  PipelineSpec load() { return load_pipeline_spec(spec_path); }
  void write_spec(const std::string& train_config) {
    write_file_atomic(spec_path, pipeline_json(train_config, data));
  }
};

Workspace make_setup(const std::string& name) {
  Workspace s;
  s.dir = temp_dir(name);
  s.spec_path = s.dir + "/pipeline.json";
  s.data = s.dir + "/data.csv";
  write_file_atomic(s.data, "1,2,3\n");
  s.write_spec(R"({"epochs": 2})");
  s.options.runs_dir = s.dir + "/runs";
  s.options.quiet = true;
  return s;
}

std::map<std::string, bool> ran(const PipelineRun& r) {
  std::map<std::string, bool> m;
  for (const StageRecord& s : r.stages) m[s.plan.name] = s.ran;
  return m;
}

TEST(Scheduler, RunsInOrderThenTakesEverythingFromTheCache) {
  Workspace s = make_setup("cache");
  Fake fake;
  StageRegistry reg = fake.registry();
  PipelineRun first = run_pipeline(s.load(), reg, s.options);
  ASSERT_EQ(first.stages.size(), 3u);
  EXPECT_EQ(first.stages[0].plan.name, "prep");
  EXPECT_EQ(first.stages[2].plan.name, "eval");
  EXPECT_EQ(ran(first),
            (std::map<std::string, bool>{{"prep", true}, {"train", true}, {"eval", true}}));
  // eval saw train's output, which saw prep's, which saw the data file.
  const std::string out = read_file(first.stages[2].outputs.file("out"));
  EXPECT_NE(out.find("1,2,3"), std::string::npos) << out;
  EXPECT_NE(out.find("\"epochs\":2"), std::string::npos) << out;

  for (const PlannedStage& p : plan_pipeline(s.load(), reg, s.options))
    EXPECT_EQ(p.state, StageState::Cached) << p.name;
  PipelineRun second = run_pipeline(s.load(), reg, s.options);
  EXPECT_EQ(ran(second),
            (std::map<std::string, bool>{{"prep", false}, {"train", false}, {"eval", false}}));
  EXPECT_EQ(fake.runs["train"], 1);
  EXPECT_NE(first.run_dir, second.run_dir);  // every run has its own directory
  EXPECT_TRUE(exists(second.run_dir + "/result.json"));
  EXPECT_TRUE(exists(second.run_dir + "/stages.jsonl"));
  EXPECT_TRUE(exists(second.run_dir + "/environment.json"));
}

TEST(Scheduler, ConfigChangeRerunsTheStageAndWhatFollowsOnly) {
  Workspace s = make_setup("config");
  Fake fake;
  StageRegistry reg = fake.registry();
  run_pipeline(s.load(), reg, s.options);
  // Same config written differently: same keys.
  s.write_spec(R"({ "epochs" : 2 })");
  EXPECT_EQ(ran(run_pipeline(s.load(), reg, s.options)),
            (std::map<std::string, bool>{{"prep", false}, {"train", false}, {"eval", false}}));
  s.write_spec(R"({"epochs": 3})");
  EXPECT_EQ(ran(run_pipeline(s.load(), reg, s.options)),
            (std::map<std::string, bool>{{"prep", false}, {"train", true}, {"eval", true}}));
}

TEST(Scheduler, DataChangeRerunsEverythingDownstreamEvenAtTheSameSizeAndMtime) {
  Workspace s = make_setup("data");
  Fake fake;
  StageRegistry reg = fake.registry();
  std::vector<PlannedStage> before = plan_pipeline(s.load(), reg, s.options);
  run_pipeline(s.load(), reg, s.options);
  struct stat st;
  ASSERT_EQ(::stat(s.data.c_str(), &st), 0);
  write_file_atomic(s.data, "1,2,4\n");  // same size
  const timespec times[2] = {st.st_atim, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, s.data.c_str(), times, 0), 0);  // and the old mtime
  std::vector<PlannedStage> after = plan_pipeline(s.load(), reg, s.options);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_NE(before[i].key, after[i].key) << after[i].name;
    EXPECT_EQ(after[i].state, StageState::Pending) << after[i].name;
  }
  EXPECT_EQ(ran(run_pipeline(s.load(), reg, s.options)),
            (std::map<std::string, bool>{{"prep", true}, {"train", true}, {"eval", true}}));
}

TEST(Scheduler, CodeChangeChangesEveryKey) {
  Workspace s = make_setup("code");
  Fake fake;
  RunOptions a = s.options, b = s.options;
  a.code_id = "code-1";
  b.code_id = "code-2";
  std::vector<PlannedStage> pa = plan_pipeline(s.load(), fake.registry(), a);
  std::vector<PlannedStage> pb = plan_pipeline(s.load(), fake.registry(), b);
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_NE(pa[i].key, pb[i].key) << pa[i].name;
  // Deterministic: the same inputs give the same key.
  EXPECT_EQ(pa[0].key, plan_pipeline(s.load(), fake.registry(), a)[0].key);
  // By default the code is the build's source id.
  RunOptions d = s.options, built = s.options;
  built.code_id = build_source_id();
  EXPECT_EQ(plan_pipeline(s.load(), fake.registry(), d)[0].key,
            plan_pipeline(s.load(), fake.registry(), built)[0].key);
}

// The build's source id is the SHA-256 over "<path> <sha256 of the file>\n" for every source file
// the build listed, recomputed here from the files on disk (which the build compiled).
TEST(Scheduler, BuildSourceIdIsTheHashOfTheSources) {
  const std::string list =
      read_file(std::string(TESSERA_BINARY_DIR) + "/generated/source_list.txt");
  std::string all;
  size_t files = 0;
  for (size_t at = 0; at < list.size();) {
    const size_t end = list.find('\n', at);
    const std::string f = list.substr(at, end - at);
    at = end == std::string::npos ? list.size() : end + 1;
    if (f.empty()) continue;
    all += f + " " + sha256_file(std::string(TESSERA_SOURCE_DIR) + "/" + f) + "\n";
    ++files;
  }
  EXPECT_GT(files, 100u);
  EXPECT_NE(list.find("host/scheduler/scheduler.cpp"), std::string::npos);
  EXPECT_NE(list.find("pipelines/behaviour/behaviour.cpp"), std::string::npos);
  EXPECT_EQ(sha256_hex(all), build_source_id());
}

// A large input edited in place, its size and mtime put back: ctime still moves, so the memoised
// content hash is not trusted and the stage reruns. (Files over 1 MiB used to be keyed by size and
// mtime alone.)
TEST(Scheduler, LargeInputEditedInPlaceWithSizeAndMtimeRestoredRerunsTheStage) {
  Workspace s = make_setup("inplace");
  write_file_atomic(s.data, std::string(3 << 20, 'a'));
  const timespec old_times[2] = {{1600000000, 0}, {1600000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, s.data.c_str(), old_times, 0), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // ctime settles: memo written
  Fake fake;
  StageRegistry reg = fake.registry();
  run_pipeline(s.load(), reg, s.options);
  const std::vector<PlannedStage> before = plan_pipeline(s.load(), reg, s.options);
  EXPECT_EQ(before[0].state, StageState::Cached);
  EXPECT_TRUE(exists(s.options.runs_dir + "/cache/fingerprints"));

  const int fd = ::open(s.data.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "b", 1, 1 << 20), 1);
  ::close(fd);
  ASSERT_EQ(::utimensat(AT_FDCWD, s.data.c_str(), old_times, 0), 0);
  struct stat st;
  ASSERT_EQ(::stat(s.data.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 3 << 20);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);

  const std::vector<PlannedStage> after = plan_pipeline(s.load(), reg, s.options);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_NE(before[i].key, after[i].key) << after[i].name;
    EXPECT_EQ(after[i].state, StageState::Pending) << after[i].name;
  }
}

// An unchanged file is not read again: the memo (keyed by device, inode, size, mtime and ctime)
// answers. Shown by planting a different hash in the memo, which the fingerprint then reports.
TEST(Scheduler, UnchangedInputsAreFingerprintedFromTheMemo) {
  const std::string dir = temp_dir("memo");
  const std::string f = dir + "/big.bin", memo = dir + "/memo";
  write_file_atomic(f, std::string(1 << 20, 'x'));
  const timespec old_times[2] = {{1600000000, 0}, {1600000000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), old_times, 0), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  const FileFingerprint read = file_fingerprint(f, memo);
  EXPECT_FALSE(exists(memo));  // fingerprinting writes nothing ...
  remember_fingerprint(read);  // ... until it is remembered (run_pipeline, after planning)
  const std::string first = read.text;
  struct stat st;
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  const std::string entry =
      memo + "/" + std::to_string(st.st_dev) + "-" + std::to_string(st.st_ino);
  const std::string text = read_file(entry);
  const std::string planted = "0123456789abcdef0123456789abcdef";
  write_file_atomic(entry, text.substr(0, text.find('\n') + 1) + planted + "\n");
  EXPECT_EQ(file_fingerprint(f, memo).text, f + " size=1048576 content=" + planted);
  EXPECT_NE(first.find("content="), std::string::npos) << first;
  EXPECT_EQ(file_fingerprint(f, "").text, first);  // no memo: read, same hash as the first time
}

TEST(Scheduler, FailedStageStopsThePipelineAndKeepsEarlierOutputs) {
  Workspace s = make_setup("fail");
  Fake fake;
  fake.fail_stage = "train";
  StageRegistry reg = fake.registry();
  try {
    run_pipeline(s.load(), reg, s.options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("stage 'train'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("planted failure"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fake.runs["eval"], 0);
  std::vector<PlannedStage> plan = plan_pipeline(s.load(), reg, s.options);
  EXPECT_EQ(plan[0].state, StageState::Cached);
  EXPECT_TRUE(exists(plan[0].dir + "/out.txt"));
  EXPECT_EQ(plan[1].state, StageState::Partial);  // started, never marked complete
  EXPECT_FALSE(exists(plan[1].dir + "/manifest.json"));
  fake.fail_stage.clear();
  EXPECT_EQ(ran(run_pipeline(s.load(), reg, s.options)),
            (std::map<std::string, bool>{{"prep", false}, {"train", true}, {"eval", true}}));
}

TEST(Scheduler, ConcurrentRunsGetTheirOwnDirectoriesAndRunEachStageOnce) {
  Workspace s = make_setup("parallel");
  Fake fake;
  fake.delay = std::chrono::milliseconds(100);
  StageRegistry reg = fake.registry();
  const PipelineSpec spec = s.load();
  std::vector<PipelineRun> runs(3);
  std::vector<std::string> errors(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i)
    threads.emplace_back([&, i] {
      try {
        runs[i] = run_pipeline(spec, reg, s.options);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(errors[i], "") << i;
  EXPECT_NE(runs[0].run_dir, runs[1].run_dir);
  EXPECT_NE(runs[1].run_dir, runs[2].run_dir);
  EXPECT_NE(runs[0].run_dir, runs[2].run_dir);
  for (const char* st : {"prep", "train", "eval"}) EXPECT_EQ(fake.runs[st], 1) << st;
  for (const PipelineRun& r : runs)
    EXPECT_EQ(read_file(r.stages[2].outputs.file("out")),
              read_file(runs[0].stages[2].outputs.file("out")));
}

TEST(Scheduler, UnwritableRunsDirectoryIsAClearErrorBeforeAnyStageRuns) {
  Workspace s = make_setup("unwritable");
  Fake fake;
  StageRegistry reg = fake.registry();
  const std::string blocker = s.dir + "/not-a-dir";
  write_file_atomic(blocker, "x");
  s.options.runs_dir = blocker + "/runs";
  try {
    run_pipeline(s.load(), reg, s.options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find(blocker), std::string::npos) << e.what();
  }
  EXPECT_EQ(fake.runs.size(), 0u);
}

TEST(Scheduler, UnknownStageKindForTheTaskListsWhatItHas) {
  Workspace s = make_setup("kinds");
  write_file_atomic(
      s.spec_path,
      R"({"name": "fp", "task": "fake", "stages": [{"name": "x", "kind": "recommend"}]})");
  Fake fake;
  try {
    plan_pipeline(s.load(), fake.registry(), s.options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Config);
    EXPECT_NE(std::string(e.what()).find("recommend"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("prep, train, evaluate"), std::string::npos) << e.what();
  }
}

TEST(Scheduler, MissingInputFileIsAnIoErrorNamingIt) {
  Workspace s = make_setup("missing");
  Fake fake;
  ::unlink(s.data.c_str());
  try {
    plan_pipeline(s.load(), fake.registry(), s.options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find(s.data), std::string::npos) << e.what();
  }
}

TEST(PipelineSpec, TheShippedBehaviourPipelineParsesInTheIssueOrder) {
  const PipelineSpec s =
      load_pipeline_spec(std::string(TESSERA_SOURCE_DIR) + "/pipelines/behaviour/pipeline.json");
  EXPECT_EQ(s.task, "behaviour");
  std::vector<std::string> kinds;
  for (size_t i : execution_order(s)) kinds.push_back(stage_kind_name(s.stages[i].kind));
  EXPECT_EQ(kinds, (std::vector<std::string>{"prep", "train", "evaluate", "batch-score"}));
}

}  // namespace
}  // namespace tessera::scheduler
