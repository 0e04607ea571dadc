// tessera._core: the nanobind module under the tessera package (python/tessera/). Thin: strings
// in, (summary, JSON) strings out, through commands.h; the Python side builds the API from them.
// Every call releases the GIL while the engine works; an engine error becomes the Python
// exception of its kind (tessera.errors), with the CLI's message and its location.
#include <nanobind/nanobind.h>
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
#include "python/src/commands.h"

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

// Runs `f` with the GIL released; an engine error is raised as its Python class.
template <typename F>
Result guarded(F&& f) {
  std::optional<Failure> failure;
  tessera::CommandResult r;
  {
    nb::gil_scoped_release release;
    try {
      r = f();
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
  return {r.summary, r.json};
}

// train: `on_epoch` (a Python callable taking the epoch's metrics line and returning whether to
// go on, or None) is called with the GIL held. Ctrl-C is noticed there too, at the end of each
// epoch: training stops after that epoch (its checkpoint kept) and KeyboardInterrupt is raised.
// So is an exception of the callable, in place of the run's result.
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
  Result r;
  try {
    r = guarded([&] { return tessera::python::train(config, options, hook); });
  } catch (nb::python_error&) {
    if (!pending) throw;  // the engine's own error, the callable did not fail
  }
  if (pending) {
    pending->restore();
    throw nb::python_error();
  }
  return r;
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
}
