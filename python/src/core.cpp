// tessera._core: the nanobind module under the tessera package (python/tessera/). Thin: strings
// in, (summary, JSON) strings out, through commands.h; the Python side builds the API from them.
// Every call releases the GIL while the engine works; an engine error becomes the Python
// exception of its kind (tessera.errors), with the CLI's message and its location.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <new>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "embeddings/tables.h"
#include "host/core/error.h"
#include "host/model/divergence.h"
#include "host/train/repeats.h"
#include "python/src/arrow_score.h"
#include "python/src/commands.h"
#include "python/src/model_tables.h"

namespace nb = nanobind;

namespace {

using Result = std::pair<std::string, std::string>;  // (summary, json)

// What went wrong in the engine, kept until the GIL is back.
struct Failure {
  tessera::ErrorKind kind = tessera::ErrorKind::Internal;
  std::string message;
  tessera::ErrorLocation at;
  std::string result_json;  // a diverged run's result.json; empty otherwise
};

[[noreturn]] void raise_failure(const Failure& f) {
  nb::object make = nb::module_::import_("tessera.errors").attr("_from_engine");
  nb::object exc = make(tessera::error_kind_id(f.kind), f.message, f.at.file, f.at.line,
                        f.at.column, f.at.json_path, f.result_json);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw nb::python_error();
}

// Runs `f` with the GIL released and returns its value; an engine error is raised as its Python
// class.
template <typename F>
auto guarded_value(F&& f) -> decltype(f()) {
  std::optional<Failure> failure;
  std::optional<decltype(f())> r;
  {
    nb::gil_scoped_release release;
    try {
      r.emplace(f());
    } catch (const tessera::TrainingDiverged& e) {
      failure = Failure{e.kind(), e.what(), e.location(), e.result_json()};
    } catch (const tessera::Error& e) {
      failure = Failure{e.kind(), e.what(), e.location(), ""};
    } catch (const std::bad_alloc&) {
      failure = Failure{tessera::ErrorKind::Internal, "out of memory", {}, ""};
    } catch (const std::exception& e) {
      failure = Failure{tessera::ErrorKind::Internal, e.what(), {}, ""};
    }
  }
  if (failure) raise_failure(*failure);
  return std::move(*r);
}

template <typename F>
Result guarded(F&& f) {
  tessera::CommandResult r = guarded_value(std::forward<F>(f));
  return {r.summary, r.json};
}

// train: `on_epoch` (a Python callable taking the epoch's metrics line and returning whether to
// go on, or None) is called with the GIL held. Ctrl-C is noticed after every optimizer step (the
// GIL taken for a signal check) and at each epoch's end: training stops there, the last checkpoint
// kept (at epoch ends, or every train.checkpoint_every_steps steps), and KeyboardInterrupt is
// raised. So is an exception of the callable, in place of the run's result.
Result train(const std::string& config, const tessera::python::Options& options,
             nb::object on_epoch) {
  std::unique_ptr<nb::python_error> pending;
  const nb::object* callable = &on_epoch;
  auto hook = [callable, &pending](const std::string& line) -> bool {
    nb::gil_scoped_acquire gil;
    try {
      if (PyErr_CheckSignals() != 0) throw nb::python_error();
      if (callable->is_none()) return true;
      return nb::cast<bool>((*callable)(line));
    } catch (nb::python_error& e) {
      pending = std::make_unique<nb::python_error>(std::move(e));
      return false;
    }
  };
  auto step_hook = [&pending] {
    nb::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() == 0) return;
    pending = std::make_unique<nb::python_error>();
    TESSERA_THROW(Usage, "training interrupted (Ctrl-C)");
  };
  Result r;
  try {
    r = guarded([&] { return tessera::python::train(config, options, hook, step_hook); });
  } catch (nb::python_error&) {
    if (!pending) throw;  // the engine's own error, the callable did not fail
  }
  if (pending) {
    pending->restore();
    throw nb::python_error();
  }
  return r;
}

// ---- Arrow input (host/data/arrow_stream.h) -----------------------------------------------------

// Moves the ArrowArrayStream out of a PyCapsule named "arrow_array_stream" (what
// `__arrow_c_stream__()` returns) into `out`; the capsule's is marked released, so its destructor
// leaves the stream to us. Needs the GIL.
void take_stream(nb::handle capsule, ArrowArrayStream* out) {
  PyObject* p = capsule.ptr();
  if (!PyCapsule_IsValid(p, "arrow_array_stream"))
    throw nb::type_error("expected the PyCapsule 'arrow_array_stream' of __arrow_c_stream__()");
  auto* s = static_cast<ArrowArrayStream*>(PyCapsule_GetPointer(p, "arrow_array_stream"));
  if (s == nullptr || s->release == nullptr)
    throw nb::value_error("the Arrow stream's capsule was already consumed");
  *out = *s;
  s->release = nullptr;
}

// A factory calling `make` (a Python callable returning a stream capsule) with the GIL taken; a
// Python error in it becomes a Data error with its text (the engine's threads hold no Python
// state).
tessera::ArrowStreamFactory factory_of(nb::object make) {
  if (make.is_none()) return {};
  auto shared = std::make_shared<nb::object>(std::move(make));
  return [shared](ArrowArrayStream* out) {
    nb::gil_scoped_acquire gil;
    try {
      nb::object capsule = (*shared)();
      take_stream(capsule, out);
    } catch (nb::python_error& e) {
      TESSERA_THROW(Data, "reading the data: " << e.what());
    } catch (nb::builtin_exception& e) {
      TESSERA_THROW(Data, "reading the data: " << e.what());
    }
  };
}

Result prepare_arrow(const std::string& config, const std::string& dir, nb::object train,
                     nb::object validation, nb::object test, int64_t shard_rows, bool quiet) {
  tessera::ArrowStreamFactory t = factory_of(std::move(train)),
                              v = factory_of(std::move(validation)),
                              s = factory_of(std::move(test));
  return guarded(
      [&] { return tessera::python::prepare_arrow(config, dir, t, v, s, shard_rows, quiet); });
}

using Scores = nb::ndarray<nb::numpy, double, nb::ndim<1>>;

// The scores of every row of `stream`, as a numpy array owning the engine's buffer (no copy),
// and the run's facts as JSON.
std::pair<Scores, std::string> score_arrow(const std::string& model, nb::object capsule,
                                           const std::string& name,
                                           const tessera::python::ArrowScoreOptions& o,
                                           bool evaluate) {
  struct Owned {  // released here when the engine failed before taking it over
    ArrowArrayStream s{};
    ~Owned() {
      if (s.release != nullptr) s.release(&s);
    }
  } owned;
  ArrowArrayStream& stream = owned.s;
  take_stream(capsule, &stream);
  auto scores = std::make_unique<tessera::python::ArrowScores>();
  Result json = guarded([&] {
    *scores = tessera::python::score_arrow(model, &stream, name, o);
    if (evaluate) return tessera::python::evaluate_result(model, name, *scores);
    tessera::json::JsonWriter w;
    w.begin_object();
    w.field("command", "predict").field("model", model).field("input", name);
    w.field("device", scores->device).field("rows", int64_t(scores->probs.size()));
    w.field("bad_rows_skipped", scores->bad_rows).field("unseen_categories", scores->unseen);
    w.field("seconds", scores->seconds)
        .field("rows_per_sec",
               scores->seconds > 0 ? double(scores->probs.size()) / scores->seconds : 0.0);
    w.end_object();
    return tessera::CommandResult{"", w.compact()};
  });
  auto* probs = new std::vector<double>(std::move(scores->probs));
  nb::capsule owner(probs, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
  const size_t n = probs->size();
  return {Scores(probs->data(), {n}, owner),
          evaluate ? json.first + "\x1e" + json.second : json.second};
}

// ---- Embedding tables (python/src/model_tables.h) -----------------------------------------------

// A model file's tables by name, as read-only numpy arrays viewing the loaded buffers (no copy):
// one owner, a capsule holding the ModelTables, is shared by every array, so the buffers live
// while any of them (or a view of one) does, after the Model and the dict are gone.
nb::dict model_tables(const std::string& path) {
  using tessera::python::ModelTables;
  auto held = std::make_unique<ModelTables>(
      guarded_value([&] { return tessera::python::load_model_tables(path); }));
  ModelTables* tables = held.get();
  nb::capsule owner(held.release(), [](void* p) noexcept { delete static_cast<ModelTables*>(p); });
  nb::dict out;
  for (const ModelTables::Table& t : tables->tables) {
    nb::object array;
    if (t.dtype == tessera::DType::I64)
      array = nb::ndarray<nb::numpy, const int64_t>(t.data, t.shape.size(), t.shape.data(), owner)
                  .cast();
    else
      array =
          nb::ndarray<nb::numpy, const float>(t.data, t.shape.size(), t.shape.data(), owner).cast();
    out[t.name.c_str()] = array;
  }
  return out;
}

tessera::python::ArrowScoreOptions score_options(const std::string& device,
                                                 const std::string& on_error, int64_t batch_size,
                                                 bool labels) {
  tessera::python::ArrowScoreOptions o;
  o.device = device;
  o.on_error = on_error;
  o.batch_size = batch_size;
  o.labels = labels;
  return o;
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "tessera's engine (C++), called by the tessera package; use tessera.train/load.";
  // The CLI registers MPI shard servers under mpirun; in a Python process there are none.
  tessera::emb::set_remote_shard_factory(
      nullptr, "the Python package has no MPI shard servers (use the CLI under mpirun)");

  m.def("train", &train, nb::arg("config"), nb::arg("options"), nb::arg("on_epoch").none(),
        "tessera train CONFIG with CLI options; on_epoch(line) -> bool per epoch. "
        "Returns (summary, json).");
  m.def(
      "command",
      [](const std::string& verb, const std::vector<std::string>& positionals,
         const tessera::python::Options& options) {
        return guarded([&] { return tessera::python::command(verb, positionals, options); });
      },
      nb::arg("verb"), nb::arg("positionals"), nb::arg("options"),
      "Any other CLI verb with its positional arguments and options. Returns (summary, json).");
  m.def(
      "summarize_repeats",
      [](const std::vector<int64_t>& seeds, const std::vector<Result>& runs) {
        return guarded([&] {
          if (seeds.size() != runs.size())
            TESSERA_THROW(Usage, "summarize_repeats: " << seeds.size() << " seeds for "
                                                       << runs.size() << " runs");
          std::vector<tessera::CommandResult> results;
          for (const auto& [summary, json] : runs) results.push_back({summary, json});
          return tessera::train::summarize_repeats(seeds, results);
        });
      },
      nb::arg("seeds"), nb::arg("runs"),
      "Each metric's mean, std, min and max over runs[i] = (summary, result json) trained with "
      "seeds[i], as train --seeds reports them. Returns (summary, json).");
  m.def(
      "task_of_config",
      [](const std::string& path) {
        return guarded([&] {
                 return tessera::CommandResult{tessera::python::task_of_config(path), ""};
               })
            .first;
      },
      nb::arg("path"), "The task a config file names.");
  m.def(
      "task_of_model",
      [](const std::string& path) {
        return guarded([&] {
                 return tessera::CommandResult{tessera::python::task_of_model(path), ""};
               })
            .first;
      },
      nb::arg("path"), "The task a model file was trained by.");
  m.def(
      "tasks",
      [] {
        std::vector<std::tuple<std::string, std::string, std::vector<std::string>>> out;
        for (const auto& t : tessera::python::task_list())
          out.emplace_back(t.name, t.about, t.verbs);
        return out;
      },
      "Every registered task: (name, description, model verbs).");
  m.def("model_tables", &model_tables, nb::arg("path"),
        "A behaviour or recommendation model file's embedding tables by name: read-only numpy "
        "arrays viewing the buffers loaded once (no per-table copy), kept alive by the arrays.");
  m.def("prepare_arrow", &prepare_arrow, nb::arg("config"), nb::arg("dir"), nb::arg("train"),
        nb::arg("validation").none(), nb::arg("test").none(), nb::arg("shard_rows"),
        nb::arg("quiet"),
        "A behaviour config's rows from Arrow streams (train(), validation() and test(): "
        "callables returning an 'arrow_array_stream' capsule, one fresh stream per call; "
        "validation and test may be None) as a prepared dataset in dir. Returns (summary, json).");
  m.def(
      "predict_arrow",
      [](const std::string& model, nb::object capsule, const std::string& name,
         const std::string& device, const std::string& on_error, int64_t batch_size) {
        return score_arrow(model, std::move(capsule), name,
                           score_options(device, on_error, batch_size, false), false);
      },
      nb::arg("model"), nb::arg("stream"), nb::arg("name"), nb::arg("device"), nb::arg("on_error"),
      nb::arg("batch_size"),
      "A behaviour model's scores of an Arrow stream's rows: (float64 array, json).");
  m.def(
      "evaluate_arrow",
      [](const std::string& model, nb::object capsule, const std::string& name,
         const std::string& device, const std::string& on_error, int64_t batch_size) {
        return score_arrow(model, std::move(capsule), name,
                           score_options(device, on_error, batch_size, true), true)
            .second;
      },
      nb::arg("model"), nb::arg("stream"), nb::arg("name"), nb::arg("device"), nb::arg("on_error"),
      nb::arg("batch_size"),
      "A behaviour model's metrics on an Arrow stream's labelled rows: summary + '\\x1e' + json.");
}
