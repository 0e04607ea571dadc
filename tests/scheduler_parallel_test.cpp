// The scheduler's worker pool and its resilience: independent stages run at the same time (their
// recorded intervals overlap), dependent ones never do, the pool is bounded; two processes
// running one pipeline at once get their own run directories and run each stage once; a failed
// stage stops the pipeline and keeps what finished; a full disk or an unwritable runs directory
// is a clear error that leaves nothing half-written.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "host/core/atomic_file.h"
#include "host/core/error.h"
#include "host/core/atomic_file.h"
#include "host/scheduler/commands.h"
#include "host/scheduler/scheduler.h"

namespace tessera::scheduler {
namespace {

std::string temp_dir(const std::string& name) {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  const std::string d = base + "/schedpar_" + name + "." + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  make_directories(d);
  return d;
}

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// Every file under `dir` (recursively), relative to it.
void list_files(const std::string& dir, const std::string& rel, std::vector<std::string>* out) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    const std::string path = dir + "/" + n;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      list_files(path, rel + n + "/", out);
    else
      out->push_back(rel + n);
  }
  ::closedir(d);
}

// Stand-in stages: sleep, count how many run at once, write out.txt (its name + its inputs'),
// and append "<stage>\n" to a log shared by every process (O_APPEND), so runs are counted
// across processes.
struct Fake {
  std::chrono::milliseconds delay{150};
  std::string fail_stage;
  int64_t output_bytes = 0;  // out.txt's size (a large one exercises a full disk)
  std::string log;           // shared run log; "" = none
  std::atomic<int> active{0}, max_active{0};

  StageRegistry registry() {
    StageRegistry r;
    for (StageKind k :
         {StageKind::Prep, StageKind::Train, StageKind::Evaluate, StageKind::BatchScore}) {
      StageRunner runner;
      runner.run = [this](const StageContext& ctx) {
        // The failing stage fails at once, while its siblings are still sleeping: so no sibling
        // can finish and free a worker before the failure is seen, however loaded the machine.
        if (ctx.stage->name == fail_stage) {
          if (!log.empty()) append_line(log, ctx.stage->name);
          TESSERA_THROW(Data, "planted failure");
        }
        const int now = ++active;
        int seen = max_active.load();
        while (now > seen && !max_active.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(delay);
        --active;
        if (!log.empty()) append_line(log, ctx.stage->name);
        std::string text = ctx.stage->name;
        for (const auto& [name, out] : ctx.inputs) text += "|" + read_file(out.file("out"));
        if (static_cast<int64_t>(text.size()) < output_bytes)
          text.resize(static_cast<size_t>(output_bytes), '.');
        write_file_atomic(ctx.work_dir + "/out.txt", text);
        StageResult res;
        res.files["out"] = "out.txt";
        return res;
      };
      r.add("fake", k, runner);
    }
    return r;
  }
};

// prep -> train -> {eval_a, eval_b, score}: three stages independent of each other.
const char* kFanOut = R"({"name": "fan", "task": "fake", "stages": [
    {"name": "prep", "kind": "prep"},
    {"name": "train", "kind": "train", "inputs": ["prep"]},
    {"name": "eval_a", "kind": "evaluate", "inputs": ["train"]},
    {"name": "eval_b", "kind": "evaluate", "inputs": ["train"], "config": {"checkpoint": 2}},
    {"name": "score", "kind": "batch-score", "inputs": ["train", "prep"]}]})";

struct Workspace {
  std::string dir, spec_path;
  RunOptions options;
};

Workspace make_workspace(const std::string& name, const std::string& spec = kFanOut) {
  Workspace w;
  w.dir = temp_dir(name);
  w.spec_path = w.dir + "/pipeline.json";
  write_file_atomic(w.spec_path, spec);
  w.options.runs_dir = w.dir + "/runs";
  w.options.quiet = true;
  return w;
}

const StageRecord& record(const PipelineRun& r, const std::string& name) {
  for (const StageRecord& s : r.stages)
    if (s.plan.name == name) return s;
  throw std::runtime_error("no stage " + name);
}

bool overlap(const StageRecord& a, const StageRecord& b) {
  return a.start_seconds < b.end_seconds && b.start_seconds < a.end_seconds;
}

TEST(SchedulerPool, IndependentStagesRunAtOnceAndDependentOnesNever) {
  Workspace w = make_workspace("fan");
  w.options.jobs = 3;
  Fake fake;
  const PipelineRun run = run_pipeline(load_pipeline_spec(w.spec_path), fake.registry(), w.options);
  ASSERT_EQ(run.stages.size(), 5u);
  const StageRecord &prep = record(run, "prep"), &train = record(run, "train");
  const std::vector<std::string> leaves = {"eval_a", "eval_b", "score"};
  // Dependent stages never overlap: each starts after all its inputs ended.
  EXPECT_LE(prep.end_seconds, train.start_seconds);
  for (const std::string& l : leaves) {
    EXPECT_LE(train.end_seconds, record(run, l).start_seconds) << l;
    EXPECT_FALSE(overlap(record(run, l), train)) << l;
  }
  EXPECT_LE(prep.end_seconds, record(run, "score").start_seconds);
  // The three independent leaves ran at the same time.
  for (size_t i = 0; i < leaves.size(); ++i)
    for (size_t j = i + 1; j < leaves.size(); ++j)
      EXPECT_TRUE(overlap(record(run, leaves[i]), record(run, leaves[j])))
          << leaves[i] << " [" << record(run, leaves[i]).start_seconds << ", "
          << record(run, leaves[i]).end_seconds << "] vs " << leaves[j] << " ["
          << record(run, leaves[j]).start_seconds << ", " << record(run, leaves[j]).end_seconds
          << "]";
  EXPECT_EQ(fake.max_active.load(), 3);
  // The intervals are in stages.jsonl for anyone to check.
  const std::string lines = read_file(run.run_dir + "/stages.jsonl");
  EXPECT_NE(lines.find("\"start\":"), std::string::npos) << lines;
  EXPECT_NE(lines.find("\"end\":"), std::string::npos) << lines;
  const std::string html = render_report_html(run.run_dir);
  EXPECT_NE(html.find("<h2>Stages</h2>"), std::string::npos);
  EXPECT_NE(html.find("<td>eval_b</td>"), std::string::npos);
  // Each leaf saw train's output, which saw prep's.
  EXPECT_EQ(read_file(record(run, "eval_b").outputs.file("out")), "eval_b|train|prep");
}

TEST(SchedulerPool, ThePoolIsBoundedByJobs) {
  for (int jobs : {1, 2}) {
    Workspace w = make_workspace("bounded" + std::to_string(jobs));
    w.options.jobs = jobs;
    Fake fake;
    fake.delay = std::chrono::milliseconds(60);
    const PipelineRun run =
        run_pipeline(load_pipeline_spec(w.spec_path), fake.registry(), w.options);
    EXPECT_EQ(fake.max_active.load(), jobs);
    if (jobs == 1)
      for (size_t i = 0; i < run.stages.size(); ++i)
        for (size_t j = i + 1; j < run.stages.size(); ++j)
          EXPECT_FALSE(overlap(run.stages[i], run.stages[j]))
              << run.stages[i].plan.name << " " << run.stages[j].plan.name;
  }
}

TEST(SchedulerPool, AFailedStageStopsLaunchesLetsSiblingsFinishAndKeepsOutputs) {
  Workspace w = make_workspace("fail");
  w.options.jobs = 2;
  Fake fake;
  fake.fail_stage = "eval_a";
  fake.log = w.dir + "/log";
  const PipelineSpec spec = load_pipeline_spec(w.spec_path);
  try {
    run_pipeline(spec, fake.registry(), w.options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Data);
    EXPECT_NE(std::string(e.what()).find("stage 'eval_a'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("planted failure"), std::string::npos) << e.what();
  }
  // With two workers, eval_a and eval_b started together; score was never started.
  const std::string log = read_file(fake.log);
  EXPECT_EQ(log.find("score"), std::string::npos) << log;
  std::map<std::string, StageState> state;
  for (const PlannedStage& p : plan_pipeline(spec, fake.registry(), w.options))
    state[p.name] = p.state;
  EXPECT_EQ(state["prep"], StageState::Cached);
  EXPECT_EQ(state["train"], StageState::Cached);
  EXPECT_EQ(state["eval_b"], StageState::Cached);  // the sibling finished and was kept
  EXPECT_EQ(state["eval_a"], StageState::Partial);
  EXPECT_EQ(state["score"], StageState::Pending);
}

// Runs `spec_path` in a child process; the child writes "ok RUN_DIR" or "error MESSAGE" to
// `result_path` and exits. `before` runs in the child first (limits, signals).
pid_t run_in_child(const Workspace& w, Fake& fake, const std::string& result_path, int start_fd,
                   void (*before)() = nullptr) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  if (before) before();
  char go;
  if (start_fd >= 0 && ::read(start_fd, &go, 1) != 1) ::_exit(3);  // start together
  std::string text;
  try {
    text =
        "ok " + run_pipeline(load_pipeline_spec(w.spec_path), fake.registry(), w.options).run_dir;
  } catch (const std::exception& e) {
    text = std::string("error ") + e.what();
  }
  try {
    write_file_atomic(result_path, text);
  } catch (...) {
    ::_exit(2);
  }
  ::_exit(0);
}

int wait_child(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(SchedulerProcesses, TwoProcessesAtOnceNeverShareARunDirectoryAndRunEachStageOnce) {
  Workspace w = make_workspace("procs");
  Fake fake;
  fake.delay = std::chrono::milliseconds(100);
  fake.log = w.dir + "/log";
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  const pid_t a = run_in_child(w, fake, w.dir + "/a.txt", go[0]);
  const pid_t b = run_in_child(w, fake, w.dir + "/b.txt", go[0]);
  ASSERT_EQ(::write(go[1], "gg", 2), 2);  // both start in the same second: same run-dir stamp
  ::close(go[0]);
  ::close(go[1]);
  ASSERT_EQ(wait_child(a), 0);
  ASSERT_EQ(wait_child(b), 0);
  const std::string ra = read_file(w.dir + "/a.txt"), rb = read_file(w.dir + "/b.txt");
  ASSERT_EQ(ra.rfind("ok ", 0), 0u) << ra;
  ASSERT_EQ(rb.rfind("ok ", 0), 0u) << rb;
  EXPECT_NE(ra, rb);  // two run directories
  for (const std::string& r : {ra, rb}) {
    const std::string dir = r.substr(3);
    EXPECT_TRUE(exists(dir + "/result.json")) << dir;
    EXPECT_EQ(read_file(dir + "/eval_b/out.txt"), "eval_b|train|prep");
  }
  // Every stage ran exactly once across both processes: the other waited on its lock and took
  // the finished outputs.
  std::map<std::string, int> runs;
  std::istringstream log(read_file(fake.log));
  for (std::string line; std::getline(log, line);) ++runs[line];
  for (const char* st : {"prep", "train", "eval_a", "eval_b", "score"})
    EXPECT_EQ(runs[st], 1) << st;
}

void small_file_limit() {
  ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG, as on a full disk
  rlimit lim{};
  lim.rlim_cur = lim.rlim_max = 64 * 1024;
  ::setrlimit(RLIMIT_FSIZE, &lim);
}

TEST(SchedulerProcesses, AFullDiskIsAClearErrorAndLeavesNothingHalfWritten) {
  Workspace w = make_workspace("full");
  w.options.jobs = 1;
  Fake fake;
  fake.delay = std::chrono::milliseconds(0);
  fake.output_bytes = 1 << 20;  // every stage's output exceeds the 64 KiB the child may write
  const pid_t pid = run_in_child(w, fake, w.dir + "/result.txt", -1, small_file_limit);
  ASSERT_EQ(wait_child(pid), 0);
  const std::string r = read_file(w.dir + "/result.txt");
  ASSERT_EQ(r.rfind("error ", 0), 0u) << r;
  EXPECT_NE(r.find("stage 'prep'"), std::string::npos) << r;
  EXPECT_NE(r.find("out.txt"), std::string::npos) << r;  // names the file it could not write
  EXPECT_NE(r.find("large"), std::string::npos) << r;    // strerror(EFBIG): "File too large"
  // No temporary file, no manifest: the stage is simply unfinished.
  std::vector<std::string> files;
  list_files(w.options.runs_dir, "", &files);
  for (const std::string& f : files) {
    EXPECT_EQ(f.find(".tmp"), std::string::npos) << f;
    EXPECT_EQ(f.find("manifest.json"), std::string::npos) << f;
    EXPECT_EQ(f.find("out.txt"), std::string::npos) << f;
  }
  // With room again, the same pipeline runs from the start.
  fake.output_bytes = 0;
  const PipelineRun run = run_pipeline(load_pipeline_spec(w.spec_path), fake.registry(), w.options);
  for (const StageRecord& s : run.stages) EXPECT_TRUE(s.ran) << s.plan.name;
}

TEST(SchedulerProcesses, AnUnwritableRunsDirectoryFailsBeforeWritingAnything) {
  Workspace w = make_workspace("unwritable");
  Fake fake;
  fake.log = w.dir + "/log";
  // A file where a directory must go: unwritable even for root (chmod is not).
  const std::string blocker = w.dir + "/file";
  write_file_atomic(blocker, "x");
  w.options.runs_dir = blocker + "/runs";
  w.options.cache_dir = w.dir + "/cache";
  try {
    run_pipeline(load_pipeline_spec(w.spec_path), fake.registry(), w.options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find(blocker), std::string::npos) << e.what();
  }
  EXPECT_FALSE(exists(fake.log));  // no stage ran
  std::vector<std::string> files;
  list_files(w.options.cache_dir, "", &files);
  EXPECT_TRUE(files.empty()) << files.front();
}

}  // namespace
}  // namespace tessera::scheduler
