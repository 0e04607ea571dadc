// Every task of this build, each registered by its folder's register_task (pipelines/task.h).
// Adding a task: a folder pipelines/<task>/ whose namespace tessera::<task> defines
// `void register_task(TaskRegistry&)`, and its name in this list.
#include "pipelines/task.h"

#define TESSERA_TASKS(X) \
  X(behaviour)           \
  X(recommend)           \
  X(textgen)             \
  X(textclass)           \
  X(image)               \
  X(audio)               \
  X(video)

#define TESSERA_DECLARE_TASK(ns) \
  namespace tessera::ns {        \
  void register_task(TaskRegistry& registry); \
  }
TESSERA_TASKS(TESSERA_DECLARE_TASK)

namespace tessera {

const TaskRegistry& tasks() {
  static const TaskRegistry registry = [] {
    TaskRegistry r;
#define TESSERA_REGISTER_TASK(ns) ns::register_task(r);
    TESSERA_TASKS(TESSERA_REGISTER_TASK)
    return r;
  }();
  return registry;
}

}  // namespace tessera
