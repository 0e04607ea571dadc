#include "host/scheduler/scheduler.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <mutex>
#include <sstream>
#include <thread>

#include "host/core/atomic_file.h"
#include "host/core/build_id.h"
#include "host/core/content_hash.h"
#include "host/core/enum_table.h"
#include "host/core/error.h"
#include "host/core/json_escape.h"
#include "host/core/json_fields.h"
#include "host/core/run_dir.h"
#include "host/data/sha256.h"

namespace tessera::scheduler {

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) append_json_escaped(out, c, JsonCarriageReturn::Unicode);
  return out + "\"";
}

std::string files_json(const std::map<std::string, std::string>& files) {
  std::string out = "{";
  for (const auto& [k, v] : files)
    out += (out.size() > 1 ? "," : "") + json_string(k) + ":" + json_string(v);
  return out + "}";
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string runs_dir_of(const PipelineSpec& spec, const RunOptions& o) {
  return o.runs_dir.empty() ? spec.runs_dir : o.runs_dir;
}
// Absolute, because stage outputs (configs naming data files) must stay valid from any working
// directory.
std::string absolute(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char buf[4096];
  if (!::getcwd(buf, sizeof(buf)))
    TESSERA_THROW(Io, "cannot read the working directory: " << std::strerror(errno));
  return std::string(buf) + "/" + p;
}
std::string cache_dir_of(const PipelineSpec& spec, const RunOptions& o) {
  return absolute(o.cache_dir.empty() ? runs_dir_of(spec, o) + "/cache" : o.cache_dir);
}

// flock on <dir>/.lock for the lifetime of the object. Blocks while another process (or another
// open of the file in this process) holds it.
class DirLock {
 public:
  DirLock(const std::string& dir, const std::string& stage, bool quiet) {
    const std::string path = dir + "/.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      TESSERA_THROW(Io, "cannot open lock file '" << path << "': " << std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    if (!quiet)
      std::fprintf(stderr, "tessera run: stage '%s' is being run by another process; waiting\n",
                   stage.c_str());
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        const int e = errno;
        ::close(fd_);
        TESSERA_THROW(Io, "cannot lock '" << path << "': " << std::strerror(e));
      }
    }
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

StageOutputs read_manifest(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  const std::string text = read_file(path);
  rapidjson::Document d;
  if (json_nesting_within(text.data(), text.size(), kJsonMaxNesting))
    d.Parse(text.c_str(), text.size());
  if (!d.IsObject() || d.HasParseError() || !d.HasMember("outputs") || !d["outputs"].IsObject())
    TESSERA_THROW(Io, "stage manifest '" << path << "' is unreadable; delete " << dir
                                         << " to rerun the stage");
  StageOutputs o;
  o.dir = dir;
  for (const auto& m : d["outputs"].GetObject()) {
    if (!m.value.IsString()) TESSERA_THROW(Io, "stage manifest '" << path << "': bad output entry");
    o.files[m.name.GetString()] = dir + "/" + m.value.GetString();
  }
  if (d.HasMember("result")) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    d["result"].Accept(w);
    o.result_json = std::string(sb.GetString(), sb.GetSize());
  }
  return o;
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string environment_json(const RunOptions& o) {
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  std::ostringstream s;
  s << "{\"started\":" << json_string(utc_now()) << ",\"host\":" << json_string(host)
    << ",\"device_option\":" << json_string(o.device.empty() ? "(stage default)" : o.device)
    << ",\"hardware_threads\":" << std::thread::hardware_concurrency()
    << ",\"compiler\":" << json_string(__VERSION__) << ",\"cplusplus\":" << __cplusplus << "}\n";
  return s.str();
}

// The run directory gets every stage's outputs under <run>/<stage>/: hard links into the cache
// (no copy, and the cache entry can be deleted without breaking the run), a copy across devices.
void link_outputs(const StageOutputs& o, const std::string& dir) {
  make_directories(dir);
  for (const auto& [name, path] : o.files) {
    const std::string target = dir + "/" + path.substr(path.find_last_of('/') + 1);
    if (::link(path.c_str(), target.c_str()) != 0 && errno != EEXIST)
      write_file_atomic(target, read_file(path));
  }
}

// Copies a finished stage's metrics log into the run directory (the report reads it there).
void copy_if_present(const std::string& from, const std::string& to) {
  if (exists(from)) write_file_atomic(to, read_file(from));
}

}  // namespace

const std::string& StageOutputs::file(const std::string& name) const {
  auto it = files.find(name);
  if (it == files.end())
    TESSERA_THROW(Internal, "stage output '" << name << "' missing in " << dir);
  return it->second;
}

void StageRegistry::add(const std::string& task, StageKind kind, StageRunner runner) {
  runners_[{task, kind}] = std::move(runner);
}

const StageRunner& StageRegistry::find(const std::string& task, const StageSpec& stage) const {
  auto it = runners_.find({task, stage.kind});
  if (it != runners_.end()) return it->second;
  std::string kinds;
  for (const auto& [k, r] : runners_)
    if (k.first == task)
      kinds += std::string(kinds.empty() ? "" : ", ") + stage_kind_name(k.second);
  TESSERA_THROW(Config, "stage '" << stage.name << "': task '" << task << "' has no stage kind '"
                                  << stage_kind_name(stage.kind) << "'"
                                  << (kinds.empty() ? std::string(" (the task has no stages)")
                                                    : " (it has: " + kinds + ")"));
}

const char* stage_state_name(StageState s) {
  static constexpr const char* kNames[] = {"cached", "unfinished", "to run"};
  return enum_entry<StageState::Pending>(s, kNames, "?");
}

FileFingerprint file_fingerprint(const std::string& path, const std::string& memo_dir) {
  FileFingerprint f = file_content_fingerprint(path, memo_dir);
  f.text = path + " " + f.text;
  return f;
}

std::vector<PlannedStage> plan_pipeline(const PipelineSpec& spec, const StageRegistry& registry,
                                        const RunOptions& options) {
  const std::string cache = cache_dir_of(spec, options);
  std::map<std::string, std::string> keys;
  std::vector<PlannedStage> plan;
  for (size_t i : execution_order(spec)) {
    const StageSpec& st = spec.stages[i];
    const StageRunner& runner = registry.find(spec.task, st);
    Sha256 h;
    auto field = [&](const std::string& k, const std::string& v) {
      h.update(k + "=" + std::to_string(v.size()) + ":" + v +
               "\n");  // length-prefixed: no ambiguity
    };
    field("code", options.code_id.empty() ? std::string(build_source_id()) : options.code_id);
    field("task", spec.task);
    field("name", st.name);
    field("kind", stage_kind_name(st.kind));
    field("config", st.config_json);
    for (const std::string& in : st.inputs) field("input:" + in, keys.at(in));
    std::vector<std::string> files = st.files;
    if (runner.input_files) {
      std::vector<std::string> more = runner.input_files(spec, st);
      files.insert(files.end(), more.begin(), more.end());
    }
    PlannedStage p;
    for (const std::string& f : files) {
      FileFingerprint fp = file_fingerprint(f, cache + "/fingerprints");
      field("file", fp.text);
      if (!fp.memo_file.empty()) p.fingerprints_to_remember.push_back(std::move(fp));
    }
    p.name = st.name;
    p.kind = st.kind;
    p.key = h.hex_digest();
    p.dir = cache + "/" + st.name + "-" + p.key.substr(0, 16);
    p.state = exists(p.dir + "/manifest.json") ? StageState::Cached
              : exists(p.dir)                  ? StageState::Partial
                                               : StageState::Pending;
    keys[st.name] = p.key;
    plan.push_back(std::move(p));
  }
  return plan;
}

std::string describe_plan(const PipelineSpec& spec, const std::vector<PlannedStage>& plan) {
  std::ostringstream s;
  s << "pipeline " << spec.name << " (" << spec.task << "), " << plan.size() << " stages:\n";
  int n = 0;
  for (const PlannedStage& p : plan) {
    const StageSpec& st = spec.stage(p.name);
    char line[512];
    std::snprintf(line, sizeof(line), "  %d. %-10s %-12s key %.12s  %-18s", ++n, p.name.c_str(),
                  stage_kind_name(p.kind), p.key.c_str(), stage_state_name(p.state));
    s << line;
    if (!st.inputs.empty()) {
      s << " <- ";
      for (size_t i = 0; i < st.inputs.size(); ++i) s << (i ? ", " : "") << st.inputs[i];
    }
    s << "\n     " << p.dir << "\n";
  }
  return s.str();
}

namespace {

using Clock = std::chrono::steady_clock;

// Runs one stage in its cache directory (under its lock) or takes it from there; called on a
// worker thread. `ctx` carries the finished inputs' outputs.
StageRecord execute_stage(const PlannedStage& planned, const StageRunner& runner,
                          const StageContext& ctx, const std::string& cache,
                          const RunOptions& options, Clock::time_point t_run) {
  StageRecord rec;
  rec.plan = planned;
  PlannedStage& p = rec.plan;
  auto t0 = Clock::now();
  rec.start_seconds = std::chrono::duration<double>(t0 - t_run).count();
  make_directories(p.dir);
  {
    DirLock lock(p.dir, p.name, options.quiet);
    if (exists(p.dir + "/manifest.json")) {  // finished, possibly by another run meanwhile
      rec.outputs = read_manifest(p.dir);
      p.state = StageState::Cached;
    } else {
      if (!options.quiet)
        std::fprintf(
            stderr, "tessera run: stage %s (%s)%s\n", p.name.c_str(), stage_kind_name(p.kind),
            p.state == StageState::Partial ? ", continuing an unfinished earlier attempt" : "");
      StageResult r;
      try {
        r = runner.run(ctx);
      } catch (const Error& e) {
        // The error keeps its kind; the message says which stage failed and that earlier
        // stages' outputs are kept.
        throw Error(e.kind(), "stage '" + p.name + "' (" + stage_kind_name(p.kind) + ") failed: " +
                                  e.what() + " [earlier stages' outputs kept in " + cache + "]");
      }
      for (const auto& [name, rel] : r.files)
        if (!exists(p.dir + "/" + rel))
          TESSERA_THROW(Internal, "stage '" << p.name << "' reported output '" << name << "' but "
                                            << p.dir << "/" << rel << " is missing");
      write_file_atomic(p.dir + "/manifest.json",
                        "{\"stage\":" + json_string(p.name) +
                            ",\"kind\":" + json_string(stage_kind_name(p.kind)) + ",\"key\":" +
                            json_string(p.key) + ",\"outputs\":" + files_json(r.files) +
                            ",\"result\":" + r.result_json + "}\n");
      rec.outputs = read_manifest(p.dir);
      rec.ran = true;
      rec.summary = r.summary;
    }
  }
  const auto t1 = Clock::now();
  rec.seconds = std::chrono::duration<double>(t1 - t0).count();
  rec.end_seconds = std::chrono::duration<double>(t1 - t_run).count();
  if (rec.summary.empty()) rec.summary = rec.ran ? "done" : "cached";
  return rec;
}

int worker_count(const RunOptions& o) {
  if (o.jobs < 0)
    TESSERA_THROW(Usage, "jobs " << o.jobs << ": must be >= 1 (0: the hardware threads)");
  if (o.jobs > 0) return o.jobs;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

// Before the first stage: the cache exists, the plan's new file fingerprints are remembered and
// the run directory holds the pipeline and the environment it runs in.
RunDir start_run(const PipelineSpec& spec, const std::vector<PlannedStage>& plan,
                 const std::string& cache, const RunOptions& options) {
  make_directories(cache);
  for (const PlannedStage& p : plan)
    for (const FileFingerprint& f : p.fingerprints_to_remember) remember_fingerprint(f);
  RunDir run = RunDir::create(runs_dir_of(spec, options), spec.name);
  write_file_atomic(run.path() + "/pipeline.json", read_file(spec.path));
  write_file_atomic(run.path() + "/environment.json", environment_json(options));
  return run;
}

// What a stage's runner sees: its spec, its cache directory and its finished inputs' outputs.
StageContext stage_context(const PipelineSpec& spec, const StageSpec& st,
                           const PlannedStage& planned, const RunOptions& options,
                           const std::map<std::string, StageOutputs>& done) {
  StageContext ctx;
  ctx.pipeline = &spec;
  ctx.stage = &st;
  ctx.work_dir = planned.dir;
  ctx.device = options.device;
  ctx.quiet = options.quiet;
  for (const std::string& in : st.inputs) ctx.inputs[in] = done.at(in);
  return ctx;
}

// The run directory's bookkeeping for a stage that finished: its line in stages.jsonl, a
// training stage's metrics and config at the top level, and its outputs under <run>/<stage>/.
void record_finished_stage(const StageRecord& rec, const std::string& run_path,
                           const RunOptions& options) {
  const PlannedStage& p = rec.plan;
  std::ostringstream line;
  line << "{\"stage\":" << json_string(p.name)
       << ",\"kind\":" << json_string(stage_kind_name(p.kind)) << ",\"key\":" << json_string(p.key)
       << ",\"cached\":" << (rec.ran ? "false" : "true") << ",\"seconds\":" << rec.seconds
       << ",\"start\":" << rec.start_seconds << ",\"end\":" << rec.end_seconds
       << ",\"dir\":" << json_string(p.dir) << "}";
  append_line(run_path + "/stages.jsonl", line.str());
  if (p.kind == StageKind::Train) {  // the report reads these at the run's top level
    for (const auto& [output, name] :
         {std::pair<const char*, const char*>{"metrics", "metrics.jsonl"},
          {"config", "config.json"}})
      if (rec.outputs.files.count(output))
        copy_if_present(rec.outputs.files.at(output), run_path + "/" + name);
  }
  if (!options.quiet)
    std::fprintf(stderr, "tessera run: %-10s %s (%.2fs)\n", p.name.c_str(),
                 rec.ran ? "ran" : "cached", rec.seconds);
  link_outputs(rec.outputs, run_path + "/" + p.name);
}

// The run's result.json: every stage (in plan order) with its directory, outputs and result.
std::string run_result_json(const PipelineSpec& spec, const PipelineRun& run) {
  std::ostringstream r;
  r << "{\"command\":\"run\",\"pipeline\":" << json_string(spec.name)
    << ",\"task\":" << json_string(spec.task) << ",\"run_dir\":" << json_string(run.run_dir)
    << ",\"stages\":{";
  for (size_t i = 0; i < run.stages.size(); ++i) {
    const StageRecord& s = run.stages[i];
    r << (i ? "," : "") << json_string(s.plan.name)
      << ":{\"kind\":" << json_string(stage_kind_name(s.plan.kind))
      << ",\"cached\":" << (s.ran ? "false" : "true") << ",\"dir\":" << json_string(s.plan.dir)
      << ",\"outputs\":" << files_json(s.outputs.files) << ",\"result\":" << s.outputs.result_json
      << "}";
  }
  r << "}}";
  return r.str();
}

}  // namespace

PipelineRun run_pipeline(const PipelineSpec& spec, const StageRegistry& registry,
                         const RunOptions& options) {
  // Plan first: every runner found and every input file readable before anything is written.
  std::vector<PlannedStage> plan = plan_pipeline(spec, registry, options);
  const int jobs = worker_count(options);
  const std::string cache = cache_dir_of(spec, options);
  const RunDir run = start_run(spec, plan, cache, options);
  PipelineRun out;
  out.run_dir = run.path();

  // A stage is launched on its own thread once its inputs are done, at most `jobs` at a time; the
  // calling thread does all bookkeeping (run directory, stages.jsonl) as stages finish.
  enum class Slot : uint8_t { Waiting, Running, Done };
  const size_t n = plan.size();
  std::vector<Slot> slot(n, Slot::Waiting);
  std::vector<StageRecord> records(n);
  std::vector<std::thread> threads(n);
  std::map<std::string, StageOutputs> done;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<size_t> finished;  // guarded by mu
  std::vector<std::exception_ptr> errors(n);
  std::exception_ptr first_error;
  int running = 0;
  size_t completed = 0;
  const auto t_run = Clock::now();
  auto ready = [&](size_t i) {
    for (const std::string& in : spec.stage(plan[i].name).inputs)
      if (!done.count(in)) return false;
    return true;
  };
  auto join_all = [&] {
    for (std::thread& t : threads)
      if (t.joinable()) t.join();
  };
  try {
    while (completed < n) {
      for (size_t i = 0; i < n && running < jobs && !first_error; ++i) {
        if (slot[i] != Slot::Waiting || !ready(i)) continue;
        const StageSpec& st = spec.stage(plan[i].name);
        StageContext ctx = stage_context(spec, st, plan[i], options, done);
        const StageRunner* runner = &registry.find(spec.task, st);
        slot[i] = Slot::Running;
        ++running;
        threads[i] = std::thread([&, i, runner, ctx = std::move(ctx)] {
          try {
            records[i] = execute_stage(plan[i], *runner, ctx, cache, options, t_run);
          } catch (...) {
            errors[i] = std::current_exception();
          }
          std::lock_guard<std::mutex> lock(mu);
          finished.push_back(i);
          cv.notify_all();
        });
      }
      if (running == 0) break;  // an error stopped the launches and everything has finished
      std::vector<size_t> now;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !finished.empty(); });
        now.swap(finished);
      }
      for (size_t i : now) {
        threads[i].join();
        --running;
        slot[i] = Slot::Done;
        if (errors[i]) {
          if (!first_error) first_error = errors[i];
          continue;
        }
        ++completed;
        const StageRecord& rec = records[i];
        record_finished_stage(rec, run.path(), options);
        done[rec.plan.name] = rec.outputs;
      }
    }
  } catch (...) {
    // Bookkeeping failed (the run directory became unwritable): let running stages finish.
    join_all();
    throw;
  }
  join_all();
  if (first_error) std::rethrow_exception(first_error);
  for (StageRecord& rec : records) out.stages.push_back(std::move(rec));  // in plan order

  out.result_json = run_result_json(spec, out);
  write_file_atomic(run.path() + "/result.json", out.result_json + "\n");
  return out;
}

}  // namespace tessera::scheduler
